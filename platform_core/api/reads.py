"""Direct reads of a product: an Arrow IPC stream, Parquet, or JSON pages, row group by row group.

``serve_read`` is the one place every direct read passes through, after the policy chose what
the caller reads (the product, or the share view of a masked grant). Data is never held whole:
each stored Parquet file is read row group by row group, a slice of rows at a time (files from
stores without seeking are first spooled to a temporary file on disk), cut to the selected columns
and limit, and written out before the next slice is read.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi.responses import JSONResponse, Response, StreamingResponse

from adapters.storage.base import StorageAdapter
from platform_core.api.catalog import PARTITION_COLUMN, Catalog, DataFile, SharedTable
from platform_core.api.sharing import ProtocolError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
BATCH_ROWS = 64 * 1024
READ_BUFFER = 1 << 20
Format = Literal["arrow", "parquet", "json"]


@dataclass(frozen=True)
class ReadRequest:
    """What a caller asked for: format, columns, partitions (one, or a closed range), rows."""

    format: Format = "arrow"
    columns: tuple[str, ...] | None = None
    partition: str | None = None
    partition_from: str | None = None
    partition_to: str | None = None
    limit: int | None = None
    offset: int = 0
    page_size: int = 1000


def invalid(message: str) -> ProtocolError:
    return ProtocolError(400, "INVALID_PARAMETER_VALUE", message)


def selected_files(files: tuple[DataFile, ...], partitioned: bool, ask: ReadRequest) -> list:
    wants_partitions = (ask.partition, ask.partition_from, ask.partition_to) != (None,) * 3
    if not wants_partitions:
        return list(files)
    if not partitioned:
        raise invalid("This product is not partitioned: drop partition, partition_from/_to.")
    if ask.partition is not None:
        if (ask.partition_from, ask.partition_to) != (None, None):
            raise invalid("Give partition, or partition_from/partition_to, not both.")
        return [f for f in files if f.partition == ask.partition]
    low, high = ask.partition_from, ask.partition_to
    return [
        f
        for f in files
        if f.partition is not None
        and (low is None or f.partition >= low)
        and (high is None or f.partition <= high)
    ]


def output_schema(stored: pa.Schema, partitioned: bool, ask: ReadRequest) -> pa.Schema:
    fields = list(stored)
    if partitioned:
        fields.append(pa.field(PARTITION_COLUMN, pa.string()))
    schema = pa.schema(fields)
    if ask.columns is None:
        return schema
    unknown = [c for c in ask.columns if c not in schema.names]
    if unknown:
        known = ", ".join(schema.names)
        raise invalid(f"Unknown column(s): {', '.join(unknown)}. Columns: {known}")
    return pa.schema([schema.field(c) for c in dict.fromkeys(ask.columns)])


@contextmanager
def parquet_file(storage: StorageAdapter, key: str) -> Iterator[pq.ParquetFile]:
    """The stored file opened for row-group reads; spooled to disk where the store cannot seek."""
    with storage.open(key) as stream:
        if stream.seekable():
            yield pq.ParquetFile(stream, buffer_size=READ_BUFFER, pre_buffer=False)
            return
    with tempfile.TemporaryFile() as spool:
        storage.download(key, spool)
        spool.seek(0)
        yield pq.ParquetFile(spool, buffer_size=READ_BUFFER, pre_buffer=False)


def row_groups(
    storage: StorageAdapter,
    files: list[DataFile],
    schema: pa.Schema,
    offset: int = 0,
    limit: int | None = None,
) -> Iterator[pa.Table]:
    """The selected rows, row group by row group in slices of ``BATCH_ROWS``, ``offset`` skipped.

    Column chunks are read through a buffered stream and decoded a slice at a time, so not even
    one whole row group is held at once.
    """
    stored = [n for n in schema.names if n != PARTITION_COLUMN]
    skip, left = offset, limit
    for data_file in files:
        with parquet_file(storage, data_file.key) as parquet:
            for group in range(parquet.num_row_groups):
                rows = parquet.metadata.row_group(group).num_rows
                if skip >= rows:
                    skip -= rows
                    continue
                batches = parquet.iter_batches(
                    batch_size=BATCH_ROWS, row_groups=[group], columns=stored
                )
                for batch in batches:
                    if left is not None and left <= 0:
                        return
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    table = pa.Table.from_batches([batch.slice(skip)])
                    skip = 0
                    if left is not None:
                        table = table.slice(0, left)
                        left -= table.num_rows
                    if PARTITION_COLUMN in schema.names:
                        value = pa.array([data_file.partition] * table.num_rows, pa.string())
                        table = table.append_column(PARTITION_COLUMN, value)
                    yield table.select(schema.names).cast(schema)


class Pending(io.RawIOBase):
    """A write-only sink whose bytes are taken out as they are written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def arrow_stream(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    sink = Pending()
    with pa.ipc.new_stream(sink, schema) as writer:
        yield sink.take()
        for table in tables:
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                writer.write_batch(batch)
                yield sink.take()
    yield sink.take()


def parquet_stream(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    sink = Pending()
    with pq.ParquetWriter(sink, schema) as writer:
        for table in tables:
            writer.write_table(table)
            yield sink.take()
    yield sink.take()


def json_rows(table: pa.Table) -> list[dict]:
    """Rows as JSON-ready dictionaries: NaN as null, other non-JSON values as strings."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), None, column)
        elif not (
            pa.types.is_integer(column.type)
            or pa.types.is_boolean(column.type)
            or pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)
        ):
            column = column.cast(pa.string()) if _castable(column.type) else column
        columns[name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _castable(arrow: pa.DataType) -> bool:
    return not (pa.types.is_nested(arrow) or pa.types.is_binary(arrow))


def json_page(storage: StorageAdapter, files: list, schema: pa.Schema, ask: ReadRequest) -> dict:
    wanted = ask.page_size + 1
    if ask.limit is not None:
        wanted = min(wanted, max(ask.limit - ask.offset, 0))
    rows: list[dict] = []
    for table in row_groups(storage, files, schema, ask.offset, wanted):
        rows.extend(json_rows(table))
    page = {"columns": schema.names, "rows": rows[: ask.page_size]}
    if len(rows) > ask.page_size:
        page["next_page_token"] = str(ask.offset + ask.page_size)
    return page


def serve_read(catalog: Catalog, principal: str, table: SharedTable, ask: ReadRequest) -> Response:
    """Serve one direct read of ``table`` (already granted to ``principal``) as ``ask`` says."""
    snapshot = catalog.snapshot(table)
    if not snapshot.files:
        raise ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", "This product has no data yet.")
    files = selected_files(snapshot.files, snapshot.partitioned, ask)
    partition = ask.partition or (
        f"{ask.partition_from or ''}..{ask.partition_to or ''}"
        if ask.partition_from or ask.partition_to
        else None
    )
    catalog.audit_read(f"api_read_{ask.format}", principal, table, files, partition)
    schema = output_schema(snapshot.schema, snapshot.partitioned, ask)
    headers = {"Cache-Control": "no-store", "X-Dataops-Served-From": table.source}
    if ask.format == "json":
        return JSONResponse(json_page(catalog.storage, files, schema, ask), headers=headers)
    tables = row_groups(catalog.storage, files, schema, ask.offset, ask.limit)
    if ask.format == "parquet":
        body, media_type = parquet_stream(tables, schema), PARQUET
    else:
        body, media_type = arrow_stream(tables, schema), ARROW_STREAM
    return StreamingResponse(body, headers=headers, media_type=media_type)
