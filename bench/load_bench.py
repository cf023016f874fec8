"""Load-time benchmark (not a test): both team code locations on ``local`` vs the bare libraries.

Measured in the same run, each sample a fresh interpreter (cold imports, warm disk cache):

- baseline: ``import dagster, pandas, pyarrow`` (asset code needs those three anyway);
- platform: import both team definitions modules and load them (``defs()``: settings, adapters,
  storage check, sensors, executors), as a code server does.

Prints the median of each, their ratio, and the heavy modules the platform sample imported
(cloud SDKs and Kubernetes must not appear on the local target).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "azure", "google.cloud", "kubernetes", "dagster_k8s")
BASELINE = (
    "import time; t = time.perf_counter(); import dagster, pandas, pyarrow; "
    "print(time.perf_counter() - t)"
)
PLATFORM = f"""
import json, sys, time
t = time.perf_counter()
import assets.sales.definitions as sales, assets.analytics.definitions as analytics
sales.defs(); analytics.defs()
elapsed = time.perf_counter() - t
heavy = sorted({{m.split(".")[0] for m in sys.modules
                 if m.split(".")[0] in {HEAVY!r} or m.startswith("google.cloud")}})
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""


def sample(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        env = {
            **os.environ,
            "DATAOPS_TARGET": "local",
            "DATAOPS_LOCAL_ROOT": root,
            "DATAOPS_PSEUDONYM_KEY": secrets.token_hex(32),
        }
        baseline, platform, heavy = [], [], set()
        for _ in range(args.repeat):
            baseline.append(float(sample(BASELINE, env)))
            measured = json.loads(sample(PLATFORM, env))
            platform.append(measured["seconds"])
            heavy.update(measured["heavy"])
    base, ours = statistics.median(baseline), statistics.median(platform)
    print(f"import dagster, pandas, pyarrow : {base:.2f} s (median of {args.repeat})")
    print(f"import + load both locations    : {ours:.2f} s")
    print(f"ratio                           : {ours / base:.2f}x (goal <= 1.3x)")
    print(f"heavy modules imported          : {', '.join(sorted(heavy)) or 'none'}")


if __name__ == "__main__":
    main()
