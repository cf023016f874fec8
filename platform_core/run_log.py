"""Dagster's full event stream of the main job's runs, in one log file instead of the terminal.

Every event of every run (DEBUG included, failures with their stack traces) is read back from the
instance after the run and appended as one line each; Python warnings raised meanwhile go to the
same file. The terminal keeps the short per-asset lines; ``verbose`` also keeps Dagster's console
stream on stderr.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

CONSOLE_LOGGER = "console"


class RunLog:
    """An append-only log file of the runs' events."""

    def __init__(self, path: Path, verbose: bool = False) -> None:
        self.path = path
        self.verbose = verbose
        path.parent.mkdir(parents=True, exist_ok=True)

    def run_config(self, job: dg.JobDefinition) -> Mapping[str, Any]:
        """Run config that silences the job's console logger, unless verbose."""
        if self.verbose or CONSOLE_LOGGER not in job.loggers:
            return {}
        return {"loggers": {CONSOLE_LOGGER: {"config": {"log_level": "CRITICAL"}}}}

    def append_run(self, instance: dg.DagsterInstance, run_id: str, title: str) -> None:
        """A ``title`` line naming the run, then every stored event of it, oldest first."""
        with self.path.open("a") as out:
            out.write(f"=== run {run_id}: {title}\n")
            for entry in instance.all_logs(run_id):
                out.write(_line(entry) + "\n")

    @contextlib.contextmanager
    def capturing_warnings(self) -> Iterator[None]:
        """Python warnings go to the log file (and stderr too when verbose)."""
        if self.verbose:
            yield
            return
        handler = logging.FileHandler(self.path, delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s WARNING %(message)s"))
        warnings_logger = logging.getLogger("py.warnings")
        warnings_logger.addHandler(handler)
        warnings_logger.propagate = False
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            warnings_logger.removeHandler(handler)
            warnings_logger.propagate = True
            handler.close()


def _line(entry: dg.EventLogEntry) -> str:
    at = datetime.fromtimestamp(entry.timestamp, UTC).isoformat(timespec="milliseconds")
    event = entry.dagster_event
    kind = event.event_type_value if event is not None else "LOG"
    line = (
        f"{at} {logging.getLevelName(entry.level)} {entry.run_id} {entry.step_key or '-'} "
        f"{kind} {entry.user_message}"
    )
    error = _error(event)
    return f"{line}\n{error.to_string()}" if error is not None else line


def _error(event: dg.DagsterEvent | None) -> Any:
    if event is None:
        return None
    if event.is_step_failure:
        return event.step_failure_data.error
    if event.is_run_failure:
        return event.job_failure_data.error
    return None
