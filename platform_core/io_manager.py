"""Data products as Parquet, stored through the target's storage adapter.

A product is a pandas ``DataFrame``, a ``pyarrow.Table``, or a ``pyarrow.RecordBatchReader`` for
products larger than memory: written row group by row group and read back as a reader, one batch
at a time. The asset's return annotation (or the object) decides how it is written, the input's
annotation how it is read back, whatever type wrote it.

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
asset reading a range or all partitions) come back in partition order: as one frame or table, or
as one reader streaming partition after partition.

Parquet is encoded in row-group slices straight into the adapter's ``open_output`` stream (the
local file that is renamed into place, or the multipart, block or resumable upload), so every byte
is written once and no second copy of the product is held. Every outgoing piece passes through
``_write`` before it is encoded. The stream publishes only on a clean finish, so a failed write
leaves the previous version readable. Reads decode from the adapter's ``open_input`` (a memory
map locally, ranged reads on object stores) with ``ParquetFile`` directly (``read_table``'s
dataset layer keeps the Arrow buffers alive), and hand Arrow memory back while a frame is built.
A frame or table is read whole, so its column chunks are fetched in a few coalesced ranges
(``pre_buffer``: one request instead of one per chunk, what makes object stores fast); a reader
fetches chunk by chunk, so its memory stays one row group.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import PrivateAttr

from adapters.storage.base import ObjectNotFoundError, StorageAdapter
from platform_core.audit.trail import AuditTrail
from platform_core.dictionary_encoding import dictionary_columns
from platform_core.governance.classification import column_classes
from platform_core.governance.compliance import ComplianceGuard
from platform_core.governance.guard import AccessGuard
from platform_core.governance.ownership import CLASSIFICATION_TAG

ROW_GROUP_ROWS = 1_000_000
BATCH_ROWS = 128 * 1024
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


def column_schema(schema: pa.Schema, classes: Mapping[str, str] | None = None) -> dg.TableSchema:
    """Dagster's standard column schema for an Arrow schema, as the UI shows it, with each
    declared column class (``pii``, ``sensitive``) as the column's classification tag."""
    classes = classes or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
                tags={CLASSIFICATION_TAG: classes[field.name]} if field.name in classes else {},
            )
            for field in schema
        ]
    )


Product = pd.DataFrame | pa.Table | pa.RecordBatchReader
PRODUCT_TYPES = (pd.DataFrame, pa.Table, pa.RecordBatchReader)


def _pieces(product: Product) -> tuple[pa.Schema, Iterable[pa.Table]]:
    """The product's Arrow schema and its rows as tables of about one row group each.

    A frame is converted a slice at a time (a non-default index in one go, as it is stored
    whole); a reader's batches are gathered into row groups as they arrive.
    """
    if isinstance(product, pa.Table):
        return product.schema, [product]
    if isinstance(product, pa.RecordBatchReader):
        return product.schema, _row_groups(product)
    is_default_index = isinstance(product.index, pd.RangeIndex) and product.index.start == 0
    if not is_default_index or len(product) <= ROW_GROUP_ROWS:
        table = pa.Table.from_pandas(product)
        return table.schema, [table]
    schema = pa.Schema.from_pandas(product)
    slices = (
        pa.Table.from_pandas(
            product.iloc[start : start + ROW_GROUP_ROWS], schema=schema, preserve_index=False
        )
        for start in range(0, len(product), ROW_GROUP_ROWS)
    )
    return schema, slices


def _row_groups(reader: pa.RecordBatchReader) -> Iterator[pa.Table]:
    """The reader's rows as tables of exactly ``ROW_GROUP_ROWS`` (the last one shorter)."""
    gathered = reader.schema.empty_table()
    for batch in reader:
        gathered = pa.concat_tables([gathered, pa.Table.from_batches([batch], reader.schema)])
        while gathered.num_rows >= ROW_GROUP_ROWS:
            yield gathered.slice(0, ROW_GROUP_ROWS)
            gathered = gathered.slice(ROW_GROUP_ROWS)
    if gathered.num_rows:
        yield gathered


class DataProductIOManager(dg.ConfigurableIOManager):
    """Stores each data product as Parquet in the target's storage and records what it wrote."""

    storage: StorageAdapter
    environment: str
    guard: AccessGuard | None = None
    compliance: ComplianceGuard | None = None
    audit: AuditTrail | None = None

    _partial: dict[tuple[str, str], dict[str, dict]] = PrivateAttr(default_factory=dict)

    def _keys(self, context: dg.OutputContext | dg.InputContext) -> list[str]:
        if context.has_asset_partitions:
            return [
                object_key(self.environment, context.asset_key, partition)
                for partition in _ordered_partitions(context)
            ]
        return [object_key(self.environment, context.asset_key)]

    def handle_output(self, context: dg.OutputContext, obj: Product) -> None:
        if self.compliance is not None:
            self.compliance.check_residency(context.asset_key.to_user_string())
        if not isinstance(obj, PRODUCT_TYPES):
            raise TypeError(
                f"Data product {context.asset_key.to_user_string()} returned "
                f"{type(obj).__name__}; data products return a pandas DataFrame, a "
                "pyarrow.Table or a pyarrow.RecordBatchReader."
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
        schema, pieces = _pieces(obj)
        name = context.asset_key.to_user_string()
        scan = self.compliance.scanner(name) if self.compliance is not None else None
        with self._refusal(context, writing=True):
            rows, size = self._write(keys[0], schema, pieces, scan)
        metadata = {
            "dagster/uri": self.storage.uri(keys[0]),
            "dagster/row_count": rows,
            "dagster/column_schema": column_schema(
                schema, column_classes(context.definition_metadata or {})
            ),
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
            self.audit.wrote(context, keys[0], rows, size)

    def _write(
        self,
        key: str,
        schema: pa.Schema,
        pieces: Iterable[pa.Table],
        scan: Callable[[pa.Table], None] | None = None,
    ) -> tuple[int, int]:
        """Encode every piece into the stored object: rows written and the object's bytes.

        The one place each outgoing table passes before it is written. A second thread makes
        the next piece (converting a frame's slice, gathering a reader's batches) and runs
        ``scan`` (the personal-data scanner) on it while the main thread encodes the current
        one, both mostly outside the GIL: the conversion and the scan cost no wall time, at
        most two pieces are held at once, and a piece is encoded only once it was scanned. A
        refusal raises before the commit, so the upload is aborted and nothing is published.
        """
        upcoming = iter(pieces)

        def prepared() -> pa.Table | None:
            piece = next(upcoming, None)
            if piece is not None and scan is not None:
                scan(piece)
            return piece

        rows = 0
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as preparing,
            self.storage.open_output(key) as output,
        ):
            piece = prepared()
            dictionary = dictionary_columns(piece if piece is not None else schema.empty_table())
            with pq.ParquetWriter(output, schema, use_dictionary=dictionary) as writer:
                while piece is not None:
                    following = preparing.submit(prepared)
                    writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
                    rows += piece.num_rows
                    del piece
                    piece = following.result()
        assert output.info is not None
        return rows, output.info.size

    def load_input(self, context: dg.InputContext) -> Product:
        """One partition, or every requested partition that exists, as the input's type.

        A downstream product never dies of one upstream partition: partitions without a stored
        object (a quarantined file, a failed run) are left out, and the product's materialisation
        records how many were loaded and which were missing (``dataops/upstream_partitions``).
        The load fails only when none exists, or more than half are missing.
        """
        if self.guard is not None:
            self.guard.check_read(context.asset_key.to_user_string())
        wanted = _wanted_type(context)
        keys = self._keys(context)
        if len(keys) == 1:
            with self._refusal(context):
                opened = [self._open(keys[0], wanted)]
            return self._audited(context, keys, wanted, opened)
        opened, loaded, missing = [], [], []
        for partition, key in zip(_ordered_partitions(context), keys, strict=True):
            try:
                with self._refusal(context):
                    opened.append(self._open(key, wanted))
                loaded.append(key)
            except ObjectNotFoundError:
                missing.append(partition)
        name = context.asset_key.to_user_string()
        if not opened or len(missing) > MAX_MISSING_FRACTION * len(keys):
            raise dg.Failure(
                description=f"{len(missing)} of {len(keys)} partitions of {name} have no stored "
                f"data (first: {missing[:5]}); more than {MAX_MISSING_FRACTION:.0%} missing "
                "fails the load. Materialise or fix those partitions first.",
                allow_retries=False,
            )
        self._remember_partial(context, name, len(opened), missing)
        if missing:
            context.log.warning(
                f"{name}: {len(missing)} of {len(keys)} partitions have no stored data and are "
                f"left out: {missing[:5]}"
            )
        return self._audited(context, loaded, wanted, opened)

    def _audited(
        self,
        context: dg.InputContext,
        keys: Sequence[str],
        wanted: Any,
        opened: Sequence[tuple[pq.ParquetFile, int]],
    ) -> Product:
        """The opened objects as the wanted product, their read recorded in the audit trail.

        Rows come from the Parquet footers, so a reader is recorded without being consumed.
        """
        files = [file for file, _ in opened]
        if self.audit is not None:
            rows = sum(file.metadata.num_rows for file in files)
            self.audit.read(context, keys, rows, sum(size for _, size in opened))
        return _as(wanted, files)

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

    def _open(self, key: str, wanted: Any) -> tuple[pq.ParquetFile, int]:
        """The stored object as a Parquet file, and its size in bytes."""
        whole = wanted is not pa.RecordBatchReader
        source = self.storage.open_input(key, whole=whole)
        return pq.ParquetFile(source, pre_buffer=whole), source.size()


def _wanted_type(context: dg.InputContext) -> Any:
    """What the input's annotation asks for: a Table, a reader, or else a DataFrame (also for
    a context built without a type, as a test or script builds one)."""
    try:
        wanted = context.dagster_type.typing_type
    except dg.DagsterInvariantViolationError:
        return pd.DataFrame
    return wanted if wanted in (pa.Table, pa.RecordBatchReader) else pd.DataFrame


def _as(wanted: Any, files: Sequence[pq.ParquetFile]) -> Product:
    """The stored files, in order, as one product of the wanted type."""
    if wanted is pa.RecordBatchReader:
        schema = _unified([file.schema_arrow for file in files])
        return pa.RecordBatchReader.from_batches(schema, _stream(files, schema))
    table = _concat([file.read(use_pandas_metadata=True) for file in files])
    if wanted is pa.Table:
        return table
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _stream(files: Sequence[pq.ParquetFile], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Batches of each file in turn, each file read row group by row group as it is consumed."""
    for file in files:
        conform = file.schema_arrow != schema
        for batch in file.iter_batches(batch_size=BATCH_ROWS, use_pandas_metadata=True):
            yield _conformed(batch, schema) if conform else batch


def _unified(schemas: Sequence[pa.Schema]) -> pa.Schema:
    if len(schemas) == 1:
        return schemas[0]
    return pa.unify_schemas(schemas, promote_options="permissive")


def _conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A partition's batch in the unified schema: missing columns null, types promoted."""
    columns = [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else pa.nulls(batch.num_rows, field.type)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


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
