"""The Delta Sharing protocol (read-only, Parquet response format) over the catalog.

Routes follow PROTOCOL.md of delta-io/delta-sharing under ``/delta-sharing``: shares, schemas,
tables, all-tables, table version, metadata and query, plus ``/files/{reference}``, the signed
file URLs the query hands out (HEAD with Content-Length, single byte ranges answered 206). A
table is served at its current version only; asking for another version or a timestamp is the
protocol's error for a table without history sharing. A missing or unknown token is 401; anything
outside the token's share, known or not, is one uniform 403 that tells nothing about what exists.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from adapters.storage.base import CHUNK_SIZE, ObjectNotFoundError
from platform_core.api.catalog import PARTITION_COLUMN, Catalog, SharedTable, Snapshot
from platform_core.api.delta_schema import schema_string
from platform_core.api.identity import Authenticator
from platform_core.api.signing import BadSignature, Signer

BASE_PATH = "/delta-sharing"
NDJSON = "application/x-ndjson"
VERSION_HEADER = "delta-table-version"
CAPABILITIES_HEADER = "delta-sharing-capabilities"
PARQUET_FORMAT = "responseformat=parquet"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ProtocolError(Exception):
    """An error answered as the protocol's ``{"errorCode", "message"}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(_: Request, error: ProtocolError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(
        {"errorCode": error.code, "message": error.message}, error.status, headers=headers
    )


DENIED = ProtocolError(403, "PERMISSION_DENIED", "Not shared with this recipient.")


class Sharing:
    """The protocol's handlers, bound to a catalog, the token checks and a URL signer."""

    def __init__(
        self, catalog: Catalog, tokens: Authenticator, signer: Signer, url_lifetime: float
    ) -> None:
        self.catalog, self.tokens, self.signer = catalog, tokens, signer
        self.url_lifetime = url_lifetime

    def principal(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        principal = self.tokens.principal_for(token.strip()) if scheme.lower() == "bearer" else None
        if not principal:
            raise ProtocolError(401, "UNAUTHENTICATED", "A valid bearer token is required.")
        return principal

    def share_of(self, request: Request, share: str) -> str:
        principal = self.principal(request)
        if share != principal or not self.catalog.is_principal(principal):
            raise DENIED
        return principal

    def table(self, request: Request, share: str, schema: str, name: str) -> SharedTable:
        principal = self.share_of(request, share)
        table = self.catalog.table(principal, schema, name)
        if table is None:
            self.catalog.audit_denial(principal, f"{schema}/{name}")
            raise DENIED
        return table


def page(items: Sequence[dict[str, Any]], request: Request) -> dict[str, Any]:
    """``items`` cut to ``maxResults`` from ``pageToken`` (an offset), with the next token."""
    try:
        start = int(request.query_params.get("pageToken") or 0)
        size = int(request.query_params.get("maxResults") or len(items) or 1)
    except ValueError as exc:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "Bad maxResults or pageToken.") from exc
    if start < 0 or size < 1:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "Bad maxResults or pageToken.")
    body: dict[str, Any] = {"items": list(items[start : start + size])}
    if start + size < len(items):
        body["nextPageToken"] = str(start + size)
    return body


def table_item(table: SharedTable) -> dict[str, str]:
    return {
        "name": table.name,
        "schema": table.schema,
        "share": table.share,
        "shareId": table.share,
        "id": table.id,
    }


def protocol_lines(table: SharedTable, snapshot: Snapshot) -> list[dict[str, Any]]:
    partition = PARTITION_COLUMN if snapshot.partitioned else None
    return [
        {"protocol": {"minReaderVersion": 1}},
        {
            "metaData": {
                "id": table.id,
                "name": table.name,
                "format": {"provider": "parquet"},
                "schemaString": schema_string(snapshot.schema, partition),
                "partitionColumns": [partition] if partition else [],
                "configuration": {},
                "version": snapshot.version,
                "size": sum(f.size for f in snapshot.files),
                "numFiles": len(snapshot.files),
            }
        },
    ]


def ndjson(lines: list[dict[str, Any]], snapshot: Snapshot) -> Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    headers = {VERSION_HEADER: str(snapshot.version), CAPABILITIES_HEADER: PARQUET_FORMAT}
    return Response(body, media_type=NDJSON, headers=headers)


def current_version_only(body: dict[str, Any], snapshot: Snapshot, table: SharedTable) -> None:
    version = body.get("version")
    if body.get("timestamp") is not None or (version is not None and version != snapshot.version):
        raise ProtocolError(
            400,
            "INVALID_PARAMETER_VALUE",
            "Reading table by version or timestamp is not supported because history sharing is "
            f"not enabled on table: {table.share}.{table.schema}.{table.name}",
        )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single ``Range`` header; None for the whole object."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ProtocolError(416, "INVALID_PARAMETER_VALUE", "Only one byte range is supported.")
    first, last = match.groups()
    if first == "":
        start = max(size - int(last), 0)
        end = size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ProtocolError(416, "INVALID_PARAMETER_VALUE", "Range not satisfiable.")
    return start, end - start + 1


def router(sharing: Sharing) -> APIRouter:
    """The protocol's routes under ``BASE_PATH``."""
    api = APIRouter(prefix=BASE_PATH)
    principal = Depends(sharing.principal)

    @api.get("/shares")
    def list_shares(request: Request, who: str = principal) -> dict[str, Any]:
        shares = [{"name": who, "id": who}] if sharing.catalog.is_principal(who) else []
        return page(shares, request)

    @api.get("/shares/{share}")
    def get_share(request: Request, share: str) -> dict[str, Any]:
        who = sharing.share_of(request, share)
        return {"share": {"name": who, "id": who}}

    @api.get("/shares/{share}/schemas")
    def list_schemas(request: Request, share: str) -> dict[str, Any]:
        who = sharing.share_of(request, share)
        schemas = sorted({t.schema for t in sharing.catalog.tables(who)})
        return page([{"name": s, "share": who} for s in schemas], request)

    @api.get("/shares/{share}/schemas/{schema}/tables")
    def list_tables(request: Request, share: str, schema: str) -> dict[str, Any]:
        who = sharing.share_of(request, share)
        tables = [t for t in sharing.catalog.tables(who) if t.schema == schema]
        if not tables:
            raise DENIED
        return page([table_item(t) for t in tables], request)

    @api.get("/shares/{share}/all-tables")
    def list_all_tables(request: Request, share: str) -> dict[str, Any]:
        who = sharing.share_of(request, share)
        return page([table_item(t) for t in sharing.catalog.tables(who)], request)

    table_path = "/shares/{share}/schemas/{schema}/tables/{name}"

    @api.api_route(f"{table_path}/version", methods=["GET", "HEAD"])
    def table_version(request: Request, share: str, schema: str, name: str) -> Response:
        table = sharing.table(request, share, schema, name)
        snapshot = sharing.catalog.snapshot(table)
        timestamp = request.query_params.get("startingTimestamp")
        current_version_only({"timestamp": timestamp}, snapshot, table)
        return Response(headers={VERSION_HEADER: str(snapshot.version)})

    @api.get(f"{table_path}/metadata")
    def table_metadata(request: Request, share: str, schema: str, name: str) -> Response:
        table = sharing.table(request, share, schema, name)
        snapshot = sharing.catalog.snapshot(table)
        return ndjson(protocol_lines(table, snapshot), snapshot)

    @api.post(f"{table_path}/query")
    def query(
        request: Request,
        share: str,
        schema: str,
        name: str,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> Response:
        body = body or {}
        table = sharing.table(request, share, schema, name)
        snapshot = sharing.catalog.snapshot(table)
        current_version_only(body, snapshot, table)
        limit = body.get("limitHint")
        expires = time.time() + sharing.url_lifetime
        lines = protocol_lines(table, snapshot)
        rows, served = 0, []
        for data_file in snapshot.files:
            if isinstance(limit, int) and data_file.rows is not None and rows >= limit:
                break
            rows += data_file.rows or 0
            reference = sharing.signer.sign(data_file.key, expires)
            action: dict[str, Any] = {
                "url": str(request.url_for("file", reference=reference)),
                "id": data_file.id,
                "partitionValues": (
                    {PARTITION_COLUMN: data_file.partition} if snapshot.partitioned else {}
                ),
                "size": data_file.size,
                "expirationTimestamp": int(expires * 1000),
            }
            if data_file.rows is not None:
                action["stats"] = json.dumps({"numRecords": data_file.rows})
            lines.append({"file": action})
            served.append(data_file)
        sharing.catalog.audit_read("share_query", table.share, table, served)
        return ndjson(lines, snapshot)

    @api.api_route("/files/{reference}", methods=["GET", "HEAD"], name="file")
    def file(request: Request, reference: str) -> Response:
        try:
            key = sharing.signer.verify(reference)
            size = sharing.catalog.storage.stat(key).size
        except (BadSignature, ObjectNotFoundError) as exc:
            raise ProtocolError(403, "PERMISSION_DENIED", "Invalid or expired file URL.") from exc
        wanted = byte_range(request.headers.get("range"), size)
        start, length = wanted or (0, size)
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(length)}
        status = 200
        if wanted:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(
            read_range(sharing.catalog, key, start, length),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    return api


def read_range(catalog: Catalog, key: str, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``key`` from ``start``: seeking where the stream can, else skipping."""
    with catalog.storage.open(key) as stream:
        if stream.seekable():
            stream.seek(start)
        else:
            skip = start
            while skip:
                skipped = len(stream.read(min(skip, CHUNK_SIZE)))
                if not skipped:
                    return
                skip -= skipped
        left = length
        while left:
            chunk = stream.read(min(left, CHUNK_SIZE))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
