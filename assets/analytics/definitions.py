"""The analytics code location."""

from assets.analytics import assets, checks, scoring
from platform_core.definitions import build_team_definitions

defs = build_team_definitions(
    team=assets.TEAM,
    assets=[
        assets.revenue_by_country,
        assets.customer_value,
        assets.regional_daily_revenue,
        scoring.customer_scores,
    ],
    upstream=[assets.SALES_ORDERS_KEY],
    asset_checks=[checks.revenue_is_complete],
)
