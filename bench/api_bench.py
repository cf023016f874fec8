"""Dataset API benchmark, not a test: Arrow streaming and catalog calls, on loopback, one run.

A ~100 MB product (``analytics/customer_value``, granted in full to ``finance_bi``) is written
as the IO manager writes products (row groups of 1M rows) on the local target and recorded in a
fresh instance; ``dataops serve``'s app runs in a second process (uvicorn), with one extra route
that streams the same product through the same serving function without tokens or policy.

- Arrow stream of the product to one client, best of ``--repeat``, as ratios to the unpoliced
  route and to pyarrow reading the Parquet file from local disk.
- Peak server memory (RSS above its level before the read) while streaming, against the size of
  one row group in memory: it should stay under 2x, not grow with the product.
- ``--clients`` concurrent clients from a third process (httpx, one client each) calling the
  catalog (list, and one product in full) for ``--seconds``: aggregate calls/s, p50 and p99.

    .venv/bin/python bench/api_bench.py [--mb 100] [--repeat 3] [--clients 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

PRODUCT = "analytics/customer_value"
PRINCIPAL = "finance_bi"
ROW_GROUP_ROWS = 1_000_000


def write_product(mb: int, home: Path, storage_root: Path) -> tuple[Path, int]:
    """The product's Parquet file and materialisation; bytes of one row group in memory."""
    import dagster as dg
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from platform_core.dagster_home import prepare_dagster_home
    from platform_core.io_manager import column_schema

    rows = mb * 2**20 // 48
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "customer_id": np.arange(rows, dtype=np.int64),
            **{f"x{n}": rng.standard_normal(rows) for n in range(4)},
            "orders": rng.integers(0, 1000, rows, dtype=np.int64),
        }
    )
    path = storage_root / "dev" / f"{PRODUCT}.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)
    os.environ["DAGSTER_HOME"] = str(home)
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=PRODUCT.split("/"),
                metadata={
                    "dagster/row_count": rows,
                    "dagster/column_schema": column_schema(table.schema),
                },
            )
        )
    return path, table.slice(0, ROW_GROUP_ROWS).nbytes


def serve(port: int) -> None:
    """The API app plus ``/bench/raw/{team}/{name}``: the same serving, no token, no policy."""
    import uvicorn

    from platform_core.api.app import create_app
    from platform_core.api.catalog import Catalog, SharedTable
    from platform_core.api.reads import ReadRequest, serve_read

    app = create_app()
    catalog: Catalog = app.state.catalog

    @app.get("/bench/raw/{team}/{name}")
    def raw(team: str, name: str):  # noqa: ANN202
        table = SharedTable("bench", team, name, f"{team}/{name}", f"{team}/{name}")
        return serve_read(catalog, "bench", table, ReadRequest())

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def clients(url: str, token: str, count: int, seconds: float) -> None:
    """``count`` threads calling the catalog until ``seconds`` pass; prints the latencies."""
    import httpx

    paths = ["/api/v1/products", f"/api/v1/products/{PRODUCT}"]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            i = n
            while time.monotonic() < stop:
                start = time.perf_counter()
                ok = client.get(paths[i % 2]).status_code == 200
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors += not ok
                i += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies": latencies, "errors": errors, "seconds": seconds}))


def stream(url: str, headers: dict[str, str]) -> tuple[float, int]:
    import pyarrow as pa
    import requests

    start = time.perf_counter()
    with requests.get(url, headers=headers, stream=True, timeout=600) as answer:
        answer.raise_for_status()
        rows = sum(b.num_rows for b in pa.ipc.open_stream(answer.raw))
    return time.perf_counter() - start, rows


def peak_rss(pid: int, during) -> tuple[int, int]:  # noqa: ANN001
    """(RSS before, peak RSS while ``during()`` runs) of process ``pid``."""
    import psutil

    process = psutil.Process(pid)
    before = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        during()
    finally:
        done.set()
        sampler.join()
    return before, peak


def wait_up(url: str, server: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the API server exited")
        try:
            requests.get(f"{url}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit("the API server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.client_url:
        return clients(args.client_url, os.environ["BENCH_TOKEN"], args.clients, args.seconds)

    import pyarrow.parquet as pq
    import requests

    from platform_core.api.tokens import TokenStore

    with tempfile.TemporaryDirectory() as folder:
        home, storage = Path(folder) / "home", Path(folder) / "storage"
        path, row_group_bytes = write_product(args.mb, home, storage)
        token, _ = TokenStore(home / "api").create(PRINCIPAL, timedelta(hours=1))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DATAOPS_")},
            "DAGSTER_HOME": str(home),
            "DATAOPS_TARGET": "local",
            "DATAOPS_LOCAL_ROOT": str(storage),
            "DATAOPS_API_SIGNING_KEY": "bench-signing-key-0123456789abcdef",
        }
        command = [sys.executable, __file__, "--serve", str(port)]
        server = subprocess.Popen(command, env=env, cwd=ROOT)
        try:
            wait_up(url, server)
            headers = {"Authorization": f"Bearer {token}"}
            api_url = f"{url}/api/v1/products/{PRODUCT}/data"
            raw_url = f"{url}/bench/raw/{PRODUCT}"
            requests.get(f"{url}/api/v1/products", headers=headers, timeout=60).raise_for_status()
            before, peak = peak_rss(server.pid, lambda: stream(api_url, headers))
            times: dict[str, list[float]] = {"api": [], "raw": [], "local": []}
            rows = 0
            for n in range(args.repeat):
                for kind in ("api", "raw") if n % 2 else ("raw", "api"):
                    took, rows = stream(api_url if kind == "api" else raw_url, headers)
                    times[kind].append(took)
                start = time.perf_counter()
                pq.read_table(path)
                times["local"].append(time.perf_counter() - start)
            done = subprocess.run(
                [sys.executable, __file__, "--client-url", url, "--clients", str(args.clients)]
                + ["--seconds", str(args.seconds)],
                env={**env, "BENCH_TOKEN": token},
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = json.loads(done.stdout)
    latencies = sorted(load["latencies"])
    api, raw, local = (min(times[k]) for k in ("api", "raw", "local"))
    mib = rows * 48 / 2**20
    print(f"product: {rows} rows, ~{mib:.0f} MiB in memory, row groups of {ROW_GROUP_ROWS} rows")
    print(f"Arrow stream via API (token+policy): {api:.3f} s ({mib / api:.0f} MiB/s)")
    print(f"same server, no token/policy:        {raw:.3f} s  ratio api/raw   {api / raw:.2f}")
    print(f"pyarrow read_table, local disk:      {local:.3f} s  ratio api/local {api / local:.2f}")
    growth = peak - before
    print(
        f"server RSS, first stream: +{growth / 2**20:.0f} MiB over {before / 2**20:.0f} MiB; "
        f"one row group {row_group_bytes / 2**20:.0f} MiB: ratio {growth / row_group_bytes:.2f} "
        "(goal < 2)"
    )
    count = len(latencies)
    print(
        f"{args.clients} concurrent clients, {args.seconds:.0f} s, catalog list + one product: "
        f"{count / load['seconds']:.0f} calls/s, p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(count * 0.99) - 1] * 1000:.1f} ms, errors {load['errors']}"
    )


if __name__ == "__main__":
    main()
