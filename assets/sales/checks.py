"""What the sales team promises about its products."""

import dagster as dg
import pandas as pd

from assets.sales.assets import customers, orders

ORDER_COLUMNS = {
    "order_id": "str",
    "customer_id": "str",
    "country": "str",
    "amount": "float64",
    "net_amount": "float64",
    "ordered_at": "datetime64[us, UTC]",
}


@dg.asset_check(asset=orders, blocking=True)
def orders_have_unique_ids(orders: pd.DataFrame) -> dg.AssetCheckResult:
    """Every order has an id, and no id appears twice."""
    missing = int(orders["order_id"].isna().sum())
    duplicated = int(orders["order_id"].duplicated().sum())
    return dg.AssetCheckResult(
        passed=missing == 0 and duplicated == 0 and len(orders) > 0,
        metadata={"rows": len(orders), "missing_ids": missing, "duplicated_ids": duplicated},
    )


@dg.asset_check(asset=orders)
def orders_schema_contract(orders: pd.DataFrame) -> dg.AssetCheckResult:
    """The columns downstream teams rely on are present with the agreed types."""
    actual = {name: str(dtype) for name, dtype in orders.dtypes.items()}
    broken = {
        name: actual.get(name, "missing")
        for name, dtype in ORDER_COLUMNS.items()
        if actual.get(name) != dtype
    }
    return dg.AssetCheckResult(passed=not broken, metadata={"broken_columns": broken})


@dg.asset_check(asset=customers)
def customers_have_contact(customers: pd.DataFrame) -> dg.AssetCheckResult:
    """Every customer row has an id and an email address."""
    missing = int(customers[["customer_id", "email"]].isna().any(axis=1).sum())
    return dg.AssetCheckResult(passed=missing == 0, metadata={"rows_missing_keys": missing})
