"""Audit benchmark, not a test: what the audit trail costs on the IO path.

Measured in one run on the local target with a SQLite Dagster instance, same frame, best of
``--repeat`` (and the median of each repetition's ratio, the order alternating): the IO manager
(with its access guard in both cases) writing and reading a ~100 MB product without an audit
trail and with one. With it, every write and read appends one segment (the guard's allow
decision and the access itself) through the storage's conditional ``create``; the head's anchor
in the Dagster event log is written on a background thread. The "anchored" ratio also waits for
that anchor before the clock stops (the worst case: a step that ends right after its write).
Last, the cost of one audited access on its own, in milliseconds.

    .venv/bin/python bench/audit_bench.py [--mb 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import dagster as dg  # noqa: E402
from measure import numeric_frame, timed  # noqa: E402

from adapters.storage.local import LocalStorage  # noqa: E402
from platform_core.audit.trail import AuditTrail  # noqa: E402
from platform_core.dagster_home import prepare_dagster_home  # noqa: E402
from platform_core.governance.guard import AccessGuard  # noqa: E402
from platform_core.io_manager import DataProductIOManager  # noqa: E402

OWN = dg.AssetKey(["analytics", "bench_frame"])
RECORDS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = numeric_frame(args.mb)
    with tempfile.TemporaryDirectory() as root:
        os.environ["DAGSTER_HOME"] = str(Path(root) / "dagster_home")
        prepare_dagster_home()
        storage = LocalStorage(root=str(Path(root) / "storage"))
        with dg.DagsterInstance.get() as instance:
            trail = AuditTrail(storage=storage, environment="dev", principal="analytics")
            trail.bind_writer("bench", instance)
            plain = AccessGuard(team="analytics", environment="dev")
            audited = AccessGuard(team="analytics", environment="dev", audit=trail)
            plain.loaded()
            audited.loaded()
            managers = {
                "off": DataProductIOManager(storage=storage, environment="dev", guard=plain),
                "on": DataProductIOManager(
                    storage=storage, environment="dev", guard=audited, audit=trail
                ),
            }
            results: dict[tuple[str, str], list[float]] = {}

            def write_anchored() -> None:
                managers["on"].handle_output(dg.build_output_context(asset_key=OWN), frame)
                trail.flush()

            trail.record("warm-up", "analytics/bench_frame")
            trail.flush()
            for repetition in range(args.repeat):
                order = list(managers.items())[:: 1 if repetition % 2 == 0 else -1]
                for mode, manager in order:
                    write = dg.build_output_context(asset_key=OWN)
                    results.setdefault(("write", mode), []).append(
                        timed(lambda m=manager, c=write: m.handle_output(c, frame))
                    )
                    trail.flush()
                results.setdefault(("write", "anchored"), []).append(timed(write_anchored))
                for mode, manager in order:
                    read = dg.build_input_context(asset_key=OWN)
                    results.setdefault(("read", mode), []).append(
                        timed(lambda m=manager, c=read: m.load_input(c))
                    )
                    trail.flush()
            segments = sum(1 for _ in storage.list("_audit/"))
            start = time.perf_counter()
            for n in range(RECORDS):
                trail.record("write", "analytics/bench_frame", rows=n, size=n)
            per_record = (time.perf_counter() - start) / RECORDS
            trail.flush()
    size = frame.memory_usage(deep=True).sum() / 2**20
    print(f"frame: {size:.0f} MiB in memory, best of {args.repeat}, local target, SQLite instance")
    for op in ("write", "read"):
        off, on = min(results[op, "off"]), min(results[op, "on"])
        paired = statistics.median(
            b / a for a, b in zip(results[op, "off"], results[op, "on"], strict=True)
        )
        print(
            f"{op:5}: without audit {off:.3f} s, with audit {on:.3f} s, ratio {on / off:.3f} "
            f"(median of paired ratios {paired:.3f})"
        )
    anchored = min(results["write", "anchored"])
    off = min(results["write", "off"])
    print(f"write, waiting for the anchor: {anchored:.3f} s, ratio {anchored / off:.3f}")
    print(f"audit segments written: {segments} (goal: ratio <= 1.05)")
    print(
        f"one audited access (a segment created, anchor queued): {per_record * 1e3:.2f} ms, "
        f"{per_record / off:.2%} of the write without audit"
    )


if __name__ == "__main__":
    main()
