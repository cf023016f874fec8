"""The asset graph (lineage, descriptions, freshness policies) from Dagster's GraphQL API.

Lineage lives in the code locations, not in the instance's event log, so it comes from the
webserver that has them loaded (``DATAOPS_API_DAGSTER_URL``): team code is never imported here.
Nodes are kept for a short while, so catalog calls do not each pay for a GraphQL round trip.
Without a webserver, or while it does not answer (retried after the same while), lineage is
reported as unknown rather than failing the catalog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

LOG = logging.getLogger(__name__)
DAGSTER_URL_VARIABLE = "DATAOPS_API_DAGSTER_URL"
CACHE_SECONDS = 30.0
REQUEST_SECONDS = 5.0

ASSET_NODES = """
{ assetNodes {
    assetKey { path }
    description
    dependencyKeys { path }
    dependedByKeys { path }
    tags { key value }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
      ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    }
} }
"""


@dataclass(frozen=True)
class AssetNode:
    """One asset as the webserver's loaded code locations declare it."""

    key: str
    description: str | None = None
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    freshness_policy: Mapping[str, Any] | None = None


def _key(node: Mapping[str, Any]) -> str:
    return "/".join(node["path"])


def parse_nodes(nodes: list[Mapping[str, Any]]) -> dict[str, AssetNode]:
    """Asset nodes of a GraphQL ``assetNodes`` answer, by ``team/name`` key."""
    graph = {}
    for node in nodes:
        policy = node.get("internalFreshnessPolicy")
        if policy:
            kind = policy.pop("__typename")
            policy = {"kind": "time_window" if kind.startswith("TimeWindow") else "cron", **policy}
        key = _key(node["assetKey"])
        graph[key] = AssetNode(
            key=key,
            description=node.get("description"),
            upstream=tuple(_key(k) for k in node["dependencyKeys"]),
            downstream=tuple(_key(k) for k in node["dependedByKeys"]),
            tags={t["key"]: t["value"] for t in node.get("tags") or []},
            freshness_policy=policy,
        )
    return graph


class AssetGraph:
    """The asset graph of the webserver at ``url`` (None: no graph), cached for a while."""

    def __init__(self, url: str | None, cache_seconds: float = CACHE_SECONDS) -> None:
        self.url = url.rstrip("/") if url else None
        self.cache_seconds = cache_seconds
        self._nodes: dict[str, AssetNode] | None = None
        self.error: str | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def nodes(self) -> dict[str, AssetNode] | None:
        """The nodes by key; None when the graph is unknown (no webserver, or no answer)."""
        if self.url is None:
            return None
        with self._lock:
            if not self._fetched or time.monotonic() - self._fetched > self.cache_seconds:
                self._nodes = self._fetch()
                self._fetched = time.monotonic()
            return self._nodes

    def _fetch(self) -> dict[str, AssetNode] | None:
        try:
            answer = requests.post(
                f"{self.url}/graphql", json={"query": ASSET_NODES}, timeout=REQUEST_SECONDS
            )
            answer.raise_for_status()
            body = answer.json()
            nodes = parse_nodes(body["data"]["assetNodes"])
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            self.error = f"asset graph query failed ({type(exc).__name__})"
            LOG.warning("The Dagster webserver at %s: %s", self.url, self.error)
            return None
        self.error = None
        return nodes
