"""The sales code location: raw orders are ingested file by file as the shop lands them."""

from assets.sales import assets, checks, sample_data
from platform_core.definitions import build_team_definitions
from platform_core.sensors import landing_sensor

orders_landing = landing_sensor(
    team=assets.TEAM,
    feed="orders",
    asset=assets.raw_orders,
    sample=sample_data.orders_file,
    seed_at=sample_data.SAMPLE_LANDINGS,
)

defs = build_team_definitions(
    team=assets.TEAM,
    assets=[assets.raw_orders, assets.orders, assets.customers],
    asset_checks=[
        checks.orders_have_unique_ids,
        checks.orders_schema_contract,
        checks.customers_have_contact,
    ],
    sensors=[orders_landing],
)
