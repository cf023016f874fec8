"""``dataops lineage export``: the events of past runs, rebuilt from the event log.

With an output directory each run's events go to ``<dir>/<run_id>.jsonl``, one event per line,
byte-identical on every export (keys sorted; files written whole, then renamed into place).
Without one they are queued again in the outbox and delivered through the configured transport,
to backfill a catalog.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from config import Deployment
from platform_core.lineage.config import lineage_config
from platform_core.lineage.emit import deliver, run_events, store_run
from platform_core.lineage.outbox import Delivery


@dataclass(frozen=True)
class Export:
    """What an export did."""

    runs: int
    events: int
    delivery: Delivery | None = None

    def summary(self, output: Path | None) -> str:
        done = f"{self.events} events of {self.runs} runs"
        if output is not None:
            return f"wrote {done} to {output}"
        if self.delivery is None:
            return f"rebuilt {done}; lineage.transport is none, nothing sent"
        waiting = f", {self.delivery.pending} wait in the outbox" if self.delivery.pending else ""
        return f"queued {done}; sent {self.delivery.sent}{waiting}"


def since_time(text: str) -> datetime:
    """``--since``: an ISO 8601 date or time, UTC unless it names a zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T08:00Z)"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{line}\n" for line in lines)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_lineage(
    instance: dg.DagsterInstance,
    specs: Iterable[dg.AssetSpec],
    deployment: Deployment,
    since: datetime | None = None,
    output: Path | None = None,
) -> Export:
    """Rebuild the events of every run created at or after ``since``, oldest run first."""
    config = lineage_config(deployment)
    specs = list(specs)
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_after=since) if since else None, ascending=True
    )
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    runs = events = 0
    for record in records:
        run_id = record.dagster_run.run_id
        if output is None:
            built = store_run(instance, run_id, specs, deployment, resend=True)
        else:
            built = run_events(instance, run_id, specs, deployment)
        if not built:
            continue
        runs, events = runs + 1, events + len(built)
        if output is not None:
            _write_atomically(
                output / f"{run_id}.jsonl", (json.dumps(event, sort_keys=True) for event in built)
            )
    if output is not None or config.transport == "none":
        return Export(runs, events)
    return Export(runs, events, deliver(instance, config))
