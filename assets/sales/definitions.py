"""The sales code location: raw orders are ingested file by file as the shop lands them."""

import dagster as dg

from assets.sales import assets, checks
from platform_core.definitions import Team

team = Team(
    name=assets.TEAM,
    assets=[assets.raw_orders, assets.orders, assets.customers],
    asset_checks=[
        checks.orders_have_unique_ids,
        checks.orders_schema_contract,
        checks.customers_have_contact,
    ],
    feeds=[assets.ORDERS_FEED],
)


@dg.definitions
def defs() -> dg.Definitions:
    return team.definitions()
