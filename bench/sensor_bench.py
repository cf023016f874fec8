"""Sensor benchmark (not a test): one landing-sensor tick vs a full listing of the landing prefix.

A feed of the ``bench`` environment's landing zone holds ``--objects`` existing files (default
100,000; keys follow the platform's convention, 1,000 a day) and then ``--new`` new ones (default
10). Measured in the same run, on local storage and on moto's S3 server (started as
``tests/servers.py`` does):

- platform: one evaluation of the sales orders feed's landing sensor from the cursor it
  reached over the existing files (a priming tick), returning a run request per new file;
- full listing: every object under the prefix, which is what upstream's S3 sensor helper does on
  each tick.

The existing files are minutes old, not days, so the bench uses a 2 s ``settle`` (and waits it out
before priming); otherwise the sensor's defaults hold (1,000 objects forward, 200 rescanned). The
local tree is built once and kept under ``.dataops/bench/``; the S3 bucket is filled concurrently.

    .venv/bin/python bench/sensor_bench.py                  # 100,000 objects
    .venv/bin/python bench/sensor_bench.py --objects 10000  # quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import boto3  # noqa: E402
import dagster as dg  # noqa: E402
from botocore.config import Config  # noqa: E402
from servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, start_moto  # noqa: E402

from adapters.storage.base import StorageAdapter  # noqa: E402
from adapters.storage.local import LocalStorage  # noqa: E402
from assets.sales.assets import ORDERS_FEED  # noqa: E402
from config import load_deployment  # noqa: E402
from platform_core.cursor import LandingLimits  # noqa: E402
from platform_core.landing import LandingZone, feed_prefix, landing_key  # noqa: E402
from platform_core.storage_factory import storage_for  # noqa: E402

ENVIRONMENT = "bench"
PREFIX = feed_prefix(ENVIRONMENT, "sales", "orders")
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
PER_DAY = 1000
SETTLE = timedelta(seconds=2)
CACHE = ROOT / ".dataops" / "bench"
BUCKET = "sensor-bench"
WRITERS = 32


def existing_keys(count: int) -> list[str]:
    step = timedelta(days=1) / PER_DAY
    return [landing_key(PREFIX, FIRST + n * step, f"{n:08x}") for n in range(count)]


def new_keys(count: int, after: int) -> list[str]:
    at = FIRST + timedelta(days=after // PER_DAY + 1)
    return [landing_key(PREFIX, at + timedelta(seconds=n), f"new{n:05x}") for n in range(count)]


def local_storage(count: int) -> LocalStorage:
    """A local root holding ``count`` landed files, built once and reused."""
    root = CACHE / f"local-{ENVIRONMENT}-{count}"
    done = root / "complete"
    if not done.exists():
        print(f"local: writing {count:,} files under {root} (once) ...", flush=True)
        for key in existing_keys(count):
            path = root.joinpath(*key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"order_id\n")
        done.write_text(str(count))
    for stale in (root / PREFIX).rglob("*-new*.csv"):
        stale.unlink()
    return LocalStorage(root=str(root))


@contextmanager
def s3_storage(count: int) -> Iterator[StorageAdapter]:
    """An S3 bucket on a fresh moto server holding ``count`` landed files."""
    with (
        tempfile.TemporaryDirectory(prefix="dataops-sensor-bench-") as workdir,
        start_moto(Path(workdir)) as server,
    ):
        env = {
            "DATAOPS_TARGET": "aws",
            "DATAOPS_BUCKET": BUCKET,
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }
        os.environ.update(env)
        client = boto3.client(
            "s3", endpoint_url=server.url, config=Config(max_pool_connections=WRITERS)
        )
        client.create_bucket(Bucket=BUCKET)
        storage = storage_for(load_deployment(env))

        def put(key: str) -> None:
            client.put_object(Bucket=BUCKET, Key=f"{storage.prefix}/{key}", Body=b"order_id\n")

        started = time.perf_counter()
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(put, existing_keys(count)))
        print(f"s3: wrote {count:,} objects in {time.perf_counter() - started:.0f} s", flush=True)
        yield storage


def timed(action: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(
    name: str,
    storage: StorageAdapter,
    instance: dg.DagsterInstance,
    count: int,
    new: int,
    repeat: int,
) -> dict:
    landing = LandingZone(storage=storage, environment=ENVIRONMENT)
    sensor = replace(ORDERS_FEED, limits=LandingLimits(settle=SETTLE)).sensor()

    def tick(cursor: str | None, **limits: int) -> dg.SensorResult:
        evaluated = (
            sensor
            if not limits
            else replace(ORDERS_FEED, limits=LandingLimits(settle=SETTLE, **limits)).sensor()
        )
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"landing": landing}
        ) as context:
            return evaluated(context)

    def register(result: dg.SensorResult) -> dg.SensorResult:
        """Apply the partitions a tick asked for, as the daemon does (late-file checks ask them)."""
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        return result

    time.sleep(SETTLE.total_seconds() * 1.5)
    primed = register(tick(None, max_objects=count + 1))
    assert len(primed.run_requests) == count, len(primed.run_requests)
    keys = new_keys(new, count)
    for key in keys:
        storage.put(key, b"order_id\n")
    tick(primed.cursor)
    tick_seconds, result = timed(lambda: tick(primed.cursor), repeat)
    requested = sorted(request.partition_key for request in result.run_requests)
    assert requested == keys, requested[:5]
    list_seconds, listed = timed(lambda: sum(1 for _ in landing.list("sales", "orders")), repeat)
    assert listed == count + new, listed
    return {
        "storage": name,
        "objects": count,
        "new": new,
        "tick_ms": tick_seconds * 1000,
        "list_ms": list_seconds * 1000,
        "cursor_bytes": len(primed.cursor),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="median of this many runs")
    parser.add_argument("--only", choices=("local", "s3"), help="one storage only")
    args = parser.parse_args()
    rows = []
    with dg.instance_for_test() as instance:
        if args.only in (None, "local"):
            storage = local_storage(args.objects)
            rows.append(measure("local", storage, instance, args.objects, args.new, args.repeat))
        if args.only in (None, "s3"):
            with s3_storage(args.objects) as storage:
                rows.append(
                    measure("s3 (moto)", storage, instance, args.objects, args.new, args.repeat)
                )
    print()
    print(
        f"{'storage':<10} {'objects':>9} {'new':>4} {'tick ms':>9} {'full list ms':>13} "
        f"{'tick/list':>10} {'cursor B':>9}"
    )
    for row in rows:
        ratio = row["tick_ms"] / row["list_ms"]
        print(
            f"{row['storage']:<10} {row['objects']:>9,} {row['new']:>4} {row['tick_ms']:>9.1f} "
            f"{row['list_ms']:>13.1f} {f'1/{1 / ratio:.0f}':>10} {row['cursor_bytes']:>9,}"
        )


if __name__ == "__main__":
    main()
