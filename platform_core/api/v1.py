"""``/api/v1``: the catalog (list, search, one product in full) and direct reads of products.

The same bearer tokens as Delta Sharing (platform or SSO). A product the caller may not read and
a product that does not exist are answered alike (404), so the API tells nothing about what the
caller cannot see.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from platform_core.api.catalog import SharedTable, table_name
from platform_core.api.models import ErrorBody, JsonPage, Product, ProductList
from platform_core.api.products import API_PREFIX, ProductCatalog
from platform_core.api.reads import ARROW_STREAM, PARQUET, Format, ReadRequest, serve_read
from platform_core.api.sharing import ProtocolError, Sharing

MAX_PAGE_ROWS = 10_000
NOT_FOUND = ProtocolError(
    404, "RESOURCE_DOES_NOT_EXIST", "No such product, or not readable with this token."
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, unknown, expired or revoked token"},
    404: {"model": ErrorBody, "description": "no such product readable with this token"},
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
DATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Arrow IPC stream, Parquet file, or one page of JSON rows",
        "content": {
            ARROW_STREAM: BINARY,
            PARQUET: BINARY,
            "application/json": {"schema": JsonPage.model_json_schema()},
        },
    },
    400: {"model": ErrorBody, "description": "unknown column, bad partition selection or token"},
    **ERRORS,
}
bearer = HTTPBearer(auto_error=False, description="a platform token (dsh_...) or an SSO JWT")


def router(sharing: Sharing, catalog: ProductCatalog) -> APIRouter:
    """The catalog and read routes under ``API_PREFIX``."""
    api = APIRouter(prefix=API_PREFIX, tags=["catalog"])

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        who = sharing.tokens.principal_for(credentials.credentials) if credentials else None
        if not who or not sharing.catalog.is_principal(who):
            raise ProtocolError(401, "UNAUTHENTICATED", "A valid bearer token is required.")
        return who

    Principal = Annotated[str, Depends(principal)]

    @api.get("/products", response_model=ProductList, responses=ERRORS)
    def list_products(
        who: Principal,
        q: Annotated[str | None, Query(description="text in the key or description")] = None,
        team: str | None = None,
        tag: Annotated[
            str | None, Query(description="a product or column tag: key or key=value")
        ] = None,
        classification: str | None = None,
    ) -> ProductList:
        """The products this token may read, optionally searched."""
        found = catalog.search(who, q, team, tag, classification)
        items = [entry.summary() for entry in found]
        return ProductList(items=items, count=len(items))

    @api.get("/products/{team}/{name}", response_model=Product, responses=ERRORS)
    def get_product(who: Principal, team: str, name: str) -> Product:
        """One product in full: columns with their tags, lineage, freshness."""
        entry = catalog.product(who, team, name)
        if entry is None:
            raise NOT_FOUND
        return entry

    @api.get(
        "/products/{team}/{name}/data",
        response_class=Response,
        responses={**DATA_RESPONSES},
    )
    def read_product(
        who: Principal,
        team: str,
        name: str,
        format: Format = "arrow",
        columns: Annotated[str | None, Query(description="comma-separated column names")] = None,
        partition: str | None = None,
        partition_from: Annotated[
            str | None, Query(description="first partition, inclusive")
        ] = None,
        partition_to: Annotated[str | None, Query(description="last partition, inclusive")] = None,
        limit: Annotated[int | None, Query(ge=0, description="at most this many rows")] = None,
        page_token: Annotated[str | None, Query(description="JSON: the previous page's")] = None,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 1000,
    ) -> Response:
        """The product's data (the share view of a masked grant) as Arrow, Parquet or JSON."""
        table = readable_table(sharing, who, team, name)
        ask = ReadRequest(
            format=format,
            columns=tuple(c.strip() for c in columns.split(",")) if columns else None,
            partition=partition,
            partition_from=partition_from,
            partition_to=partition_to,
            limit=limit,
            offset=offset_of(page_token) if format == "json" else 0,
            page_size=page_size,
        )
        return serve_read(sharing.catalog, who, table, ask)

    return api


def readable_table(sharing: Sharing, principal: str, team: str, name: str) -> SharedTable:
    for product, source in sharing.catalog.readable(principal).items():
        if table_name(product) == (team, name):
            return SharedTable(principal, team, name, product, source)
    sharing.catalog.audit_denial(principal, f"{team}/{name}")
    raise NOT_FOUND


def offset_of(page_token: str | None) -> int:
    if page_token is None:
        return 0
    if not page_token.isdigit() or len(page_token) > 18:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "Bad page_token.")
    return int(page_token)
