"""Landing sensors: each new landed file becomes a dynamic partition and one run, at O(new) a tick.

``landing_sensor(team=..., feed=..., asset=...)`` watches ``<environment>/landing/<team>/<feed>/``
(see ``platform_core.landing`` for the key convention) through the ``landing`` resource, whatever
the target. For every new object, or new version of an object, it adds a dynamic partition named
by the object key and requests one run of the asset for it, in the same ``SensorResult``. The run
key is ``<key>@<etag>``: replaying a tick asks for nothing Dagster has not already got, an
overwritten file is ingested again, an unchanged one is not.

The cursor (JSON, bounded) makes a tick cost O(new):

* ``after``: every key up to it has *settled*; a tick lists ``start_after=after``, at most
  ``max_objects`` objects (the page budget), and keeps its place when the budget runs out.
* ``window``: keys after ``after`` already requested, with etag and modification time. They are
  listed again each tick until older than ``settle`` (or beyond ``max_window``), so a file that
  becomes visible late under a smaller key (a slow upload that started earlier), and an overwrite
  of a recent file, are still seen. Keys are compared, never timestamps, so files sharing a
  modification time are all ingested.
* Fallback for producers that break the convention (keys not increasing, old keys overwritten):
  a rolling rescan reads at most ``rescan_objects`` settled objects a tick, cycling over the
  prefix. A settled object modified after the previous pass began (less ``settle``, for clock
  skew) is a new version, unless its ``key@etag`` digest is in ``memory``, the versions requested
  since then (at most ``max_memory``; past that, a repeat carries the same run key and Dagster
  drops it). So overwrites are found by modification time plus a small etag memory, not by
  remembering every etag ever seen. ``rescan_objects=0`` turns the fallback off.

A failed tick (storage down half-way) raises: Dagster keeps the previous cursor and the next tick
redoes the work, producing the same run keys.
"""

import copy
import functools
import hashlib
import itertools
import json
import pkgutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from adapters.storage.base import ObjectInfo
from platform_core.landing import LandingZone

LANDING_METADATA = "dataops/landing"
LANDING_KEY_TAG = "dataops/landing_key"
LANDING_ETAG_TAG = "dataops/landing_etag"
SAMPLE_SUFFIX = "sample"
Listing = Callable[[str | None], Iterator[ObjectInfo]]


@dataclass(frozen=True)
class LandingLimits:
    """What one tick may read and what the cursor may hold."""

    max_objects: int = 1000
    rescan_objects: int = 200
    max_window: int = 200
    max_memory: int = 2000
    settle: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if not 0 < self.max_window < self.max_objects:
            raise ValueError("max_window must be positive and below max_objects, or ticks stall.")


@dataclass
class LandingCursor:
    """The sensor's state between ticks (see the module docstring)."""

    after: str | None = None
    window: dict[str, tuple[str, float]] = field(default_factory=dict)
    rescan_at: str | None = None
    since: float | None = None
    pass_started: float | None = None
    memory: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "LandingCursor":
        if not text:
            return cls()
        data = json.loads(text)
        data["window"] = {key: tuple(value) for key, value in data["window"].items()}
        return cls(**data)

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)


def run_key(info: ObjectInfo) -> str:
    """Idempotent per version of a file: the same key and content give the same run key."""
    return f"{info.key}@{info.etag}"


def _digest(info: ObjectInfo) -> str:
    return hashlib.blake2b(run_key(info).encode(), digest_size=8).hexdigest()


def scan(
    listing: Listing, cursor: LandingCursor, limits: LandingLimits, now: float
) -> tuple[list[ObjectInfo], LandingCursor]:
    """The new object versions of a feed since ``cursor``, and the cursor after them.

    ``listing(start_after)`` lists the feed's objects in key order after a key (all if None).
    Reads at most ``limits.max_objects + limits.rescan_objects`` objects.
    """
    state = copy.deepcopy(cursor)
    if state.since is None:
        state.since = state.pass_started = now
    found = _forward(listing, state, limits)
    _remember(state, found)
    _settle(state, limits, now)
    rescanned = _rescan(listing, state, limits, now)
    _remember(state, rescanned)
    _forget(state, limits)
    return found + rescanned, state


def _forward(listing: Listing, state: LandingCursor, limits: LandingLimits) -> list[ObjectInfo]:
    found: list[ObjectInfo] = []
    listed: set[str] = set()
    for info in itertools.islice(listing(state.after), limits.max_objects):
        listed.add(info.key)
        known = state.window.get(info.key)
        if known is None or known[0] != info.etag:
            found.append(info)
            state.window[info.key] = (info.etag, info.modified.timestamp())
    reached = max(listed) if len(listed) == limits.max_objects else None
    for key in [k for k in state.window if k not in listed and (reached is None or k < reached)]:
        del state.window[key]
    return found


def _settle(state: LandingCursor, limits: LandingLimits, now: float) -> None:
    horizon = now - limits.settle.total_seconds()
    for key in sorted(state.window):
        if state.window[key][1] > horizon and len(state.window) <= limits.max_window:
            break
        del state.window[key]
        state.after = key


def _rescan(
    listing: Listing, state: LandingCursor, limits: LandingLimits, now: float
) -> list[ObjectInfo]:
    if not limits.rescan_objects or state.after is None:
        return []
    threshold = state.since - limits.settle.total_seconds()
    found: list[ObjectInfo] = []
    read = 0
    finished = False
    for info in itertools.islice(listing(state.rescan_at), limits.rescan_objects):
        if info.key > state.after:
            finished = True
            break
        read += 1
        state.rescan_at = info.key
        if info.modified.timestamp() > threshold and _digest(info) not in state.memory:
            found.append(info)
    if finished or read < limits.rescan_objects:
        state.since, state.pass_started, state.rescan_at = state.pass_started, now, None
    return found


def _remember(state: LandingCursor, found: list[ObjectInfo]) -> None:
    for info in found:
        state.memory[_digest(info)] = info.modified.timestamp()


def _forget(state: LandingCursor, limits: LandingLimits) -> None:
    threshold = state.since - limits.settle.total_seconds()
    kept = sorted(
        ((modified, digest) for digest, modified in state.memory.items() if modified > threshold),
        reverse=True,
    )[: limits.max_memory]
    state.memory = {digest: modified for modified, digest in kept}


def landing_sensor(
    team: str,
    feed: str,
    asset: dg.AssetsDefinition,
    *,
    sample: Callable[[datetime], pd.DataFrame] | None = None,
    seed_at: Sequence[datetime] = (),
    limits: LandingLimits = LandingLimits(),
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor that ingests every file landed in the ``team``'s ``feed`` with ``asset``.

    ``asset`` must have a named ``DynamicPartitionsDefinition``: its partition keys are the
    files' storage keys. ``sample`` makes a synthetic file for a landing time (``dataops land``),
    and ``seed_at`` the times of the sample files ``dataops materialize --all`` lands into an
    empty feed; ``sample`` must be a module-level function, as it is named in the metadata.
    """
    partitions_def = asset.partitions_def
    if not isinstance(partitions_def, dg.DynamicPartitionsDefinition) or not partitions_def.name:
        raise TypeError(
            f"Landing sensor {team}/{feed}: asset {asset.key.to_user_string()} needs a named "
            "DynamicPartitionsDefinition, one partition per landed file."
        )
    name = f"{team}_{feed}_landing"
    described = {
        "team": team,
        "feed": feed,
        "partitions": partitions_def.name,
        "sample": _reference(sample) if sample else None,
        "seed_at": [at.astimezone(UTC).isoformat() for at in seed_at],
    }

    @dg.sensor(
        name=name,
        target=asset,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Ingests each file landed under <environment>/landing/{team}/{feed}/ as a "
        f"partition of {asset.key.to_user_string()}.",
        metadata={LANDING_METADATA: dg.MetadataValue.json(described)},
    )
    def tick(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
        cursor = LandingCursor.parse(context.cursor)
        listing = functools.partial(landing.list, team, feed)
        found, cursor = scan(listing, cursor, limits, time.time())
        partition_keys = list(dict.fromkeys(info.key for info in found))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key(info),
                    partition_key=info.key,
                    tags={LANDING_KEY_TAG: info.key, LANDING_ETAG_TAG: info.etag},
                )
                for info in found
            ],
            dynamic_partitions_requests=(
                [partitions_def.build_add_request(partition_keys)] if partition_keys else []
            ),
            cursor=cursor.dump(),
        )

    return tick


def _reference(function: Callable[..., Any]) -> str:
    reference = f"{function.__module__}:{function.__qualname__}"
    if pkgutil.resolve_name(reference) is not function:
        raise ValueError(f"{reference} is not a module-level function; define it at top level.")
    return reference


@dataclass(frozen=True)
class LandingFeed:
    """A landing sensor of a code location, as its metadata describes it."""

    sensor: dg.SensorDefinition
    team: str
    feed: str
    sample: str | None
    seed_at: tuple[datetime, ...]

    def land_sample(
        self, landing: LandingZone, at: datetime, suffix: str | None = None
    ) -> ObjectInfo:
        """Land a sample file, as landed at ``at``, into this feed."""
        if self.sample is None:
            raise ValueError(f"Landing sensor {self.sensor.name} has no sample.")
        frame = pkgutil.resolve_name(self.sample)(at)
        return landing.land(self.team, self.feed, frame, at, suffix)


def landing_feeds(defs: dg.Definitions) -> list[LandingFeed]:
    """The landing sensors among a code location's sensors."""
    feeds = []
    for sensor in defs.sensors or ():
        described = sensor.metadata.get(LANDING_METADATA)
        if described is None:
            continue
        value = described.value
        feeds.append(
            LandingFeed(
                sensor=sensor,
                team=value["team"],
                feed=value["feed"],
                sample=value["sample"],
                seed_at=tuple(datetime.fromisoformat(at) for at in value["seed_at"]),
            )
        )
    return feeds


def land_samples(defs: dg.Definitions) -> list[ObjectInfo]:
    """Land each feed's seed files into it if it holds nothing yet."""
    landing: LandingZone = defs.resources["landing"]
    landed = []
    for feed in landing_feeds(defs):
        if not feed.seed_at or next(landing.list(feed.team, feed.feed), None) is not None:
            continue
        landed.extend(feed.land_sample(landing, at, SAMPLE_SUFFIX) for at in feed.seed_at)
    return landed


def register_landed_files(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dict[str, Mapping[str, str]]:
    """Run each landing sensor's discovery until it finds nothing new, adding its partitions.

    Returns, per partition key, the tags of the run the sensor asked for (run key and sensor
    name included), so a run made from them is one the sensor's daemon will not repeat.
    """
    tags: dict[str, Mapping[str, str]] = {}
    for feed in landing_feeds(defs):
        resources = {key: defs.resources[key] for key in feed.sensor.required_resource_keys}
        cursor = None
        while True:
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=resources
            ) as context:
                result = feed.sensor(context)
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
            for request in result.run_requests:
                tags[request.partition_key] = {
                    **request.tags,
                    RUN_KEY_TAG: request.run_key,
                    SENSOR_NAME_TAG: feed.sensor.name,
                }
            if not result.run_requests:
                break
            cursor = result.cursor
    return tags
