"""One audit record, and the hash chain that makes a changed, removed or reordered one visible.

A record holds ``FIELDS`` (what happened) and its place in its writer's chain: ``chain`` (the
writer), ``seq`` (0, 1, ...), ``prev`` (the hash of the record before it, ``GENESIS`` for the
first) and ``hash``, the SHA-256 of ``prev`` and the record's canonical JSON without ``hash``.
Records live in the target's storage under ``_audit/<environment>/<chain>/<segment>.jsonl``, a
chain being ``<principal>/<writer>-<token>`` (so each team's storage identity may be granted its
own folder only): data products sit under ``<environment>/<team>/``, so no product key can reach
this prefix.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

AUDIT_ROOT = "_audit"
GENESIS = "0" * 64
FIELDS = (
    "time",
    "principal",
    "run_id",
    "action",
    "product",
    "partition",
    "uri",
    "rows",
    "bytes",
    "decision",
    "rule",
    "environment",
    "target",
)
CHAIN_FIELDS = ("chain", "seq", "prev", "hash")


def audit_prefix(environment: str) -> str:
    """The folder (ending in ``/``) of every chain written in ``environment``."""
    return f"{AUDIT_ROOT}/{environment}/"


def audit_folder(environment: str, principal: str) -> str:
    """The folder (ending in ``/``) of the chains one principal writes."""
    return f"{audit_prefix(environment)}{principal}/"


def segment_key(environment: str, chain: str, segment: int) -> str:
    """The storage key of one segment of a chain; segment names sort in write order."""
    return f"{audit_prefix(environment)}{chain}/{segment:010d}.jsonl"


def digest(record: dict[str, Any]) -> str:
    """The hash a record must carry: over ``prev`` and everything but ``hash``, canonically."""
    body = {name: value for name, value in record.items() if name != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{record.get('prev')}\n{canonical}".encode()).hexdigest()


def seal(fields: dict[str, Any], chain: str, seq: int, prev: str) -> dict[str, Any]:
    """``fields`` as the chain's record number ``seq`` after the record hashed ``prev``."""
    record = {name: fields.get(name) for name in FIELDS}
    record.update(chain=chain, seq=seq, prev=prev)
    record["hash"] = digest(record)
    return record


def bare_uri(uri: str | None) -> str | None:
    """A URI without credentials: no user information, query (a SAS token) or fragment."""
    if uri is None:
        return None
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
