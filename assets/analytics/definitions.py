"""The analytics code location."""

import dagster as dg

from assets.analytics import assets, checks, scoring
from platform_core.definitions import Team

team = Team(
    name=assets.TEAM,
    assets=[
        assets.revenue_by_country,
        assets.customer_value,
        assets.regional_daily_revenue,
        assets.customer_reach,
        scoring.customer_scores,
    ],
    upstream=[assets.SALES_ORDERS_KEY, assets.SALES_CUSTOMERS_KEY],
    asset_checks=[checks.revenue_is_complete],
)


@dg.definitions
def defs() -> dg.Definitions:
    return team.definitions()
