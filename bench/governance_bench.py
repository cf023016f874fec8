"""Governance benchmark, not a test: what access enforcement costs on the IO path.

Measured in one run on the local target, same frame, alternating, best of ``--repeat``:

- the IO manager writing and reading a ~100 MB product for team ``analytics`` without a guard,
  and with the access guard (a write check; for reads, another team's product with a full grant,
  so the policy is consulted on every load). The ratio guarded / unguarded is the enforcement cost.
- one access decision (``AccessGuard.decide``) on a loaded policy: microseconds per decision.

    .venv/bin/python bench/governance_bench.py [--mb 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import dagster as dg  # noqa: E402
from measure import numeric_frame, timed  # noqa: E402

from adapters.storage.local import LocalStorage  # noqa: E402
from platform_core.governance.guard import AccessGuard  # noqa: E402
from platform_core.io_manager import DataProductIOManager  # noqa: E402

OWN = dg.AssetKey(["analytics", "bench_frame"])
GRANTED = dg.AssetKey(["sales", "orders"])
DECISIONS = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = numeric_frame(args.mb)
    with tempfile.TemporaryDirectory() as root:
        storage = LocalStorage(root=root)
        guard = AccessGuard(team="analytics", environment="dev")
        guard.loaded()
        managers = {
            "off": DataProductIOManager(storage=storage, environment="dev"),
            "on": DataProductIOManager(storage=storage, environment="dev", guard=guard),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for mode, manager in managers.items():
                write = dg.build_output_context(asset_key=OWN)
                results.setdefault(("write", mode), []).append(
                    timed(lambda m=manager, c=write: m.handle_output(c, frame))
                )
            for mode, manager in managers.items():
                # the granted product's object: the same bytes, stored under sales/orders
                storage.put(
                    "dev/sales/orders.parquet", storage.get("dev/analytics/bench_frame.parquet")
                )
                read = dg.build_input_context(asset_key=GRANTED)
                results.setdefault(("read", mode), []).append(
                    timed(lambda m=manager, c=read: m.load_input(c))
                )
        start = time.perf_counter()
        for _ in range(DECISIONS):
            guard.decide("sales/orders")
        per_decision = (time.perf_counter() - start) / DECISIONS
    size = frame.memory_usage(deep=True).sum() / 2**20
    print(f"frame: {size:.0f} MiB in memory, best of {args.repeat}, local target")
    for op in ("write", "read"):
        off, on = min(results[op, "off"]), min(results[op, "on"])
        print(f"{op:5}: without guard {off:.3f} s, with guard {on:.3f} s, ratio {on / off:.3f}")
    print(f"one access decision: {per_decision * 1e6:.1f} us (goal <= 5 ms)")


if __name__ == "__main__":
    main()
