"""Catalog entries: what a principal may read, described from the instance, graph and manifest.

Owner and classification come from the committed product manifest (with residency and per-column
classes where the manifest declares them); columns (and their tags), row counts and the latest
materialisation from the instance's materialisation metadata of the asset that serves the caller
(the share view of a masked grant); lineage, description and freshness policy from the asset
graph. Products the caller may not read are neither listed nor named in lineage, only counted;
share views, which implement grants, are looked through to the products on their other side.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from platform_core.api.asset_graph import AssetGraph, AssetNode
from platform_core.api.catalog import Catalog, policy_folder, table_name
from platform_core.api.models import (
    Column,
    Freshness,
    Lineage,
    Materialization,
    Product,
    ResidencyRule,
)
from platform_core.governance.access import SHARES
from platform_core.governance.products import MANIFEST

API_PREFIX = "/api/v1"
PAGE = 1000


@lru_cache(maxsize=4)
def _parsed_manifest(path: Path, size: int, modified: int) -> dict[str, Mapping[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def manifest_entries() -> dict[str, Mapping[str, Any]]:
    """The product manifest as written: owner, classification, column classes, residency."""
    path = policy_folder() / MANIFEST
    info = path.stat()
    return _parsed_manifest(path, info.st_size, info.st_mtime_ns)


def latest_by_partition(instance: dg.DagsterInstance, key: str) -> dict[str | None, Any]:
    """The newest materialisation record of each partition (None: unpartitioned) of ``key``."""
    latest: dict[str | None, Any] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetKey(key.split("/")), limit=PAGE, cursor=cursor
        )
        for record in result.records:
            latest.setdefault(record.partition_key, record)
        if not result.has_more:
            return latest
        cursor = result.cursor


def columns_of(record: Any) -> list[Column]:
    schema = record.asset_materialization.metadata.get("dagster/column_schema")
    if schema is None:
        return []
    return [
        Column(
            name=c.name,
            type=c.type,
            description=c.description,
            nullable=c.constraints.nullable if c.constraints else None,
            tags=dict(c.tags or {}),
        )
        for c in schema.value.columns
    ]


def freshness(policy: Mapping[str, Any] | None, newest: float | None, known: bool) -> Freshness:
    """Fresh, warn or stale against a time-window policy; a cron policy only reports its age."""
    age = time.time() - newest if newest is not None else None
    if not known:
        return Freshness(status="unknown", age_seconds=age)
    if policy is None:
        return Freshness(status="no_policy", age_seconds=age)
    if age is None:
        return Freshness(status="never_materialized", policy=dict(policy))
    if policy["kind"] != "time_window":
        return Freshness(status="unknown", policy=dict(policy), age_seconds=age)
    warn = policy.get("warnWindowSeconds")
    if age > policy["failWindowSeconds"]:
        status = "stale"
    elif warn is not None and age > warn:
        status = "warn"
    else:
        status = "fresh"
    return Freshness(status=status, policy=dict(policy), age_seconds=age)


def is_share_view(key: str) -> bool:
    """Share views implement grants; lineage names products only."""
    parts = key.split("/")
    return len(parts) >= 4 and parts[1] == SHARES


def through_share_views(
    keys: tuple[str, ...], nodes: Mapping[str, AssetNode], direction: str
) -> list[str]:
    """Products next to a product, looking through the share views between teams."""
    found = []
    for key in keys:
        if not is_share_view(key):
            found.append(key)
        elif key in nodes:
            found += [k for k in getattr(nodes[key], direction) if not is_share_view(k)]
    return list(dict.fromkeys(found))


def matches_tag(wanted: str, tags: Mapping[str, str]) -> bool:
    """``key`` or ``key=value`` against a tag mapping."""
    name, sep, value = wanted.partition("=")
    return name in tags and (not sep or tags[name] == value)


class ProductCatalog:
    """The catalog of one deployment: entries built afresh per call, the graph cached."""

    def __init__(self, catalog: Catalog, graph: AssetGraph) -> None:
        self.catalog = catalog
        self.graph = graph
        self._latest: dict[str, tuple[int, dict[str | None, Any]]] = {}
        self._records: tuple[int | None, dict[str, Any]] | None = None

    def latest(self, sources: list[str]) -> dict[str, dict[str | None, Any]]:
        """Newest materialisation per partition of each source; re-read only once it changed."""
        instance = self.catalog.instance
        newest = self._newest(sources)
        found = {}
        for source in sources:
            event = newest.get(source)
            stamp = event.storage_id if event is not None else None
            if stamp is None:
                found[source] = {}
                continue
            cached = self._latest.get(source)
            if cached is None or cached[0] != stamp:
                cached = (stamp, latest_by_partition(instance, source))
                self._latest[source] = cached
            found[source] = cached[1]
        return found

    def _newest(self, sources: list[str]) -> dict[str, Any]:
        """Each source's last materialisation record, read again only when the event log grew.

        The asset records cost several queries (most of a catalog call on SQLite); the event
        log's highest record id is one, and any new materialisation raises it.
        """
        instance = self.catalog.instance
        stamp = instance.event_log_storage.get_maximum_record_id()
        if self._records is None or self._records[0] != stamp:
            self._records = (stamp, {})
        known = self._records[1]
        unknown = [source for source in sources if source not in known]
        if unknown:
            records = {
                record.asset_entry.asset_key.to_user_string(): record
                for record in instance.get_asset_records(
                    [dg.AssetKey(source.split("/")) for source in unknown]
                )
            }
            for source in unknown:
                record = records.get(source)
                known[source] = record.asset_entry.last_materialization_record if record else None
        return {source: known[source] for source in sources}

    def product(self, principal: str, team: str, name: str) -> Product | None:
        for key in self.catalog.readable(principal):
            if table_name(key) == (team, name):
                return self._entries(principal, [key])[0]
        return None

    def search(
        self,
        principal: str,
        text: str | None = None,
        team: str | None = None,
        tag: str | None = None,
        classification: str | None = None,
    ) -> list[Product]:
        """Readable products whose key or description holds ``text`` and that match the rest."""
        found = []
        for entry in self._entries(principal, list(self.catalog.readable(principal))):
            words = f"{entry.key} {entry.description or ''}".lower()
            if text and text.lower() not in words:
                continue
            if team and entry.team != team:
                continue
            if classification and entry.classification != classification:
                continue
            if tag and not (
                matches_tag(tag, entry.tags) or any(matches_tag(tag, c.tags) for c in entry.columns)
            ):
                continue
            found.append(entry)
        return found

    def _entries(self, principal: str, keys: list[str]) -> list[Product]:
        readable = self.catalog.readable(principal)
        manifest = manifest_entries()
        nodes = self.graph.nodes()
        latest = self.latest([readable[key] for key in keys])
        return [self._entry(key, readable, manifest, nodes, latest[readable[key]]) for key in keys]

    def _entry(
        self,
        key: str,
        readable: Mapping[str, str],
        manifest: Mapping[str, Mapping[str, Any]],
        nodes: Mapping[str, AssetNode] | None,
        latest: Mapping[str | None, Any],
    ) -> Product:
        source = readable[key]
        team, name = table_name(key)
        declared = manifest.get(key, {})
        records = sorted(latest.values(), key=lambda r: r.timestamp)
        newest = records[-1] if records else None
        rows = [r.asset_materialization.metadata.get("dagster/row_count") for r in records]
        node = nodes.get(key) if nodes is not None else None
        partitions = sorted(p for p in latest if p is not None)
        return Product(
            key=key,
            team=team,
            name=name,
            owner=declared.get("owner", team),
            classification=declared.get("classification", "unknown"),
            description=node.description if node else None,
            tags=dict(node.tags) if node else {},
            residency=[ResidencyRule(**rule) for rule in declared.get("residency") or ()],
            served_from=source,
            masked=source != key,
            partitioned=bool(partitions),
            partitions=partitions,
            row_count=sum(r.value for r in rows) if rows and None not in rows else None,
            last_materialization=(
                Materialization(
                    timestamp=datetime.fromtimestamp(newest.timestamp, UTC),
                    run_id=newest.run_id,
                    partition=newest.partition_key,
                )
                if newest
                else None
            ),
            freshness=freshness(
                node.freshness_policy if node else None,
                newest.timestamp if newest else None,
                nodes is not None,
            ),
            data_url=f"{API_PREFIX}/products/{team}/{name}/data",
            columns=columns_of(newest) if newest else [],
            column_classes={} if source != key else dict(declared.get("columns") or {}),
            lineage=self._lineage(node, readable, nodes) if nodes is not None else None,
        )

    @staticmethod
    def _lineage(
        node: AssetNode | None, readable: Mapping[str, str], nodes: Mapping[str, AssetNode]
    ) -> Lineage:
        if node is None:
            return Lineage(upstream=[], downstream=[], hidden_upstream=0, hidden_downstream=0)
        upstream = through_share_views(node.upstream, nodes, "upstream")
        downstream = through_share_views(node.downstream, nodes, "downstream")
        return Lineage(
            upstream=[k for k in upstream if k in readable],
            downstream=[k for k in downstream if k in readable],
            hidden_upstream=sum(k not in readable for k in upstream),
            hidden_downstream=sum(k not in readable for k in downstream),
        )
