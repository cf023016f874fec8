"""Data products as Parquet: pandas DataFrames stored through the target's storage adapter.

Key layout, inside the adapter's root (directory, or bucket and prefix)::

    <environment>/<asset key path>.parquet                     unpartitioned
    <environment>/<asset key path>/<partition key>.parquet     partitioned

Asset keys start with the owning team (``sales/orders``), so every team's products sit under
``<environment>/<team>/``. A partition key is used as it is, its ``/`` separating folders as in
Dagster's own ``UPathIOManager``: a dynamic partition named after a landing file
(``2026/11/30/orders.csv``) is ``.../2026/11/30/orders.csv.parquet``, and the adapter's URI encodes
it once. A partition key that is not a valid storage path (an empty, ``.`` or ``..`` segment) is
refused when written. Multi-partition loads (a downstream asset reading a range or all
partitions) come back as one frame, in partition order.

Parquet is written to a local temporary file in row-group slices and then streamed to storage,
so neither the write nor the upload holds a second full copy of the frame in memory. Reads use
``ParquetFile`` directly (``read_table``'s dataset layer keeps the Arrow buffers alive), decode
without pre-buffering the whole file, and hand Arrow memory back while the DataFrame is built.
The adapter's atomic ``put`` means a failed write leaves the previous version readable.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.storage.base import StorageAdapter

ROW_GROUP_ROWS = 1_000_000
SPOOL_BYTES = 64 * 1024 * 1024


def object_key(environment: str, asset_key: dg.AssetKey, partition_key: str | None = None) -> str:
    """The storage key of one data product (or one partition of it)."""
    base = "/".join([environment, *asset_key.path])
    if partition_key is None:
        return f"{base}.parquet"
    return f"{base}/{partition_key}.parquet"


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """Dagster's standard column schema for an Arrow schema, as the UI shows it."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema
        ]
    )


def _write_parquet(frame: pd.DataFrame, sink: BinaryIO) -> pa.Schema:
    is_default_index = isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    if not is_default_index or len(frame) <= ROW_GROUP_ROWS:
        table = pa.Table.from_pandas(frame)
        pq.write_table(table, sink)
        return table.schema
    schema = pa.Schema.from_pandas(frame)
    with pq.ParquetWriter(sink, schema) as writer:
        for start in range(0, len(frame), ROW_GROUP_ROWS):
            chunk = frame.iloc[start : start + ROW_GROUP_ROWS]
            writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
    return schema


class DataProductIOManager(dg.ConfigurableIOManager):
    """Stores each data product as Parquet in the target's storage and records what it wrote."""

    storage: StorageAdapter
    environment: str

    def _keys(self, context: dg.OutputContext | dg.InputContext) -> list[str]:
        if context.has_asset_partitions:
            return [
                object_key(self.environment, context.asset_key, partition)
                for partition in _ordered_partitions(context)
            ]
        return [object_key(self.environment, context.asset_key)]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"Data product {context.asset_key.to_user_string()} returned "
                f"{type(obj).__name__}; data products return a pandas DataFrame."
            )
        keys = self._keys(context)
        if len(keys) != 1:
            raise ValueError(
                f"Data product {context.asset_key.to_user_string()} was asked to write "
                f"{len(keys)} partitions in one step; run one partition per run instead."
            )
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as parquet:
            schema = _write_parquet(obj, parquet)
            size = parquet.tell()
            parquet.seek(0)
            self.storage.put(keys[0], parquet)
        context.add_output_metadata(
            {
                "dagster/uri": self.storage.uri(keys[0]),
                "dagster/row_count": len(obj),
                "dagster/column_schema": column_schema(schema),
                "dataops/byte_size": size,
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        tables = [self._read(key) for key in self._keys(context)]
        return _concat(tables).to_pandas(self_destruct=True, split_blocks=True)

    def _read(self, key: str) -> pa.Table:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as parquet:
            self.storage.download(key, parquet)
            parquet.seek(0)
            return pq.ParquetFile(parquet, pre_buffer=False).read(use_pandas_metadata=True)


def _ordered_partitions(context: dg.OutputContext | dg.InputContext) -> list[str]:
    """The context's partition keys in their definition's order, so loaded frames are stable."""
    wanted = context.asset_partition_keys
    if len(wanted) < 2:
        return list(wanted)
    partitions_def = context.asset_partitions_def
    is_dynamic = isinstance(partitions_def, dg.DynamicPartitionsDefinition)
    store = context.instance if is_dynamic else None
    chosen = set(wanted)
    return [
        key
        for key in partitions_def.get_partition_keys(dynamic_partitions_store=store)
        if key in chosen
    ]


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")
