"""What the Dagster instance has ever materialised, for ``dataops materialize --missing``.

Read through the instance's public API, once per asset: the latest materialisation event of an
unpartitioned asset, the set of materialised partitions of a partitioned one.
"""

from __future__ import annotations

import dagster as dg


class MaterializedIndex:
    """Answers "was this asset (partition) ever materialised?" from the instance's records."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._instance = instance
        self._partitions: dict[dg.AssetKey, set[str]] = {}

    def has(self, key: dg.AssetKey, partition_key: str | None) -> bool:
        if partition_key is None:
            return self._instance.get_latest_materialization_event(key) is not None
        if key not in self._partitions:
            self._partitions[key] = self._instance.get_materialized_partitions(key)
        return partition_key in self._partitions[key]

    def missing(
        self, keys: tuple[dg.AssetKey, ...], partition_key: str | None
    ) -> tuple[dg.AssetKey, ...]:
        """The keys among ``keys`` never materialised (for ``partition_key``)."""
        return tuple(key for key in keys if not self.has(key, partition_key))
