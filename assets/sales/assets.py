"""Orders as the shop lands them, file by file, the cleaned order book, and its customers."""

import dagster as dg
import pandas as pd

from assets.sales import sample_data
from platform_core.data_product import data_product
from platform_core.feeds import LandingFeed
from platform_core.governance.classification import declassified
from platform_core.landing import LandingZone

TEAM = "sales"
RAW_ORDER_COLUMNS = {
    "order_id": "str",
    "customer_id": "str",
    "email": "str",
    "country": "str",
    "channel": pd.CategoricalDtype(sample_data.CHANNELS),
    "amount": "float64",
    "quantity": "int64",
    "discount": "float64",
    "is_gift": "bool",
    "ordered_at": "datetime64[us, UTC]",
}
ORDERS_FEED = LandingFeed(
    team=TEAM,
    name="orders",
    product="raw_orders",
    columns=RAW_ORDER_COLUMNS,
    sample=sample_data.orders_file,
    seed_at=sample_data.SAMPLE_LANDINGS,
)
PERSONAL_COLUMNS = {"email": "pii"}


@data_product(
    team=TEAM,
    classification="pii",
    partitions_def=ORDERS_FEED.partitions,
    columns=PERSONAL_COLUMNS,
)
def raw_orders(context: dg.AssetExecutionContext, landing: LandingZone) -> pd.DataFrame:
    """One landed orders file as the shop recorded it, customer email included."""
    return landing.read_frame(context.partition_key, ORDERS_FEED)


@data_product(
    team=TEAM,
    classification="confidential",
    declassified=declassified(
        "dropped",
        columns=["email"],
        reason="The order book keeps the customer id, never the contact address.",
    ),
    metadata={
        "dagster/column_lineage": dg.TableColumnLineage(
            deps_by_column={
                "net_amount": [
                    dg.TableColumnDep(asset_key=raw_orders.key, column_name="amount"),
                    dg.TableColumnDep(asset_key=raw_orders.key, column_name="discount"),
                ]
            }
        )
    },
)
def orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    """Every order of every file, without personal data, with the amount after discount."""
    book = raw_orders.drop(columns=["email"]).sort_values("ordered_at", kind="stable")
    book["net_amount"] = (book["amount"] * (1 - book["discount"].fillna(0))).round(2)
    return book.reset_index(drop=True)


@data_product(team=TEAM, classification="pii", columns=PERSONAL_COLUMNS)
def customers(raw_orders: pd.DataFrame) -> pd.DataFrame:
    """One row per customer who ordered: contact email, country, first order and order count."""
    return (
        raw_orders.groupby("customer_id", sort=True)
        .agg(
            email=("email", "first"),
            country=("country", "first"),
            first_order_at=("ordered_at", "min"),
            order_count=("order_id", "count"),
        )
        .reset_index()
    )
