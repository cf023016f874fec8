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

A landed file is read back with the columns and dtypes its feed declares, so types round-trip
through CSV exactly (tz-aware timestamps, categoricals, nullable floats, booleans).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from adapters.storage.base import ObjectInfo, StorageAdapter

if TYPE_CHECKING:
    from platform_core.feeds import LandingFeed

LANDING_ROOT = "landing"
DtypeLike = str | pd.api.extensions.ExtensionDtype


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
        return self.storage.put(key, frame.to_csv(index=False).encode())

    def list(self, team: str, feed: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """The feed's files in key order (so in landing order), after ``start_after``; lazy."""
        return self.storage.list(self.prefix(team, feed), start_after=start_after)

    def read_frame(self, key: str, feed: LandingFeed) -> pd.DataFrame:
        """The landed CSV at ``key`` with exactly the feed's columns, in order, with their dtypes.

        Timestamp columns are parsed as ISO 8601; tz-aware ones are converted to the declared
        zone. A key outside this environment's folder of ``feed`` is refused, so a run never
        reads another environment's or another feed's files.
        """
        root = self.prefix(feed.team, feed.name)
        if not key.startswith(root):
            raise ValueError(f"{key!r} is not a file of the landing feed {root!r}.")
        dtypes = {name: pd.api.types.pandas_dtype(dtype) for name, dtype in feed.columns.items()}
        times = [n for n, dtype in dtypes.items() if pd.api.types.is_datetime64_any_dtype(dtype)]
        with self.storage.open(key) as stream:
            frame = pd.read_csv(
                io.BytesIO(stream.read()),
                usecols=list(dtypes),
                dtype={name: dtype for name, dtype in dtypes.items() if name not in times},
            )
        for name in times:
            zone = getattr(dtypes[name], "tz", None)
            parsed = pd.to_datetime(frame[name], format="ISO8601", utc=zone is not None)
            frame[name] = (parsed.dt.tz_convert(zone) if zone else parsed).astype(dtypes[name])
        return frame[list(dtypes)]
