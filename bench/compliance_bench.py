"""Compliance benchmark, not a test: what the personal-data scan costs on the write path.

Measured in one run on the local target, same frame, alternating, best of ``--repeat``: the IO
manager writing a ~100 MB order-book-like product (string order and customer ids, categorical
country and channel, free-text notes, numbers and timestamps) without a compliance guard, and
with one that scans every table it writes (the product is not pii). Prints both times, the
ratio (goal: at most 1.05x), and the scan alone.

    .venv/bin/python bench/compliance_bench.py [--mb 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import dagster as dg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from measure import timed  # noqa: E402

from adapters.storage.local import LocalStorage  # noqa: E402
from platform_core.governance.compliance import ComplianceGuard  # noqa: E402
from platform_core.governance.personal_data import find_personal_data  # noqa: E402
from platform_core.io_manager import DataProductIOManager  # noqa: E402

KEY = dg.AssetKey(["analytics", "bench_orders"])
NOTES = ["", "gift wrap", "leave at door", "call before delivery", "second floor, ring twice"]


def frame_of(mb: int) -> pd.DataFrame:
    rows = mb * 2**20 // 88
    rng = np.random.default_rng(12)
    numbers = np.arange(rows)
    return pd.DataFrame(
        {
            "order_id": pd.Series(numbers).map("O-20261101-{:07d}".format),
            "customer_id": pd.Series(rng.integers(1, 400_000, rows)).map("C{:06d}".format),
            "country": pd.Categorical(rng.choice(["DE", "FR", "NL", "US", "JP"], rows)),
            "channel": pd.Categorical(rng.choice(["web", "mobile", "store"], rows)),
            "note": pd.Series(rng.choice(NOTES, rows)),
            "amount": rng.gamma(2.0, 40.0, rows).round(2),
            "quantity": rng.integers(1, 6, rows),
            "ordered_at": pd.Timestamp("2026-11-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    frame = frame_of(args.mb)
    size = frame.memory_usage(deep=True).sum() / 2**20
    with tempfile.TemporaryDirectory() as root:
        storage = LocalStorage(root=root)
        plain = DataProductIOManager(storage=storage, environment="dev")
        scanned = DataProductIOManager(
            storage=storage, environment="dev", compliance=ComplianceGuard()
        )
        times: dict[str, list[float]] = {"plain": [], "scanned": []}
        cases = [("plain", plain, KEY), ("scanned", scanned, dg.AssetKey([*KEY.path, "scanned"]))]
        for round_number in range(args.repeat):
            for name, manager, key in cases[:: 1 if round_number % 2 == 0 else -1]:
                context = dg.build_output_context(asset_key=key)
                times[name].append(timed(manager.handle_output, context, frame))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        scan = min(timed(find_personal_data, table) for _ in range(args.repeat))
    plain_s, scanned_s = min(times["plain"]), min(times["scanned"])
    print(f"frame: {len(frame):,} rows, {size:.0f} MiB in memory")
    print(f"write without scan: {plain_s:.3f} s")
    print(f"write with scan:    {scanned_s:.3f} s")
    print(f"ratio scanned/plain: {scanned_s / plain_s:.3f}x (goal <= 1.05x)")
    print(f"scan alone: {scan:.3f} s ({scan / plain_s:.1%} of the plain write)")


if __name__ == "__main__":
    main()
