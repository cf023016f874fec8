"""The sales code location."""

from assets.sales import assets, checks
from platform_core.definitions import build_team_definitions

defs = build_team_definitions(
    team=assets.TEAM,
    assets=[assets.raw_orders, assets.orders, assets.customers],
    asset_checks=[
        checks.orders_have_unique_ids,
        checks.orders_schema_contract,
        checks.customers_have_contact,
    ],
)
