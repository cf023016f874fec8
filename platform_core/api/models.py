"""The ``/api/v1`` response bodies, as Pydantic models: they are the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Column(BaseModel):
    """One column of a product as its latest materialisation recorded it."""

    name: str
    type: str
    description: str | None = None
    nullable: bool | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class Lineage(BaseModel):
    """Neighbours in the asset graph, across teams; only products the caller may read are named."""

    upstream: list[str]
    downstream: list[str]
    hidden_upstream: int = Field(description="upstream assets the caller may not see")
    hidden_downstream: int = Field(description="downstream assets the caller may not see")


class Freshness(BaseModel):
    """How old the latest materialisation is, against the product's policy if it declares one."""

    status: Literal["fresh", "warn", "stale", "never_materialized", "no_policy", "unknown"]
    policy: dict[str, Any] | None = None
    age_seconds: float | None = None


class Materialization(BaseModel):
    """The latest materialisation of the data served (any partition)."""

    timestamp: datetime
    run_id: str
    partition: str | None = None


class ResidencyRule(BaseModel):
    """A rule of ``policy/compliance.yaml`` on where the product may be stored."""

    rule: str
    jurisdictions: list[str] | None = Field(None, description="allowed; null: any")
    sovereign_only: bool = False
    environments: list[str] | None = Field(None, description="where the rule applies; null: all")


class ProductSummary(BaseModel):
    """A catalog entry: what a product is, whose, how sensitive, and how current."""

    key: str = Field(examples=["sales/orders"])
    team: str
    name: str
    owner: str
    classification: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    residency: list[ResidencyRule] = Field(
        default_factory=list, description="the residency rules covering the product"
    )
    served_from: str = Field(description="the asset whose data this caller reads (a share view)")
    masked: bool
    partitioned: bool
    partitions: list[str]
    row_count: int | None = None
    last_materialization: Materialization | None = None
    freshness: Freshness
    data_url: str


class Product(ProductSummary):
    """One product in full: its columns and its lineage."""

    columns: list[Column]
    column_classes: dict[str, str] = Field(
        default_factory=dict,
        description="classified columns of what the caller reads (pii, sensitive); a share view "
        "has pseudonymised or dropped its source's",
    )
    lineage: Lineage | None = Field(None, description="null while the asset graph is unknown")

    def summary(self) -> ProductSummary:
        return ProductSummary(**self.model_dump(include=set(ProductSummary.model_fields)))


class ProductList(BaseModel):
    items: list[ProductSummary]
    count: int


class ErrorBody(BaseModel):
    errorCode: str
    message: str


class JsonPage(BaseModel):
    """One page of rows; ``next_page_token`` is absent on the last page."""

    columns: list[str]
    rows: list[dict[str, Any]]
    next_page_token: str | None = None
