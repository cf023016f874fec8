"""What a principal may read, as Delta Sharing tables, from the Dagster instance and storage.

One share per principal (named after it), one schema per owning team, one table per data product
(the rest of its key joined with ``__``). A product the policy grants fully (or by default, or to
its owner) is served from its own files; a masked grant is served under the product's own name
from the owner's share view for that principal, never from the raw product. Only materialised
products are listed. Team code is never imported: products come from the committed manifest,
their versions and partitions from the instance's materialisations, sizes from storage.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.storage.base import ObjectNotFoundError, StorageAdapter
from platform_core.audit.trail import AuditTrail
from platform_core.governance.access import decide
from platform_core.governance.policy import POLICY_DIR, POLICY_DIR_VARIABLE, Policy, load_policy
from platform_core.governance.products import Product, load_manifest
from platform_core.io_manager import object_key

TABLE_SEPARATOR = "__"
PARTITION_COLUMN = "dataops_partition"
PAGE = 1000
MAX_REQUESTED_NAME = 200


@dataclass(frozen=True)
class SharedTable:
    """One table of a principal's share and the asset whose files serve it."""

    share: str
    schema: str
    name: str
    product: str
    source: str

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataops:{self.share}/{self.product}"))


@dataclass(frozen=True)
class DataFile:
    """One Parquet object of a table: storage key, exact size, stable id, partition, rows."""

    key: str
    size: int
    id: str
    partition: str | None
    rows: int | None


@dataclass(frozen=True)
class Snapshot:
    """A table's current version (its materialisations so far), files and Arrow schema."""

    version: int
    files: tuple[DataFile, ...]
    partitioned: bool
    schema: pa.Schema


def table_name(product: str) -> tuple[str, str]:
    """(schema, table) of a product key: ``sales/orders`` -> (``sales``, ``orders``)."""
    team, *rest = product.split("/")
    return team, TABLE_SEPARATOR.join(rest)


def policy_folder() -> Path:
    return Path(os.environ.get(POLICY_DIR_VARIABLE) or POLICY_DIR)


def policy_stamp() -> tuple:
    """Name, size and modification time of every file in the policy folder."""
    return tuple(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in sorted(policy_folder().iterdir())
        if entry.is_file()
    )


def load_access(environment: str) -> tuple[Policy, Mapping[str, Product]]:
    """The policy of ``environment`` and the product manifest, from the policy folder."""
    folder = policy_folder()
    manifest = load_manifest(folder)
    teams = sorted({p.owner for p in manifest.values()})
    return load_policy(environment, teams, list(manifest), folder), manifest


class Catalog:
    """The shares of one deployment's environment: the policy as its files stand on every call."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        storage: StorageAdapter,
        environment: str,
        audit: AuditTrail | None = None,
    ) -> None:
        self.instance = instance
        self.storage = storage
        self.environment = environment
        self.audit = audit
        self._policy: tuple[tuple, tuple[Policy, Mapping[str, Product]]] | None = None

    def policy(self) -> tuple[Policy, Mapping[str, Product]]:
        """The policy and manifest, parsed again whenever a file of the policy folder changed."""
        stamp = policy_stamp()
        if self._policy is None or self._policy[0] != stamp:
            self._policy = (stamp, load_access(self.environment))
        return self._policy[1]

    def audit_read(
        self,
        action: str,
        principal: str,
        table: SharedTable,
        files: Sequence[DataFile],
        partition: str | None = None,
    ) -> None:
        """Record that ``principal`` is served ``files`` of ``table`` (a direct read, a query)."""
        if self.audit is None or not files:
            return
        keys = [data_file.key for data_file in files]
        folder = os.path.commonprefix(keys).rpartition("/")[0]
        rows = [data_file.rows for data_file in files]
        self.audit.record(
            action,
            table.source,
            principal=principal,
            partition=partition,
            uri=self.storage.uri(keys[0]) if len(keys) == 1 else self.storage.uri(folder) + "/",
            rows=None if None in rows else sum(rows),
            size=sum(data_file.size for data_file in files),
            rule=f"share view of {table.product}" if table.source != table.product else None,
        )

    def audit_denial(self, principal: str, product: str) -> None:
        """Record a refused read: ``product`` is not readable by ``principal`` (or absent).

        The name is the caller's, so it is cut to ``MAX_REQUESTED_NAME`` characters.
        """
        if self.audit is not None:
            requested = product[:MAX_REQUESTED_NAME]
            self.audit.record(
                "authorize_read", requested, principal=principal, decision="deny", rule="no grant"
            )

    def is_principal(self, principal: str) -> bool:
        return principal in self.policy()[0].principals

    def readable(self, principal: str) -> dict[str, str]:
        """Every product ``principal`` may read, materialised or not: product -> served asset."""
        policy, manifest = self.policy()
        sources = {}
        for product in sorted(manifest):
            decision = decide(policy, manifest, principal, product)
            if decision.allowed:
                sources[product] = product
            elif (
                decision.mode == "masked"
                and decision.share_view
                and decide(policy, manifest, principal, decision.share_view).allowed
            ):
                sources[product] = decision.share_view
        return sources

    def tables(self, principal: str) -> list[SharedTable]:
        """The materialised tables ``principal`` may read, in product order."""
        return [
            SharedTable(principal, *table_name(product), product, source)
            for product, source in self.readable(principal).items()
            if self.instance.get_latest_materialization_event(dg.AssetKey(source.split("/")))
        ]

    def table(self, principal: str, schema: str, name: str) -> SharedTable | None:
        for table in self.tables(principal):
            if (table.schema, table.name) == (schema, name):
                return table
        return None

    def snapshot(self, table: SharedTable) -> Snapshot:
        """The table's version and newest file of each partition (or its one file)."""
        asset_key = dg.AssetKey(table.source.split("/"))
        latest: dict[str | None, dg.EventLogRecord] = {}
        version, cursor = 0, None
        while True:
            result = self.instance.fetch_materializations(asset_key, limit=PAGE, cursor=cursor)
            for record in result.records:
                version += 1
                latest.setdefault(record.partition_key, record)
            if not result.has_more:
                break
            cursor = result.cursor
        files = []
        for partition in sorted(latest, key=lambda p: p or ""):
            key = object_key(self.environment, asset_key, partition)
            try:
                info = self.storage.stat(key)
            except ObjectNotFoundError:
                continue
            materialization = latest[partition].asset_materialization
            rows = materialization.metadata.get("dagster/row_count") if materialization else None
            file_id = hashlib.sha256(f"{key}\0{info.etag}".encode()).hexdigest()
            files.append(DataFile(key, info.size, file_id, partition, rows.value if rows else None))
        partitioned = any(p is not None for p in latest)
        schema = self._schema(files[0].key) if files else pa.schema([])
        return Snapshot(version, tuple(files), partitioned, schema)

    def _schema(self, key: str) -> pa.Schema:
        with self.storage.open(key) as stream:
            source = stream if stream.seekable() else pa.BufferReader(stream.read())
            schema = pq.read_schema(source)
        keep = [f for f in schema if not f.name.startswith("__index_level_")]
        return pa.schema(keep)
