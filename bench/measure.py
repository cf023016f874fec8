"""What the benchmarks measure with: wall time of one call, peak memory, a numeric test frame.

Imported by the scripts beside it (``bench/`` is on ``sys.path`` when one runs).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def timed(action: Callable[..., Any], *args: Any) -> float:
    """Seconds one call of ``action(*args)`` takes."""
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def numeric_frame(mb: int) -> pd.DataFrame:
    """About ``mb`` MiB of int64 and float64 columns, the same for the same size."""
    rows = mb * 2**20 // 48
    rng = np.random.default_rng(11)
    columns = {"id": np.arange(rows, dtype=np.int64)}
    columns |= {f"x{n}": rng.standard_normal(rows) for n in range(4)}
    columns["c"] = rng.integers(0, 1000, rows, dtype=np.int64)
    return pd.DataFrame(columns)


def reset_peak_rss() -> int:
    """Forget the peak so far (Linux ``clear_refs``), so building the input is not counted; the
    current RSS is returned as the case's baseline."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")
