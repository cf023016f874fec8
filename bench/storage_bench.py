"""Storage benchmark, not a test: a ~500 MB DataFrame as Parquet, platform path vs raw SDK calls.

For each cloud adapter, against its real local server (moto S3, Azurite, fake-gcs-server):

- platform: ``DataProductIOManager.handle_output`` / ``load_input`` over the adapter that
  ``storage_for`` resolves, which encodes Parquet straight into ``adapter.open_output`` and
  decodes it from ``adapter.open_input`` (``bench/data_path_bench.py`` adds ``pyarrow.fs``);
- raw: ``pq.write_table`` to a temporary file and the SDK's own call with its defaults (boto3
  ``upload_fileobj`` / ``download_fileobj``, azure ``upload_blob`` / ``download_blob().readinto``,
  google ``upload_from_file`` / ``download_to_file``), then ``pq.read_table``.

Every case runs in its own process. Peak RSS is the process's high-water mark (``VmHWM``) from
the start of the write or read, reset after the frame was built; the baseline is the RSS at that
moment (imports, clients, and for a write the frame itself). A write
process builds the frame and writes it; a read process reads it back into a frame. Throughput is
Parquet bytes over wall time of the whole path (encode + upload, download + decode); each case
runs ``--repeat`` times, alternating platform and raw, and the fastest run counts (the local
servers are noisy).

    .venv/bin/python bench/storage_bench.py            # ~500 MB frame
    .venv/bin/python bench/storage_bench.py --mb 50    # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import dagster as dg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from measure import peak_rss, reset_peak_rss  # noqa: E402

BACKENDS = ("s3", "azure_blob", "gcs")
ASSET = dg.AssetKey(["bench", "frame"])
RAW_KEY = "raw/frame.parquet"
CLEARED = ("DATAOPS_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")


def make_frame(mb: int) -> pd.DataFrame:
    """A frame of about ``mb`` MiB in memory: floats (incompressible) and small-range integers."""
    rows = mb * 2**20 // 64
    rng = np.random.default_rng(7)
    columns: dict[str, Any] = {"id": np.arange(rows, dtype=np.int64)}
    columns |= {f"x{n}": rng.standard_normal(rows) for n in range(5)}
    columns |= {f"c{n}": rng.integers(0, 1000, rows, dtype=np.int64) for n in range(2)}
    return pd.DataFrame(columns)


def frame_bytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(deep=True).sum())


# Child processes: one case each


def run_case(op: str, path: str, mb: int) -> dict[str, Any]:
    from config import load_deployment
    from platform_core.io_manager import DataProductIOManager
    from platform_core.storage_factory import storage_for

    deployment = load_deployment()
    storage = storage_for(deployment)
    bucket = str(deployment.storage.require("bucket", "set DATAOPS_BUCKET"))
    warm_up()
    if op == "write":
        frame = make_frame(mb)
        size = frame_bytes(frame)
    baseline = reset_peak_rss()
    if op == "write":
        started = time.perf_counter()
        if path == "platform":
            manager = DataProductIOManager(storage=storage, environment=deployment.environment)
            manager.handle_output(dg.build_output_context(asset_key=ASSET), frame)
            seconds = time.perf_counter() - started
            parquet = storage.stat(f"{deployment.environment}/bench/frame.parquet").size
        else:
            with tempfile.TemporaryFile() as spool:
                pq.write_table(pa.Table.from_pandas(frame), spool)
                parquet = spool.tell()
                spool.seek(0)
                raw_upload(deployment.target, bucket, spool)
            seconds = time.perf_counter() - started
    else:
        started = time.perf_counter()
        if path == "platform":
            manager = DataProductIOManager(storage=storage, environment=deployment.environment)
            frame = manager.load_input(dg.build_input_context(asset_key=ASSET))
            seconds = time.perf_counter() - started
            parquet = storage.stat(f"{deployment.environment}/bench/frame.parquet").size
        else:
            with tempfile.TemporaryFile() as spool:
                raw_download(deployment.target, bucket, spool)
                parquet = spool.tell()
                spool.seek(0)
                frame = pq.read_table(spool).to_pandas()
            seconds = time.perf_counter() - started
        size = frame_bytes(frame)
    return {
        "seconds": seconds,
        "parquet": parquet,
        "frame": size,
        "peak_rss": peak_rss(),
        "baseline_rss": baseline,
    }


def warm_up() -> None:
    """Pay Dagster's and pyarrow's one-time lazy imports before the clock starts, for both paths."""
    frame = pd.DataFrame({"x": [1.0]})
    context = dg.build_output_context(asset_key=ASSET)
    context.add_output_metadata({"dagster/row_count": len(frame)})
    with tempfile.TemporaryFile() as spool:
        pq.write_table(pa.Table.from_pandas(frame), spool)
        spool.seek(0)
        pq.read_table(spool).to_pandas()


def raw_upload(target: str, bucket: str, stream: Any) -> None:
    if target == "aws":
        import boto3

        boto3.client("s3").upload_fileobj(stream, bucket, RAW_KEY)
    elif target == "azure":
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(
            os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        )
        service.get_blob_client(bucket, RAW_KEY).upload_blob(stream, overwrite=True)
    else:
        gcs_bucket(bucket).blob(RAW_KEY).upload_from_file(stream)


def raw_download(target: str, bucket: str, sink: Any) -> None:
    if target == "aws":
        import boto3

        boto3.client("s3").download_fileobj(bucket, RAW_KEY, sink)
    elif target == "azure":
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(
            os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        )
        service.get_blob_client(bucket, RAW_KEY).download_blob().readinto(sink)
    else:
        gcs_bucket(bucket).blob(RAW_KEY).download_to_file(sink)


def gcs_bucket(bucket: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="dataops-bench", credentials=AnonymousCredentials()).bucket(
        bucket
    )


# The parent: servers, buckets, and one process per case


@contextmanager
def target_env(backend: str, stack: ExitStack, workdir: Path) -> Iterator[dict[str, str]]:
    import servers

    if backend == "s3":
        server = stack.enter_context(servers.start_moto(workdir))
        env = {
            "DATAOPS_TARGET": "aws",
            "DATAOPS_BUCKET": servers.unique_bucket(),
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_ACCESS_KEY_ID": servers.TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": servers.TEST_SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }
        with servers.s3_bucket(env):
            yield env
    elif backend == "azure_blob":
        server = stack.enter_context(servers.start_azurite(workdir))
        env = {
            "DATAOPS_TARGET": "azure",
            "DATAOPS_BUCKET": servers.unique_bucket(),
            "AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(server),
        }
        with servers.azure_container(env):
            yield env
    else:
        server = stack.enter_context(servers.start_fake_gcs(workdir))
        env = {
            "DATAOPS_TARGET": "gcp",
            "DATAOPS_BUCKET": servers.unique_bucket(),
            "STORAGE_EMULATOR_HOST": server.url,
        }
        with servers.gcs_bucket(env):
            yield env


def child(env: dict[str, str], op: str, path: str, mb: int) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    result = subprocess.run(
        [sys.executable, __file__, "--case", op, path, "--mb", str(mb)],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"case {op}/{path} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="in-memory size of the frame, MiB")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest counts")
    parser.add_argument("--case", nargs=2, metavar=("OP", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(*args.case, args.mb)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="dataops-bench-") as workdir:
        for backend in args.backends:
            with ExitStack() as stack, target_env(backend, stack, Path(workdir)) as env:
                for op in ("write", "read"):
                    runs = [
                        {path: child(env, op, path, args.mb) for path in ("platform", "raw")}
                        for _ in range(args.repeat)
                    ]
                    results = {
                        path: min((run[path] for run in runs), key=lambda r: r["seconds"])
                        for path in ("platform", "raw")
                    }
                    rows.append((backend, op, results))
                    print_row(backend, op, results, header=len(rows) == 1)


def print_row(backend: str, op: str, results: dict[str, dict[str, Any]], header: bool) -> None:
    mib = 2**20
    if header:
        print(
            f"{'backend':<11}{'op':<6}{'path':<9}{'frame MiB':>10}{'parquet MiB':>12}{'s':>7}"
            f"{'MiB/s':>8}{'ratio':>7}{'peak RSS MiB':>13}{'RSS/frame':>10}{'added/frame':>12}"
        )
    speed = {path: r["parquet"] / r["seconds"] / mib for path, r in results.items()}
    for path, r in results.items():
        ratio = f"{speed['platform'] / speed['raw']:.2f}" if path == "platform" else ""
        print(
            f"{backend:<11}{op:<6}{path:<9}{r['frame'] / mib:>10.0f}{r['parquet'] / mib:>12.0f}"
            f"{r['seconds']:>7.1f}{speed[path]:>8.0f}{ratio:>7}{r['peak_rss'] / mib:>13.0f}"
            f"{r['peak_rss'] / r['frame']:>10.2f}"
            f"{(r['peak_rss'] - r['baseline_rss']) / r['frame']:>12.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
