"""The landing cursor: which objects of a feed are new since the last tick, at O(new) a tick.

Pure bookkeeping over a lexicographic listing (no Dagster, no storage): the landing sensor
(``platform_core.feeds``) hands ``scan`` a listing function and stores the cursor it returns.
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
* A file moved in late under a key the cursor has passed is caught by the same pass: object
  stores stamp an object's time when it is written there, and the local adapter reports the
  later of a file's modification and status-change times, which a rename (``mv`` of a file
  written long ago) updates. Asking Dagster for each rescanned key instead was measured: one
  ``has_dynamic_partition`` lookup costs about 5 ms, 1 s a tick, which breaks O(new).

A failed tick (storage down half-way) raises: Dagster keeps the previous cursor and the next tick
redoes the work, producing the same run keys.
"""

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from adapters.storage.base import ObjectInfo

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
