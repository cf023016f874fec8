"""Landing zones: files that producers drop for a team to ingest, named so sensors stay O(new).

Key convention, inside the target's storage root, one landing zone per environment::

    <environment>/landing/<team>/<feed>/YYYY/MM/DD/HHMMSSffffff-<suffix>.csv   (UTC, microseconds)

so two environments sharing a bucket and prefix (the local target's ``dev`` and ``test``) never
see each other's files, just as the IO manager keeps their data products apart. Keys of one feed
increase lexicographically with the time they are written, so a sensor resumes listing after the
last key it saw and reads only what is new; the local adapter even skips whole day folders.

``LandingZone`` is the resource through which everything reaches landed files: the landing
sensors list it, ``raw_*`` data products read one file from it as a DataFrame, and the CLI lands
files into it. ``land`` names files by the convention and writes them through the adapter's
atomic ``put``, so a sensor never sees half a file; the suffix (random unless given) keeps two
files written in the same microsecond apart. Producers outside the platform should follow the
same convention; ``platform_core.cursor`` explains the fallback for those that do not.

A landed file is read back with the columns and dtypes its feed declares, checked against the
feed's contract first, so types round-trip through CSV exactly (tz-aware timestamps,
categoricals, nullable floats, booleans) and a file that breaks the contract is quarantined:
marked, not moved or copied, so it stays readable where the producer put it, costs no copy, and
a producer's fixed version (an overwrite, a new etag) releases it through the normal sensor path.
Records live under ``<environment>/quarantine/<team>/<feed>/``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from adapters.storage.base import ObjectInfo, StorageAdapter
from platform_core.audit.trail import AuditTrail
from platform_core.contract import ContractViolation, read_contracted_csv
from platform_core.governance.guard import AccessGuard
from platform_core.layout import LANDING_ROOT, QUARANTINE_ROOT

if TYPE_CHECKING:
    from platform_core.feeds import LandingFeed


def feed_prefix(environment: str, team: str, feed: str) -> str:
    """The folder (ending in ``/``) of one feed of one team in ``environment``."""
    return f"{environment}/{LANDING_ROOT}/{team}/{feed}/"


def landing_key(prefix: str, at: datetime, suffix: str, extension: str = "csv") -> str:
    """The key of a file landed at ``at`` (timezone-aware) under ``prefix``."""
    if at.tzinfo is None:
        raise ValueError(f"Landing time {at} must be timezone-aware.")
    return f"{prefix.rstrip('/')}/{at.astimezone(UTC):%Y/%m/%d/%H%M%S%f}-{suffix}.{extension}"


class LandingZone(dg.ConfigurableResource):
    """The current environment's landing zones in the target's storage.

    Asset code gets landed files as DataFrames from here, never the storage adapter itself.
    """

    storage: StorageAdapter
    environment: str
    guard: AccessGuard | None = None
    audit: AuditTrail | None = None

    def prefix(self, team: str, feed: str) -> str:
        """The folder (ending in ``/``) of one feed of one team."""
        return feed_prefix(self.environment, team, feed)

    def land(
        self,
        team: str,
        feed: str,
        frame: pd.DataFrame,
        at: datetime | None = None,
        suffix: str | None = None,
    ) -> ObjectInfo:
        """Write ``frame`` as CSV to a new, time-ordered key of the feed, atomically."""
        at = at or datetime.now(UTC)
        key = landing_key(self.prefix(team, feed), at, suffix or secrets.token_hex(4))
        info = self.storage.put(key, frame.to_csv(index=False).encode())
        if self.audit is not None:
            self.audit.landed("land", team, feed, self.storage.uri(key), len(frame), info.size)
        return info

    def list(self, team: str, feed: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """The feed's files in key order (so in landing order), after ``start_after``; lazy."""
        if self.guard is not None:
            self.guard.check_feed(team, feed)
        return self.storage.list(self.prefix(team, feed), start_after=start_after)

    def read_frame(self, key: str, feed: LandingFeed) -> pd.DataFrame:
        """The landed CSV at ``key`` as the feed's columns, or a failure that quarantines it.

        The file is checked against the feed's contract before anything is returned
        (``platform_core.contract``). A file that breaks it raises ``dg.Failure`` naming the file,
        rows, columns and rule, and is quarantined: a record (key, etag, reason, time) is kept
        beside the landing zone until a version of the file passes, which releases it. A key
        outside this environment's folder of ``feed`` is refused, so a run never reads another
        environment's or another feed's files.
        """
        if self.guard is not None:
            self.guard.check_feed(feed.team, feed.name)
        root = self.prefix(feed.team, feed.name)
        if not key.startswith(root):
            raise ValueError(f"{key!r} is not a file of the landing feed {root!r}.")
        with self._refusal(feed):
            info = self.storage.stat(key)
            body = self.storage.get(key)
        try:
            frame = read_contracted_csv(key, body, feed.columns)
        except ContractViolation as violation:
            record = self.quarantine(feed, info, violation)
            if self.audit is not None:
                self.audit.landed(
                    "quarantine", feed.team, feed.name, self.storage.uri(key), None, len(body)
                )
            raise dg.Failure(
                description=str(violation),
                metadata={
                    "dataops/landing_key": key,
                    "dataops/landing_etag": info.etag,
                    "dataops/landing_uri": dg.MetadataValue.url(self.storage.uri(key)),
                    "dataops/quarantine_record": self.storage.uri(record),
                    "dataops/problems": [problem.describe() for problem in violation.problems],
                },
                allow_retries=False,
            ) from violation
        self.release(feed, key)
        if self.audit is not None:
            self.audit.landed(
                "read_landed", feed.team, feed.name, self.storage.uri(key), len(frame), len(body)
            )
        return frame

    def _refusal(self, feed: LandingFeed) -> AbstractContextManager[None]:
        """A storage 403 on the team's own feed as the guard's ``AccessDenied``."""
        if self.guard is None:
            return nullcontext()
        return self.guard.storage_refusal(
            f"landing feed {feed.team}/{feed.name}", rule="teams read their own landing zones"
        )

    def quarantine_prefix(self, feed: LandingFeed) -> str:
        """The folder (ending in ``/``) of a feed's quarantine records."""
        return f"{self.environment}/{QUARANTINE_ROOT}/{feed.team}/{feed.name}/"

    def _record_key(self, feed: LandingFeed, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{self.quarantine_prefix(feed)}{digest}.json"

    def quarantine(self, feed: LandingFeed, info: ObjectInfo, violation: ContractViolation) -> str:
        """Record ``info``'s file as quarantined; returns the record's key."""
        record = {
            "key": info.key,
            "etag": info.etag,
            "reason": str(violation),
            "problems": [problem.describe() for problem in violation.problems],
            "time": datetime.now(UTC).isoformat(),
        }
        key = self._record_key(feed, info.key)
        self.storage.put(key, json.dumps(record, sort_keys=True).encode())
        return key

    def release(self, feed: LandingFeed, key: str) -> None:
        """Forget a quarantine record of ``key`` (a version of the file has passed)."""
        record = self._record_key(feed, key)
        if self.storage.exists(record):
            self.storage.delete(record)

    def quarantined(self, feed: LandingFeed) -> list[dict[str, str]]:
        """Files of the feed that broke the contract and were not fixed since, by key."""
        records = [
            json.loads(self.storage.get(info.key))
            for info in self.storage.list(self.quarantine_prefix(feed))
        ]
        return sorted(records, key=lambda record: record["key"])
