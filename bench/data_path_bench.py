"""Data path benchmark, not a test: the IO manager against raw Parquet and raw clients, one run.

Sections (each in its own process, so peak RSS is its own):

- ``local``: a frame like a data team's (int64, float64, a categorical, a tz-aware timestamp;
  25 bytes a row), ``handle_output`` alone vs ``pq.write_table`` to a file (with its default
  encodings, and with the encodings the platform chose), ``load_input`` alone vs
  ``pq.read_table(...).to_pandas()`` of the same stored file, and the peak RSS of the platform
  write over the frame;
- ``governed``: the same local write and read with governance on (access guard, personal-data
  scan, audit trail) against the platform without it and against raw pyarrow;
- ``stores``: per local object-store server (moto S3, Azurite, fake-gcs-server), the platform
  write and read vs the raw SDK (encode to a temporary file and upload; download and decode)
  and vs ``pyarrow.fs`` (``S3FileSystem``, ``AzureFileSystem``, ``GcsFileSystem``) for the same
  frame; raw reads decode the object the platform wrote (the same bytes);
- ``reader``: a product of ``--reader-gb`` GiB of Parquet written from a ``RecordBatchReader``
  and read back as one, with the peak RSS added by each.

Governance is off except in ``governed``: the IO path alone. Every case runs ``--repeat``
times, the platform and raw paths alternating, and the fastest run counts (2 shared cores:
noisy); the median of the paired ratios is printed beside it.

    .venv/bin/python bench/data_path_bench.py --frame-mb 250 1000 --store-mb 100 --reader-gb 4
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
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

ASSET = dg.AssetKey(["bench", "product"])
MIB = 2**20
BACKENDS = ("s3", "azure", "gcs")


def make_frame(mb: int) -> pd.DataFrame:
    rows = mb * MIB // 25
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "amount": rng.standard_normal(rows),
            "country": pd.Categorical.from_codes(
                rng.integers(0, 30, rows), [f"C{n}" for n in range(30)]
            ),
            "at": pd.date_range("2026-01-01", periods=rows, freq="s", tz="Europe/Paris"),
        }
    )


def frame_bytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(deep=True).sum())


def best(cases: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Fastest of ``repeat`` runs of each case, the cases alternating within each round, and
    for each case after the first the median of its per-round ratio to the first
    (``<case>/<first>``), which shared-machine noise moves less than the minimum.

    A case that returns a callable was a setup (building the IO manager and its Dagster
    context, outside the clock): the callable is what is timed.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, case in cases.items():
            gc.collect()
            started = time.perf_counter()
            timed = case()
            if callable(timed):
                started = time.perf_counter()
                timed()
            times[name].append(time.perf_counter() - started)
    first, *others = cases
    medians = {
        f"{name}/{first}": statistics.median(
            other / mine for mine, other in zip(times[first], times[name], strict=True)
        )
        for name in others
    }
    return {name: min(values) for name, values in times.items()} | medians


def manager(storage: Any) -> Any:
    from platform_core.io_manager import DataProductIOManager

    return DataProductIOManager(storage=storage, environment="bench")


def writing(storage: Any, product: Any) -> Callable[[], None]:
    """``handle_output`` alone, its manager and context built beforehand."""
    io_manager, context = manager(storage), dg.build_output_context(asset_key=ASSET)
    return lambda: io_manager.handle_output(context, product)


def reading(storage: Any, wanted: type = pd.DataFrame) -> Callable[[], Any]:
    """``load_input`` alone, its manager and context built beforehand."""
    io_manager = manager(storage)
    context = dg.build_input_context(
        asset_key=ASSET, dagster_type=dg.PythonObjectDagsterType(wanted)
    )
    return lambda: io_manager.load_input(context)


def write(storage: Any, product: Any) -> None:
    writing(storage, product)()


def read(storage: Any, wanted: type = pd.DataFrame) -> Any:
    return reading(storage, wanted)()


def section_local(mb: int, repeat: int, workdir: Path) -> dict[str, Any]:
    from adapters.storage.local import LocalStorage
    from platform_core.dictionary_encoding import dictionary_columns

    storage = LocalStorage(root=str(workdir / "local"))
    raw_path = workdir / "raw.parquet"
    write(storage, pd.DataFrame({"x": [1.0]}))
    base = reset_peak_rss()
    frame = make_frame(mb)
    size = frame_bytes(frame)
    before_write = reset_peak_rss()
    write(storage, frame)
    write_peak = peak_rss()
    stored = Path(storage.root, "bench", *ASSET.path[:-1], f"{ASSET.path[-1]}.parquet")

    def raw_same_encoding() -> None:
        table = pa.Table.from_pandas(frame)
        pq.write_table(table, raw_path, use_dictionary=dictionary_columns(table))

    times = best(
        {
            "platform_write": lambda: writing(storage, frame),
            "raw_write": lambda: pq.write_table(pa.Table.from_pandas(frame), raw_path),
            "raw_write_same_encoding": raw_same_encoding,
        },
        repeat,
    )
    times |= best(
        {
            "platform_read": lambda: reading(storage),
            "raw_read": lambda: pq.read_table(stored).to_pandas(),
        },
        repeat,
    )
    pq.write_table(pa.Table.from_pandas(frame), raw_path)
    return {
        "frame_mb": size / MIB,
        "parquet_mb": stored.stat().st_size / MIB,
        "default_parquet_mb": raw_path.stat().st_size / MIB,
        **times,
        "write_peak_over_frame": (write_peak - base) / size,
        "write_added_mb": (write_peak - before_write) / MIB,
    }


def section_governed(mb: int, repeat: int, workdir: Path) -> dict[str, Any]:
    """The local write and read with the access guard, the personal-data scan and the audit
    trail on (what a team's location runs with), against the same path with them off."""
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    from adapters.storage.local import LocalStorage
    from platform_core.audit.trail import AuditTrail
    from platform_core.dagster_home import prepare_dagster_home
    from platform_core.governance.compliance import ComplianceGuard
    from platform_core.governance.guard import AccessGuard
    from platform_core.io_manager import DataProductIOManager

    prepare_dagster_home()
    owned = dg.AssetKey(["analytics", "bench_frame"])
    storage = LocalStorage(root=str(workdir / "local"))
    frame = make_frame(mb)
    with dg.DagsterInstance.get() as instance:
        trail = AuditTrail(storage=storage, environment="bench", principal="analytics")
        trail.bind_writer("bench", instance)
        guard = AccessGuard(team="analytics", environment="bench", audit=trail)
        guard.loaded()
        managers = {
            "governed": DataProductIOManager(
                storage=storage,
                environment="bench",
                guard=guard,
                compliance=ComplianceGuard(),
                audit=trail,
            ),
            "plain": DataProductIOManager(storage=storage, environment="bench"),
        }

        def writing_with(name: str) -> Callable[[], None]:
            context = dg.build_output_context(asset_key=owned)
            return lambda: managers[name].handle_output(context, frame)

        def reading_with(name: str) -> Callable[[], Any]:
            context = dg.build_input_context(asset_key=owned)
            return lambda: managers[name].load_input(context)

        stored = Path(storage.root, "bench", *owned.path[:-1], f"{owned.path[-1]}.parquet")
        writing_with("plain")()
        times = best(
            {
                "governed_write": lambda: writing_with("governed"),
                "plain_write": lambda: writing_with("plain"),
                "raw_write": lambda: pq.write_table(
                    pa.Table.from_pandas(frame), workdir / "raw.parquet"
                ),
            },
            repeat,
        )
        times |= best(
            {
                "governed_read": lambda: reading_with("governed"),
                "plain_read": lambda: reading_with("plain"),
                "raw_read": lambda: pq.read_table(stored).to_pandas(),
            },
            repeat,
        )
        trail.flush()
    return {"frame_mb": frame_bytes(frame) / MIB, **times}


def store_clients(backend: str, env: dict[str, str], bucket: str) -> tuple[Any, Any, Any]:
    """The platform adapter, a raw SDK (upload, download) pair, and a ``pyarrow.fs`` filesystem."""
    from urllib.parse import urlsplit

    import pyarrow.fs as pafs

    from config import load_deployment
    from platform_core.storage_factory import storage_for

    storage = storage_for(load_deployment(env))
    if backend == "s3":
        import boto3

        client = boto3.client("s3")
        sdk = (
            lambda f, key: client.upload_fileobj(f, bucket, key),
            lambda key, f: client.download_fileobj(bucket, key, f),
        )
        url = urlsplit(env["AWS_ENDPOINT_URL_S3"])
        fs = pafs.S3FileSystem(
            endpoint_override=url.netloc,
            scheme="http",
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env["AWS_REGION"],
        )
    elif backend == "azure":
        import servers
        from azure.storage.blob import BlobServiceClient

        container = BlobServiceClient.from_connection_string(
            env["AZURE_STORAGE_CONNECTION_STRING"]
        ).get_container_client(bucket)
        sdk = (
            lambda f, key: container.upload_blob(key, f, overwrite=True),
            lambda key, f: container.download_blob(key).readinto(f),
        )
        endpoint = urlsplit(env["AZURE_BLOB_URL"])
        fs = pafs.AzureFileSystem(
            account_name=servers.AZURITE_ACCOUNT,
            account_key=servers.AZURITE_KEY,
            blob_storage_authority=endpoint.netloc,
            blob_storage_scheme="http",
            dfs_storage_authority=endpoint.netloc,
            dfs_storage_scheme="http",
        )
    else:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage as gcs

        blobs = gcs.Client(project="bench", credentials=AnonymousCredentials()).bucket(bucket)
        sdk = (
            lambda f, key: blobs.blob(key).upload_from_file(f),
            lambda key, f: blobs.blob(key).download_to_file(f),
        )
        url = urlsplit(env["STORAGE_EMULATOR_HOST"])
        fs = pafs.GcsFileSystem(anonymous=True, endpoint_override=url.netloc, scheme="http")
    return storage, sdk, fs


def section_store(backend: str, mb: int, repeat: int, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        env = stack.enter_context(target(backend, stack, workdir))
        for name, value in env.items():
            os.environ[name] = value
        bucket = env["DATAOPS_BUCKET"]
        storage, (upload, download), fs = store_clients(backend, env, bucket)
        frame = make_frame(mb)
        write(storage, frame.head(10))
        stored = "/".join(
            part for part in (storage.prefix, "bench", *ASSET.path[:-1], ASSET.path[-1]) if part
        )
        stored += ".parquet"

        def sdk_write() -> None:
            with tempfile.TemporaryFile(dir=workdir) as spool:
                pq.write_table(pa.Table.from_pandas(frame), spool)
                spool.seek(0)
                upload(spool, "raw/sdk.parquet")

        def sdk_read() -> pd.DataFrame:
            with tempfile.TemporaryFile(dir=workdir) as spool:
                download(stored, spool)
                spool.seek(0)
                return pq.read_table(spool).to_pandas()

        times = best(
            {
                "platform_write": lambda: writing(storage, frame),
                "sdk_write": sdk_write,
                "pyarrow_fs_write": lambda: pq.write_table(
                    pa.Table.from_pandas(frame), f"{bucket}/raw/fs.parquet", filesystem=fs
                ),
            },
            repeat,
        )
        times |= best(
            {
                "platform_read": lambda: reading(storage),
                "sdk_read": sdk_read,
                "pyarrow_fs_read": lambda: pq.read_table(
                    f"{bucket}/{stored}", filesystem=fs
                ).to_pandas(),
            },
            repeat,
        )
        return {"frame_mb": frame_bytes(frame) / MIB, **times}


def target(backend: str, stack: ExitStack, workdir: Path) -> Any:
    """The server of ``backend`` with a fresh bucket, as the variables a user sets."""
    from contextlib import contextmanager

    import servers

    @contextmanager
    def running() -> Iterator[dict[str, str]]:
        bucket = servers.unique_bucket()
        if backend == "s3":
            server = stack.enter_context(servers.start_moto(workdir))
            env = {
                "DATAOPS_TARGET": "aws",
                "DATAOPS_BUCKET": bucket,
                "AWS_ENDPOINT_URL_S3": server.url,
                "AWS_ACCESS_KEY_ID": servers.TEST_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": servers.TEST_SECRET_KEY,
                "AWS_REGION": "us-east-1",
            }
            with servers.s3_bucket(env):
                yield env
        elif backend == "azure":
            server = stack.enter_context(servers.start_azurite(workdir))
            env = {
                "DATAOPS_TARGET": "azure",
                "DATAOPS_BUCKET": bucket,
                "AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(server),
                "AZURE_BLOB_URL": server.url,
            }
            with servers.azure_container(env):
                yield env
        else:
            server = stack.enter_context(servers.start_fake_gcs(workdir))
            env = {
                "DATAOPS_TARGET": "gcp",
                "DATAOPS_BUCKET": bucket,
                "STORAGE_EMULATOR_HOST": server.url,
            }
            with servers.gcs_bucket(env):
                yield env

    return running()


def section_reader(gb: float, workdir: Path) -> dict[str, Any]:
    from adapters.storage.local import LocalStorage

    storage = LocalStorage(root=str(workdir / "reader"))
    rows_per_batch = 1_000_000
    batch_bytes = rows_per_batch * 24
    count = max(1, int(gb * 2**30 / batch_bytes))
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("y", pa.float64())])
    rng = np.random.default_rng(7)

    def batches() -> Iterator[pa.RecordBatch]:
        for number in range(count):
            start = number * rows_per_batch
            yield pa.record_batch(
                [
                    pa.array(np.arange(start, start + rows_per_batch, dtype=np.int64)),
                    pa.array(rng.standard_normal(rows_per_batch)),
                    pa.array(rng.standard_normal(rows_per_batch)),
                ],
                schema,
            )

    write(storage, pa.table({"id": [1]}))
    base = reset_peak_rss()
    started = time.perf_counter()
    write(storage, pa.RecordBatchReader.from_batches(schema, batches()))
    write_seconds = time.perf_counter() - started
    write_added = peak_rss() - base
    base = reset_peak_rss()
    started = time.perf_counter()
    rows = sum(batch.num_rows for batch in read(storage, pa.RecordBatchReader))
    read_seconds = time.perf_counter() - started
    read_added = peak_rss() - base
    parquet = storage.stat("bench/bench/product.parquet").size
    assert rows == count * rows_per_batch
    return {
        "arrow_gb": count * batch_bytes / 2**30,
        "parquet_gb": parquet / 2**30,
        "write_s": write_seconds,
        "read_s": read_seconds,
        "write_added_mb": write_added / MIB,
        "read_added_mb": read_added / MIB,
        "process_peak_mb": peak_rss() / MIB,
    }


def child(arguments: list[str]) -> dict[str, Any]:
    cleared = ("DATAOPS_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    result = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{arguments} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-mb", type=int, nargs="*", default=[250, 1000])
    parser.add_argument("--store-mb", type=int, default=100)
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--reader-gb", type=float, default=4.0)
    parser.add_argument("--governed-mb", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--section", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.section:
        with tempfile.TemporaryDirectory(prefix="dataops-bench-") as workdir:
            kind, value = args.section[0], args.section[1]
            if kind == "local":
                result = section_local(int(value), args.repeat, Path(workdir))
            elif kind == "governed":
                result = section_governed(int(value), args.repeat, Path(workdir))
            elif kind == "reader":
                result = section_reader(float(value), Path(workdir))
            else:
                result = section_store(value, args.store_mb, args.repeat, Path(workdir))
        print(json.dumps(result))
        return
    common = ["--repeat", str(args.repeat), "--store-mb", str(args.store_mb)]
    for mb in args.frame_mb:
        r = child(["--section", "local", str(mb), *common])
        print(
            f"local {r['frame_mb']:.0f} MiB frame ({r['parquet_mb']:.0f} MiB Parquet; "
            f"{r['default_parquet_mb']:.0f} MiB with pq.write_table's default encodings): "
            f"write {r['platform_write']:.2f}s vs pq.write_table {r['raw_write']:.2f}s = "
            f"{r['raw_write'] / r['platform_write']:.2f}x (median paired "
            f"{r['raw_write/platform_write']:.2f}x), vs pq.write_table with the platform's "
            f"encodings {r['raw_write_same_encoding']:.2f}s = "
            f"{r['raw_write_same_encoding'] / r['platform_write']:.2f}x; "
            f"read {r['platform_read']:.2f}s vs pq.read_table {r['raw_read']:.2f}s = "
            f"{r['raw_read'] / r['platform_read']:.2f}x (median paired "
            f"{r['raw_read/platform_read']:.2f}x); write peak RSS "
            f"{r['write_peak_over_frame']:.2f}x frame (+{r['write_added_mb']:.0f} MiB over it)",
            flush=True,
        )
    if args.governed_mb:
        r = child(["--section", "governed", str(args.governed_mb), *common])
        for op in ("write", "read"):
            governed, plain, raw = r[f"governed_{op}"], r[f"plain_{op}"], r[f"raw_{op}"]
            print(
                f"governed {op} {r['frame_mb']:.0f} MiB frame: {governed:.2f}s with governance, "
                f"{plain:.2f}s without = {governed / plain:.2f}x the time (median paired "
                f"{1 / r[f'plain_{op}/governed_{op}']:.2f}x); vs raw pyarrow {raw:.2f}s = "
                f"{raw / governed:.2f}x",
                flush=True,
            )
    for backend in args.backends:
        r = child(["--section", "store", backend, *common])
        for op in ("write", "read"):
            sdk, fs, platform = r[f"sdk_{op}"], r[f"pyarrow_fs_{op}"], r[f"platform_{op}"]
            print(
                f"{backend} {op} {r['frame_mb']:.0f} MiB frame: platform {platform:.2f}s, "
                f"SDK {sdk:.2f}s, pyarrow.fs {fs:.2f}s; platform vs faster = "
                f"{min(sdk, fs) / platform:.2f}x, vs SDK {sdk / platform:.2f}x (median paired "
                f"{r[f'sdk_{op}/platform_{op}']:.2f}x), vs pyarrow.fs {fs / platform:.2f}x "
                f"(median paired {r[f'pyarrow_fs_{op}/platform_{op}']:.2f}x)",
                flush=True,
            )
    if args.reader_gb:
        r = child(["--section", "reader", str(args.reader_gb), *common])
        print(
            f"RecordBatchReader {r['arrow_gb']:.1f} GiB Arrow ({r['parquet_gb']:.1f} GiB "
            f"Parquet): write {r['write_s']:.1f}s adding {r['write_added_mb']:.0f} MiB RSS, "
            f"read {r['read_s']:.1f}s adding {r['read_added_mb']:.0f} MiB RSS; process peak "
            f"{r['process_peak_mb']:.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
