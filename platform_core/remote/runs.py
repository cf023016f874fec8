"""Launching a selection once per run key, and following a run to its end or a deadline."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from platform_core.remote.client import PARTITION_TAG, DeploymentClient, Run, is_finished
from platform_core.remote.exit_codes import ExitCode, RemoteError

RUN_KEY_TAG = "dataops/run_key"
REUSABLE = ("QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUSPENDED", "SUCCESS")
ASSET_KEY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
RUN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=/-]{0,199}")
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 3.0


def parse_selection(select: str) -> list[str]:
    """``--select``: comma-separated asset keys, each ``part/part``; a usage error otherwise."""
    keys = [key.strip() for key in select.split(",") if key.strip()]
    bad = [key for key in keys if not ASSET_KEY.fullmatch(key)]
    if not keys or bad:
        raise RemoteError(
            ExitCode.USAGE,
            f"--select {select!r} is not a comma-separated list of asset keys like sales/orders",
        )
    return list(dict.fromkeys(keys))


def launch_or_reuse(
    client: DeploymentClient,
    keys: Sequence[str],
    partition: str | None = None,
    run_key: str | None = None,
) -> tuple[Run, bool]:
    """The run of ``keys`` (one partition or none): reused when ``run_key`` names a live run.

    A run key is one scheduled job instance: a run with it that is queued, running or succeeded
    is returned instead of launching another; after a failed or canceled one a new run starts.
    A key reused for another selection or partition is refused rather than silently answered.
    Returns the run and whether it was launched now.
    """
    where = client.locate(keys)
    if where.partitioned_keys and not partition:
        raise RemoteError(
            ExitCode.USAGE,
            f"{', '.join(where.partitioned_keys)} is partitioned: say which with --partition KEY",
        )
    if partition and not where.partitioned_keys:
        raise RemoteError(
            ExitCode.USAGE, f"--partition {partition!r}: no selected asset is partitioned"
        )
    tags = {PARTITION_TAG: partition} if partition else {}
    if run_key is not None:
        if not RUN_KEY.fullmatch(run_key):
            raise RemoteError(
                ExitCode.USAGE,
                f"--run-key {run_key!r}: use up to 200 letters, digits and _.:@+=/- characters",
            )
        existing = client.find_run((RUN_KEY_TAG, run_key), REUSABLE)
        if existing is not None:
            if (
                set(existing.asset_keys) != set(keys)
                or existing.tags.get(PARTITION_TAG) != partition
            ):
                raise RemoteError(
                    ExitCode.USAGE,
                    f"--run-key {run_key!r} already names run {existing.run_id} of "
                    f"{', '.join(existing.asset_keys)} "
                    f"(partition {existing.tags.get(PARTITION_TAG)}); use another key",
                )
            return existing, False
        tags[RUN_KEY_TAG] = run_key
    run_id = client.launch(where, keys, tags)
    return client.run(run_id), True


def follow(
    client: DeploymentClient,
    run: Run,
    timeout: float | None,
    echo: Callable[[str], None],
) -> Run:
    """The run once it has finished, or as it stands when ``timeout`` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    status, pause = run.status, FIRST_PAUSE
    while not is_finished(status):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        time.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 1.5, LONGEST_PAUSE)
        latest = client.status(run.run_id)
        if latest != status:
            echo(f"run {run.run_id}: {latest}")
            status = latest
    return client.run(run.run_id)
