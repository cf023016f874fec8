"""Orders as taken each day, the cleaned order book, and the customers behind it."""

import dagster as dg
import pandas as pd

from assets.sales.sample_data import orders_for_day
from platform_core.data_product import data_product

TEAM = "sales"
ORDER_DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-08")


@data_product(team=TEAM, classification="pii", partitions_def=ORDER_DAYS)
def raw_orders(context: dg.AssetExecutionContext) -> pd.DataFrame:
    """Each day's orders as the shop recorded them, customer email included."""
    return orders_for_day(context.partition_key)


@data_product(team=TEAM, classification="confidential")
def orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    """Every order of every day, without personal data, with the amount after discount."""
    book = raw_orders.drop(columns=["email"]).sort_values("ordered_at", kind="stable")
    book["net_amount"] = (book["amount"] * (1 - book["discount"].fillna(0))).round(2)
    return book.reset_index(drop=True)


@data_product(team=TEAM, classification="pii")
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
