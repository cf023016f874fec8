"""Revenue views and customer value, computed from the sales team's order book."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from platform_core.data_product import data_product
from platform_core.governance.access import share_view_key

TEAM = "analytics"
SALES_ORDERS_KEY = dg.AssetKey(["sales", "orders"])
SALES_ORDERS = dg.AssetIn(key=SALES_ORDERS_KEY)
SALES_CUSTOMERS_KEY = dg.AssetKey(share_view_key("sales/customers", TEAM).split("/"))
REGIONS = {
    "emea": ["DE", "FR", "NL", "ES", "IT"],
    "amer": ["US", "CA", "BR"],
    "apac": ["JP", "IN", "AU", "SG"],
}
REGION_PARTITIONS = dg.StaticPartitionsDefinition(list(REGIONS))


@data_product(
    team=TEAM,
    classification="internal",
    ins={"orders": SALES_ORDERS},
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=1), warn_window=timedelta(hours=12)
    ),
    metadata={
        "dagster/column_lineage": dg.TableColumnLineage(
            deps_by_column={
                column: [dg.TableColumnDep(asset_key=SALES_ORDERS_KEY, column_name=source)]
                for column, source in (
                    ("country", "country"),
                    ("orders", "order_id"),
                    ("revenue", "net_amount"),
                )
            }
        )
    },
)
def revenue_by_country(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders and net revenue per country, largest first."""
    return (
        orders.groupby("country", sort=True)
        .agg(orders=("order_id", "count"), revenue=("net_amount", "sum"))
        .round({"revenue": 2})
        .sort_values(["revenue", "country"], ascending=[False, True])
        .reset_index()
    )


@data_product(team=TEAM, classification="confidential", ins={"orders": SALES_ORDERS})
def customer_value(orders: pd.DataFrame) -> pd.DataFrame:
    """Per customer: home country, number of orders and net revenue."""
    return (
        orders.groupby("customer_id", sort=True)
        .agg(
            country=("country", "first"),
            orders=("order_id", "count"),
            revenue=("net_amount", "sum"),
        )
        .round({"revenue": 2})
        .reset_index()
    )


@data_product(
    team=TEAM,
    classification="internal",
    partitions_def=REGION_PARTITIONS,
    ins={"orders": SALES_ORDERS},
)
def regional_daily_revenue(context: dg.AssetExecutionContext, orders: pd.DataFrame) -> pd.DataFrame:
    """Net revenue per day and channel within one sales region."""
    in_region = orders[orders["country"].isin(REGIONS[context.partition_key])]
    return (
        in_region.assign(day=in_region["ordered_at"].dt.strftime("%Y-%m-%d"))
        .groupby(["day", "channel"], observed=True, sort=True)
        .agg(revenue=("net_amount", "sum"))
        .round({"revenue": 2})
        .reset_index()
    )


@data_product(
    team=TEAM,
    classification="internal",
    ins={
        "customer_value": dg.AssetIn(key=[TEAM, "customer_value"]),
        "customers": dg.AssetIn(key=SALES_CUSTOMERS_KEY),
    },
)
def customer_reach(customer_value: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Per country: customers with revenue and distinct contacts, joined on sales' share view.

    The view carries each customer's email as a pseudonym, never the address: distinct
    pseudonyms count distinct contacts, and the join needs no personal data.
    """
    joined = customer_value.merge(customers[["customer_id", "email"]], on="customer_id")
    return (
        joined.groupby("country", sort=True)
        .agg(customers=("customer_id", "nunique"), contacts=("email", "nunique"))
        .reset_index()
    )
