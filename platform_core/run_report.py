"""What the main job did, as lines a person reads: one per asset, partition and check, then a table.

Each run's outcome comes from its events and the instance's step statistics: per asset, whether
it was materialised, failed or skipped, its row count (``dagster/row_count``) and its step's
seconds; per check, whether it passed. Failures are kept, with the innermost error message, for
the closing report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg

MATERIALIZED = "materialized"
FAILED = "FAILED"
SKIPPED = "skipped"


@dataclass(frozen=True)
class AssetOutcome:
    """One asset (one partition of it) in one run."""

    asset_key: dg.AssetKey
    status: str
    rows: int | None = None
    seconds: float | None = None
    reason: str = ""

    def line(self) -> str:
        name = self.asset_key.to_user_string()
        if self.status == SKIPPED:
            return f"  {SKIPPED} {name}: {self.reason}"
        timing = f"{self.seconds:.2f} s" if self.seconds is not None else "? s"
        if self.status == FAILED:
            return f"  {FAILED} {name}: {timing}"
        rows = self.rows if self.rows is not None else "?"
        return f"  {MATERIALIZED} {name}: {rows} rows, {timing}"


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluation."""

    check_key: dg.AssetCheckKey
    passed: bool
    seconds: float | None

    def line(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        timing = f"{self.seconds:.2f} s" if self.seconds is not None else "? s"
        return f"  check {self.check_key.to_user_string()}: {verdict}, {timing}"


@dataclass(frozen=True)
class Failure:
    """A failed step or run, for the closing report."""

    location: str
    what: str
    message: str
    run_id: str

    def line(self) -> str:
        return f"  {self.location}: {self.what}: {self.message} (run {self.run_id})"


@dataclass(frozen=True)
class RunOutcome:
    """Everything one run reports."""

    assets: tuple[AssetOutcome, ...]
    checks: tuple[CheckOutcome, ...] = ()
    failures: tuple[Failure, ...] = ()


def _innermost(error: dg.SerializableErrorInfo | None) -> str:
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    return {
        stats.step_key: stats.end_time - stats.start_time
        for stats in instance.get_run_step_stats(run_id)
        if stats.start_time is not None and stats.end_time is not None
    }


def _node_seconds(seconds: dict[str, float], node: str) -> float | None:
    own = [value for key, value in seconds.items() if key == node or key.startswith(f"{node}.")]
    return sum(own) if own else None


def outcome_of_run(
    location: str,
    partition_key: str | None,
    defs: dg.Definitions,
    result: dg.ExecuteInProcessResult,
    instance: dg.DagsterInstance,
    selected: Iterable[dg.AssetKey],
) -> RunOutcome:
    """The per-asset and per-check outcome of a finished run."""
    seconds = _step_seconds(instance, result.run_id)
    materialized = {
        event.materialization.asset_key: event
        for event in result.get_asset_materialization_events()
    }
    assets = []
    for key in selected:
        node = defs.resolve_assets_def(key).node_def.name
        if key in materialized:
            event = materialized[key]
            rows = event.materialization.metadata.get("dagster/row_count")
            row_count = int(rows.value) if rows is not None else None
            step_seconds = seconds.get(event.step_key or "")
            assets.append(AssetOutcome(key, MATERIALIZED, row_count, step_seconds))
        elif result.is_node_failed(node):
            assets.append(AssetOutcome(key, FAILED, seconds=_node_seconds(seconds, node)))
        else:
            assets.append(AssetOutcome(key, SKIPPED, reason="not run (an earlier step failed)"))
    checks = tuple(
        CheckOutcome(
            evaluation.asset_check_key,
            evaluation.passed,
            seconds.get(event.step_key or ""),
        )
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        for evaluation in [event.asset_check_evaluation_data]
    )
    failures = [
        Failure(
            location,
            _partitioned(f"FAILED step {event.step_key}", partition_key),
            _innermost(event.step_failure_data.error),
            result.run_id,
        )
        for event in result.get_step_failure_events()
    ]
    if not result.success and not failures:
        run_failures = result.filter_events(lambda event: event.is_run_failure)
        error = run_failures[0].job_failure_data.error if run_failures else None
        what = _partitioned("FAILED run", partition_key)
        failures.append(Failure(location, what, _innermost(error), result.run_id))
    return RunOutcome(tuple(assets), checks, tuple(failures))


def skipped_assets(
    keys: Iterable[dg.AssetKey], failed_parents: dict[dg.AssetKey, set[dg.AssetKey]]
) -> tuple[AssetOutcome, ...]:
    """Outcomes for assets not run because an upstream asset did not materialise."""
    return tuple(
        AssetOutcome(
            key,
            SKIPPED,
            reason="upstream "
            + ", ".join(sorted(parent.to_user_string() for parent in failed_parents[key]))
            + " did not materialise",
        )
        for key in keys
    )


def _partitioned(what: str, partition_key: str | None) -> str:
    return f"{what} [{partition_key}]" if partition_key else what


@dataclass
class _Totals:
    runs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0

    def add(self, asset: AssetOutcome) -> None:
        self.runs += 1
        self.statuses[asset.status] = self.statuses.get(asset.status, 0) + 1
        self.rows += asset.rows or 0
        self.seconds += asset.seconds or 0.0

    def cells(self, name: str) -> tuple[str, ...]:
        counts = (str(self.statuses.get(status, 0)) for status in (MATERIALIZED, FAILED, SKIPPED))
        return (name, str(self.runs), *counts, str(self.rows), f"{self.seconds:.2f}")


SUMMARY_HEADER = ("asset", "runs", "materialized", "failed", "skipped", "rows", "seconds")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            [
                row[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in rows
    ]


@dataclass
class MainJobReport:
    """The outcomes of every run of one main job, and the closing summary."""

    runs: list[RunOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[Failure]:
        return [failure for run in self.runs for failure in run.failures]

    @property
    def ok(self) -> bool:
        """No step or run failed (a failed non-blocking check is reported, not fatal)."""
        return not self.failures

    def add(self, run: RunOutcome, echo: Callable[[str], None]) -> None:
        """Record a run and print its lines."""
        self.runs.append(run)
        for asset in run.assets:
            echo(asset.line())
        for check in run.checks:
            echo(check.line())

    def summary(self) -> list[str]:
        """The closing table (one row per asset, its partitions added up) and every failure."""
        if not self.runs:
            return ["nothing to materialise: every asset and partition has been materialised"]
        totals: dict[str, _Totals] = {}
        for run in self.runs:
            for asset in run.assets:
                totals.setdefault(asset.asset_key.to_user_string(), _Totals()).add(asset)
        lines = ["summary:"]
        lines += _table([SUMMARY_HEADER, *(t.cells(name) for name, t in totals.items())])
        checks = [check for run in self.runs for check in run.checks]
        passed = sum(check.passed for check in checks)
        lines.append(f"  checks: {passed} passed, {len(checks) - passed} failed")
        if self.failures:
            lines.append(f"failures ({len(self.failures)}):")
            lines.extend(failure.line() for failure in self.failures)
        return lines
