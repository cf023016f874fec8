"""What the analytics team promises about its products."""

import dagster as dg
import pandas as pd

from assets.analytics.assets import revenue_by_country


@dg.asset_check(asset=revenue_by_country, blocking=True)
def revenue_is_complete(revenue_by_country: pd.DataFrame) -> dg.AssetCheckResult:
    """Every country is named, no revenue is negative, and some revenue exists."""
    unnamed = int(revenue_by_country["country"].isna().sum())
    negative = int((revenue_by_country["revenue"] < 0).sum())
    return dg.AssetCheckResult(
        passed=unnamed == 0 and negative == 0 and len(revenue_by_country) > 0,
        metadata={"countries": len(revenue_by_country), "unnamed": unnamed, "negative": negative},
    )
