"""Data products as Parquet: pandas DataFrames stored through the target's storage adapter.

Key layout, inside the adapter's root (directory, or bucket and prefix)::

    <environment>/<asset key path>.parquet                     unpartitioned
    <environment>/<asset key path>/<partition key>.parquet     partitioned

Asset keys start with the owning team (``sales/orders``), so every team's products sit under
``<environment>/<team>/``. A partition key is used as a path, its ``/`` separating folders as in
Dagster's own ``UPathIOManager``: a dynamic partition named after a landing file
(``2026/11/30/orders.csv``) is ``.../2026/11/30/orders.csv.parquet``, so its URI is encoded once.
Only keys every backend stores safely are used as they are: each segment starts with a letter or
digit, holds letters, digits, spaces and ``._=+@,-``, is at most 200 bytes and does not end in
``.parquet`` (which could collide with another partition's file). Any other key (``..``, a hidden
or empty segment, ``%``, control characters, a 300-character file name) is stored under one
name, its readable start and its SHA-256 joined by ``~`` (which no key stored as-is contains),
and the original is recorded as ``dataops/partition_key``. Multi-partition loads (a downstream
asset reading a range or all partitions) come back as one frame, in partition order.

Parquet is written to a local temporary file in row-group slices and then streamed to storage,
so neither the write nor the upload holds a second full copy of the frame in memory. Reads use
``ParquetFile`` directly (``read_table``'s dataset layer keeps the Arrow buffers alive), decode
without pre-buffering the whole file, and hand Arrow memory back while the DataFrame is built.
The adapter's atomic ``put`` means a failed write leaves the previous version readable.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import PrivateAttr

from adapters.storage.base import ObjectNotFoundError, StorageAdapter
from platform_core.audit.trail import AuditTrail
from platform_core.governance.guard import AccessGuard

ROW_GROUP_ROWS = 1_000_000
SPOOL_BYTES = 64 * 1024 * 1024
MAX_SEGMENT_BYTES = 200
MAX_KEY_BYTES = 800
READABLE_CHARACTERS = 140
SAFE_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._=+@,-]*")
MAX_MISSING_FRACTION = 0.5


def object_key(environment: str, asset_key: dg.AssetKey, partition_key: str | None = None) -> str:
    """The storage key of one data product (or one partition of it).

    A partition key becomes a path under the product's folder (``partition_path``); one that
    not every backend stores safely is mapped to one safe name, and the IO manager records the
    original as ``dataops/partition_key``.
    """
    base = "/".join([environment, *asset_key.path])
    if partition_key is None:
        return f"{base}.parquet"
    return f"{base}/{partition_path(partition_key)}.parquet"


def stored_as_is(partition_key: str) -> bool:
    """Whether the partition's object path is its key, unchanged."""
    segments = partition_key.split("/")
    return len(partition_key.encode()) <= MAX_KEY_BYTES and all(
        SAFE_SEGMENT.fullmatch(segment)
        and len(segment.encode()) <= MAX_SEGMENT_BYTES
        and not segment.endswith(".parquet")
        for segment in segments
    )


def partition_path(partition_key: str) -> str:
    """One partition's object path under its product's folder, without extension."""
    if stored_as_is(partition_key):
        return partition_key
    readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", partition_key)[:READABLE_CHARACTERS]
    readable = re.sub(r"^[^A-Za-z0-9]+", "", readable) or "key"
    return f"{readable}~{hashlib.sha256(partition_key.encode()).hexdigest()}"


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
    guard: AccessGuard | None = None
    audit: AuditTrail | None = None

    _partial: dict[tuple[str, str], dict[str, dict]] = PrivateAttr(default_factory=dict)

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
        if self.guard is not None:
            for key in keys:
                self.guard.check_write(context.asset_key.to_user_string(), key)
        if len(keys) != 1:
            raise ValueError(
                f"Data product {context.asset_key.to_user_string()} was asked to write "
                f"{len(keys)} partitions in one step; run one partition per run instead."
            )
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as parquet:
            schema = _write_parquet(obj, parquet)
            size = parquet.tell()
            parquet.seek(0)
            with self._refusal(context, writing=True):
                self.storage.put(keys[0], parquet)
        metadata = {
            "dagster/uri": self.storage.uri(keys[0]),
            "dagster/row_count": len(obj),
            "dagster/column_schema": column_schema(schema),
            "dataops/byte_size": size,
        }
        if context.has_asset_partitions and not stored_as_is(context.asset_partition_key):
            metadata["dataops/partition_key"] = context.asset_partition_key
        partial = self._partial.pop(_step_of(context), None)
        if partial:
            metadata["dataops/upstream_partitions"] = dg.MetadataValue.json(partial)
            metadata["dataops/upstream_partitions_missing"] = sum(
                entry["missing_count"] for entry in partial.values()
            )
        context.add_output_metadata(metadata)
        if self.audit is not None:
            self.audit.wrote(context, keys[0], len(obj), size)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """One partition, or every requested partition that exists, as one frame.

        A downstream product never dies of one upstream partition: partitions without a stored
        object (a quarantined file, a failed run) are left out, and the product's materialisation
        records how many were loaded and which were missing (``dataops/upstream_partitions``).
        The load fails only when none exists, or more than half are missing.
        """
        if self.guard is not None:
            self.guard.check_read(context.asset_key.to_user_string())
        keys = self._keys(context)
        if len(keys) == 1:
            with self._refusal(context):
                table = self._read(keys[0])
            return self._audited(context, keys, table)
        tables, missing = [], []
        for partition, key in zip(_ordered_partitions(context), keys, strict=True):
            try:
                with self._refusal(context):
                    tables.append(self._read(key))
            except ObjectNotFoundError:
                missing.append(partition)
        name = context.asset_key.to_user_string()
        if not tables or len(missing) > MAX_MISSING_FRACTION * len(keys):
            raise dg.Failure(
                description=f"{len(missing)} of {len(keys)} partitions of {name} have no stored "
                f"data (first: {missing[:5]}); more than {MAX_MISSING_FRACTION:.0%} missing "
                "fails the load. Materialise or fix those partitions first.",
                allow_retries=False,
            )
        self._remember_partial(context, name, len(tables), missing)
        if missing:
            context.log.warning(
                f"{name}: {len(missing)} of {len(keys)} partitions have no stored data and are "
                f"left out: {missing[:5]}"
            )
        return self._audited(context, keys, _concat(tables))

    def _audited(self, context: dg.InputContext, keys: list[str], table: pa.Table) -> pd.DataFrame:
        if self.audit is not None:
            self.audit.read(context, keys, table)
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def _refusal(
        self, context: dg.OutputContext | dg.InputContext, writing: bool = False
    ) -> AbstractContextManager[None]:
        """A storage 403 as the guard's ``AccessDenied`` (nothing to map without a guard)."""
        if self.guard is None:
            return nullcontext()
        return self.guard.storage_refusal(context.asset_key.to_user_string(), writing)

    def _remember_partial(
        self, context: dg.InputContext, name: str, loaded: int, missing: list[str]
    ) -> None:
        """Keep what a partial load left out, for the output's metadata of the same step."""
        step = _step_of(context)
        if step is not None:
            self._partial.setdefault(step, {})[name] = {
                "loaded": loaded,
                "missing": missing[:50],
                "missing_count": len(missing),
            }

    def _read(self, key: str) -> pa.Table:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as parquet:
            self.storage.download(key, parquet)
            parquet.seek(0)
            return pq.ParquetFile(parquet, pre_buffer=False).read(use_pandas_metadata=True)


def _step_of(context: dg.InputContext | dg.OutputContext) -> tuple[str, str] | None:
    """(run id, step key) of the step loading or writing; None outside a run (a test's context)."""
    try:
        step = context.step_context
    except dg.DagsterInvariantViolationError:
        return None
    return step.run_id, step.step.key


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
