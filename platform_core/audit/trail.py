"""``AuditTrail``: the resource through which the IO manager, landing zone and guard record.

Each writer appends to its own hash chain: a run's step process (so the steps of one run that
run in several processes never contend for one chain), or a named writer outside runs (the
dataset API server, a CLI command: ``bind_writer``). A chain is named
``<principal>/<run id or writer>-<random token>``. Every append is one new segment, written with
the storage's conditional ``create``, so no segment is ever overwritten; then the chain's head
(record count and last hash) is anchored in the Dagster event log, as an ``AssetObservation`` of the
reserved asset ``dataops_audit/<environment>`` whose metadata names chain and run. The event log
is not in the writer's storage, so rewriting, deleting or truncating segments there cannot
rewrite the anchors that ``verify`` checks them against.

Outside a run and without ``bind_writer`` (a code location loading, a sensor listing files) the
trail records nothing: those are not data reads or writes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from adapters.storage.base import ObjectExistsError, StorageAdapter
from platform_core.audit.record import AUDIT_ROOT, GENESIS, bare_uri, seal, segment_key
from platform_core.governance.share_views import GRANTED_TO_TAG, SHARE_OF_TAG

ANCHOR_ASSET = "dataops_audit"
WRITER_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")


def anchor_key(environment: str) -> dg.AssetKey:
    """The reserved asset whose observations anchor every chain of ``environment``."""
    return dg.AssetKey([ANCHOR_ASSET, environment])


@dataclass(frozen=True)
class Writer:
    """Who appends: a run (``run_id``) or a named process, and the instance anchoring it."""

    name: str
    run_id: str | None
    instance: dg.DagsterInstance


class Chain:
    """One writer's chain in this process: appends segments, anchors new heads in the background.

    An allowed access decision is held back (``defer``) and written in one segment with the
    record that follows it, so an audited read or write costs one segment, not two. Anchoring
    (a write to the Dagster event log, tens of milliseconds on SQLite) runs on one worker thread
    that always anchors the latest head, so the data path never waits for it; ``flush`` waits.
    """

    def __init__(
        self, storage: StorageAdapter, environment: str, principal: str, writer: Writer
    ) -> None:
        self.storage = storage
        self.environment = environment
        self.writer = writer
        stamp = "" if writer.run_id else f"{datetime.now(UTC):%Y%m%dT%H%M%S}-"
        self.name = f"{principal}/{writer.name}-{stamp}{secrets.token_hex(4)}"
        self.count = 0
        self.head = GENESIS
        self.segments = 0
        self.anchored = 0
        self._held: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._anchoring = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-anchor")
        self._pending: list[Future[None]] = []

    def append(self, fields: dict[str, Any], defer: bool = False) -> None:
        with self._lock:
            self._raise_anchor_failure()
            self._held.append(fields)
            if not defer:
                self._write_held()

    def flush(self) -> None:
        """Write held records and wait until the chain's head is anchored."""
        with self._lock:
            self._write_held()
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flush, then stop the anchoring thread."""
        try:
            self.flush()
        finally:
            self._anchoring.shutdown(wait=True)

    def _write_held(self) -> None:
        if not self._held:
            return
        records, head = [], self.head
        for offset, fields in enumerate(self._held):
            record = seal(fields, self.name, self.count + offset, head)
            records.append(record)
            head = record["hash"]
        body = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        key = segment_key(self.environment, self.name, self.segments)
        _create_once(self.storage, key, body.encode())
        self._held = []
        self.segments += 1
        self.count += len(records)
        self.head = head
        self._pending.append(self._anchoring.submit(self._anchor_latest))

    def _anchor_latest(self) -> None:
        with self._lock:
            count, head = self.count, self.head
            key = segment_key(self.environment, self.name, self.segments - 1)
        if count == self.anchored:
            return
        self.writer.instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=anchor_key(self.environment),
                metadata={
                    "chain": self.name,
                    "records": count,
                    "head": head,
                    "run_id": self.writer.run_id or "",
                    "segment": key,
                },
            )
        )
        self.anchored = count

    def _raise_anchor_failure(self) -> None:
        """An anchor that failed fails the next append: the trail stops rather than go unproven."""
        done = [future for future in self._pending if future.done()]
        self._pending = [future for future in self._pending if not future.done()]
        for future in done:
            future.result()


def _create_once(storage: StorageAdapter, key: str, body: bytes) -> None:
    """Create the segment; a retried create that finds its own bytes already there succeeded."""
    try:
        storage.create(key, body)
    except ObjectExistsError:
        if storage.get(key) != body:
            raise


_CHAINS: dict[tuple[str, str, str, int], Chain] = {}
_CHAINS_LOCK = threading.Lock()


def _where(
    storage: StorageAdapter, environment: str, principal: str, writer: Writer
) -> tuple[str, str, str, int]:
    return (storage.uri(f"{AUDIT_ROOT}/{environment}"), principal, writer.name, os.getpid())


def _chain(storage: StorageAdapter, environment: str, principal: str, writer: Writer) -> Chain:
    """The process's chain for ``writer`` in this storage: every resource copy shares it."""
    where = _where(storage, environment, principal, writer)
    with _CHAINS_LOCK:
        if where not in _CHAINS:
            _CHAINS[where] = Chain(storage, environment, principal, writer)
        return _CHAINS[where]


def _release(storage: StorageAdapter, environment: str, principal: str, writer: Writer) -> None:
    """Flush the writer's chain and forget it (the first resource copy torn down does it)."""
    with _CHAINS_LOCK:
        chain = _CHAINS.pop(_where(storage, environment, principal, writer), None)
    if chain is not None:
        chain.close()


class AuditTrail(dg.ConfigurableResource):
    """Audit records of one principal (a team, the dataset API) in one environment."""

    storage: StorageAdapter
    environment: str
    principal: str

    _writer: Writer | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None and context.instance is not None:
            self._writer = Writer(context.run.run_id, context.run.run_id, context.instance)

    def bind_writer(self, name: str, instance: dg.DagsterInstance) -> None:
        """Record from now on as writer ``name`` (``dataset-api``, ``cli-land``) outside runs."""
        if not WRITER_NAME.fullmatch(name):
            raise ValueError(f"Audit writer name {name!r} must match {WRITER_NAME.pattern}.")
        self._writer = Writer(name, None, instance)

    def record(
        self,
        action: str,
        product: str,
        *,
        principal: str | None = None,
        partition: str | None = None,
        uri: str | None = None,
        rows: int | None = None,
        size: int | None = None,
        decision: str = "allow",
        rule: str | None = None,
    ) -> None:
        """Append one record to this writer's chain; nothing outside runs unless bound.

        An allowed ``authorize_*`` decision is held and written with the next record.
        """
        if self._writer is None:
            return
        fields = {
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "principal": principal or self.principal,
            "run_id": self._writer.run_id,
            "action": action,
            "product": product,
            "partition": partition,
            "uri": bare_uri(uri),
            "rows": rows,
            "bytes": size,
            "decision": decision,
            "rule": rule,
            "environment": self.environment,
            "target": self.storage.target,
        }
        _chain(self.storage, self.environment, self.principal, self._writer).append(
            fields, defer=decision == "allow" and action.startswith("authorize_")
        )

    def flush(self) -> None:
        """Write held records and wait for the anchor of this writer's head."""
        if self._writer is not None:
            _chain(self.storage, self.environment, self.principal, self._writer).flush()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """The run's chain is complete in this process: flush it and let its thread go."""
        if self._writer is not None:
            _release(self.storage, self.environment, self.principal, self._writer)

    def wrote(self, context: dg.OutputContext, key: str, rows: int, size: int) -> None:
        """The IO manager stored an output: a ``write``, or a ``share`` for a share view."""
        metadata = context.definition_metadata or {}
        source = metadata.get(SHARE_OF_TAG)
        rule = (
            f"grant '{metadata.get('dataops/grant')}': {source} shown to "
            f"'{metadata.get(GRANTED_TO_TAG)}' masked"
            if source
            else None
        )
        self.record(
            "share" if source else "write",
            context.asset_key.to_user_string(),
            partition=context.asset_partition_key if context.has_asset_partitions else None,
            uri=self.storage.uri(key),
            rows=rows,
            size=size,
            rule=rule,
        )

    def landed(
        self, action: str, team: str, feed: str, uri: str, rows: int | None, size: int
    ) -> None:
        """A landing zone wrote (``land``) or read (``read_landed``, ``quarantine``) a file."""
        self.record(action, f"landing:{team}/{feed}", uri=uri, rows=rows, size=size)

    def read(self, context: dg.InputContext, keys: Sequence[str], rows: int, size: int) -> None:
        """The IO manager loaded ``keys``: ``rows`` rows from ``size`` stored bytes."""
        partition = None
        if context.has_asset_partitions:
            wanted = context.asset_partition_keys
            partition = wanted[0] if len(wanted) == 1 else f"{len(wanted)} partitions"
        if len(keys) == 1:
            uri = self.storage.uri(keys[0])
        else:
            folder = os.path.commonprefix(list(keys)).rpartition("/")[0]
            uri = self.storage.uri(folder) + "/"
        self.record(
            "read",
            context.asset_key.to_user_string(),
            partition=partition,
            uri=uri,
            rows=rows,
            size=size,
        )
