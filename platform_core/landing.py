"""Landing zones: files that producers drop for a team to ingest, named so sensors stay O(new).

Key convention, under the target's storage root::

    landing/<team>/<feed>/YYYY/MM/DD/HHMMSSffffff-<suffix>.csv      (UTC, microseconds)

Keys of one feed increase lexicographically with the time they are written, so a sensor resumes
listing after the last key it saw (``StorageAdapter.list(prefix, start_after=...)``) and reads
only what is new; the local adapter even skips whole day folders. ``land_frame`` is the
platform's writer: it names files this way and writes them through the adapter's atomic ``put``,
so a sensor never sees half a file. The suffix (random unless given) keeps two files written in
the same microsecond apart. Producers outside the platform should follow the same convention;
``platform_core.sensors`` explains the fallback for those that do not.

A landed file is read back with the columns and dtypes its data product declares, so types
round-trip through CSV exactly (tz-aware timestamps, categoricals, nullable floats, booleans).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd

from adapters.storage.base import ObjectInfo, StorageAdapter

LANDING_ROOT = "landing"
DtypeLike = str | pd.api.extensions.ExtensionDtype


def feed_prefix(team: str, feed: str) -> str:
    """The folder (ending in ``/``) where one feed of one team lands its files."""
    return f"{LANDING_ROOT}/{team}/{feed}/"


def landing_key(prefix: str, at: datetime, suffix: str, extension: str = "csv") -> str:
    """The key of a file landed at ``at`` (timezone-aware) under ``prefix``."""
    if at.tzinfo is None:
        raise ValueError(f"Landing time {at} must be timezone-aware.")
    return f"{prefix.rstrip('/')}/{at.astimezone(UTC):%Y/%m/%d/%H%M%S%f}-{suffix}.{extension}"


def land_frame(
    storage: StorageAdapter,
    prefix: str,
    frame: pd.DataFrame,
    at: datetime | None = None,
    suffix: str | None = None,
) -> ObjectInfo:
    """Write ``frame`` as CSV to a new, time-ordered key under ``prefix``, atomically."""
    key = landing_key(prefix, at or datetime.now(UTC), suffix or secrets.token_hex(4))
    return storage.put(key, frame.to_csv(index=False).encode())


def read_landed_frame(
    storage: StorageAdapter, key: str, columns: Mapping[str, DtypeLike]
) -> pd.DataFrame:
    """The landed CSV at ``key`` with exactly ``columns``, in that order and with those dtypes.

    Timestamp columns are parsed as ISO 8601; tz-aware ones are converted to the declared zone.
    """
    dtypes = {name: pd.api.types.pandas_dtype(dtype) for name, dtype in columns.items()}
    times = [name for name, dtype in dtypes.items() if pd.api.types.is_datetime64_any_dtype(dtype)]
    with storage.open(key) as stream:
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
