"""Lineage benchmark (not a test): what OpenLineage emission adds to a run, per transport.

On the embedded local default, the example graph is materialised once (lineage off); then the
same analytics run (``revenue_by_country`` and ``customer_value``, reading ``sales/orders``, with
its check step) is executed ``--runs`` times per mode, modes interleaved, each followed by the
emission ``dataops materialize`` makes (``emit_run_lineage``):

- ``none``: ``lineage.transport: none``, the baseline (the call returns at once);
- ``file``: the default file transport under the instance home;
- ``http``: a catalog on 127.0.0.1 (``tests/lineage_catalog.py``) that answers;
- ``http, catalog down``: nothing listens; events stay in the outbox.

Printed per mode: median run time, median emission time, the ratio of run + emission to the
baseline's, and emission alone over the baseline run (the run itself is the same in every mode,
so this is the overhead free of run-to-run noise). Emission in the daemon (the lineage sensor)
is off the run's path altogether.

    .venv/bin/python bench/lineage_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import dagster as dg  # noqa: E402
from lineage_catalog import API_KEY, Catalog  # noqa: E402
from servers import free_port  # noqa: E402

from config import load_deployment  # noqa: E402
from platform_core.lineage.emit import emit_run_lineage, lineage_dir  # noqa: E402
from platform_core.lineage.outbox import Outbox  # noqa: E402
from platform_core.materialize import materialize_all, workspace_locations  # noqa: E402

SELECTION = [
    dg.AssetKey(["analytics", "revenue_by_country"]),
    dg.AssetKey(["analytics", "customer_value"]),
]


def _modes(catalog: Catalog, closed_port: int) -> dict[str, dict[str, str]]:
    http = {"DATAOPS__LINEAGE__API_KEY_ENV": "BENCH_LINEAGE_KEY", "BENCH_LINEAGE_KEY": API_KEY}
    return {
        "none": {"DATAOPS__LINEAGE__TRANSPORT": "none"},
        "file": {"DATAOPS__LINEAGE__TRANSPORT": "file"},
        "http": {
            "DATAOPS__LINEAGE__TRANSPORT": "http",
            "DATAOPS__LINEAGE__URL": f"http://127.0.0.1:{catalog.port}",
            **http,
        },
        "http, catalog down": {
            "DATAOPS__LINEAGE__TRANSPORT": "http",
            "DATAOPS__LINEAGE__URL": f"http://127.0.0.1:{closed_port}",
            **http,
        },
    }


def _drop_pending(instance: dg.DagsterInstance) -> None:
    """Forget what the down catalog left in the outbox, so the next mode sends only its own run."""
    with closing(sqlite3.connect(Outbox(lineage_dir(instance)).path)) as db, db:
        db.execute("DELETE FROM events WHERE sent_at IS NULL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per mode")
    args = parser.parse_args()
    logging.getLogger("dataops.lineage").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="dataops-lineage-bench-") as tmp:
        os.environ.update(
            {
                "DATAOPS_TARGET": "local",
                "DATAOPS_LOCAL_ROOT": f"{tmp}/storage",
                "DATAOPS__COMPUTE__EXECUTOR": "in_process",
                "DATAOPS__LINEAGE__TRANSPORT": "none",
                "DAGSTER_HOME": f"{tmp}/home",
            }
        )
        Path(tmp, "home").mkdir()
        catalog = Catalog(free_port())
        catalog.start("up")
        modes = _modes(catalog, free_port())
        try:
            with dg.DagsterInstance.get() as instance:
                assert materialize_all(instance, echo=lambda _: None)
                analytics = next(loc for loc in workspace_locations() if loc.name == "analytics")
                defs = analytics.load()
                job = defs.resolve_implicit_global_asset_job_def()
                specs = defs.resolve_all_asset_specs()
                runs: dict[str, list[float]] = {mode: [] for mode in modes}
                emits: dict[str, list[float]] = {mode: [] for mode in modes}
                for _ in range(args.runs):
                    for mode, variables in modes.items():
                        for name in [n for n in os.environ if n.startswith("DATAOPS__LINEAGE__")]:
                            del os.environ[name]
                        os.environ.update(variables)
                        deployment = load_deployment()
                        started = time.perf_counter()
                        result = job.execute_in_process(
                            instance=instance, asset_selection=SELECTION
                        )
                        ran = time.perf_counter()
                        emit_run_lineage(instance, result.run_id, specs, deployment)
                        runs[mode].append(ran - started)
                        emits[mode].append(time.perf_counter() - ran)
                        _drop_pending(instance)
        finally:
            catalog.stop()
    base_run = statistics.median(runs["none"])
    baseline = base_run + statistics.median(emits["none"])
    print(f"{'mode':<20} {'run s':>7} {'emission ms':>12} {'ratio':>7} {'emission/run':>13}")
    for mode in modes:
        run, emit = statistics.median(runs[mode]), statistics.median(emits[mode])
        print(
            f"{mode:<20} {run:>7.3f} {emit * 1000:>12.1f} {(run + emit) / baseline:>7.3f} "
            f"{emit / base_run:>13.3f}"
        )
    print(f"({args.runs} runs per mode, interleaved; ratio = run + emission vs the none mode's)")
    print(f"events received by the catalog: {len(catalog.received)}")


if __name__ == "__main__":
    main()
