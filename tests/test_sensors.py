"""Landing sensors on every target, against the real local servers: exactly once, O(new) ticks."""

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import dagster as dg
import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq
import pytest
from conftest import OWNER_SECRETS

from adapters.storage.base import ObjectInfo, StorageAdapter, StorageError
from assets.sales.assets import ORDERS_FEED
from assets.sales.sample_data import orders_file
from config import load_deployment
from platform_core.cursor import LandingLimits
from platform_core.landing import LandingZone
from platform_core.materialize import workspace_locations
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=2)


class Intercepted(StorageAdapter):
    """The real adapter, with a hook run on every object ``list`` yields (fault injection)."""

    inner: StorageAdapter

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        return self.inner.put(key, data)

    def create(self, key: str, data: bytes) -> ObjectInfo:
        return self.inner.create(key, data)

    def download(self, key: str, sink: BinaryIO) -> None:
        self.inner.download(key, sink)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def check(self) -> None:
        self.inner.check()

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        for info in self.inner.list(prefix, start_after):
            yield HOOKS[-1](info) if HOOKS else info


HOOKS: list[Callable[[ObjectInfo], ObjectInfo]] = []


@pytest.fixture
def storage(target_env: dict[str, str]) -> StorageAdapter:
    return storage_for(load_deployment(target_env))


@pytest.fixture
def zone(storage: StorageAdapter, target_env: dict[str, str]) -> LandingZone:
    return LandingZone(storage=storage, environment=load_deployment(target_env).environment)


def intercepted(zone: LandingZone) -> LandingZone:
    """The same landing zone, listed through ``Intercepted``."""
    return LandingZone(storage=Intercepted(inner=zone.storage), environment=zone.environment)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def hook() -> Iterator[list[Callable[[ObjectInfo], ObjectInfo]]]:
    yield HOOKS
    HOOKS.clear()


def land(zone: LandingZone, minutes: float, rows: int = 3) -> str:
    at = START + timedelta(minutes=minutes)
    return zone.land("sales", "orders", orders_file(at).head(rows), at).key


def sensor(**limits: object) -> dg.SensorDefinition:
    return replace(ORDERS_FEED, limits=LandingLimits(**{"settle": SETTLE, **limits})).sensor()


def tick(
    definition: dg.SensorDefinition,
    zone: LandingZone,
    instance: dg.DagsterInstance,
    cursor: str | None,
) -> dg.SensorResult:
    """One evaluation, applying its partition requests the way the sensor daemon does."""
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": zone}
    ) as context:
        result = definition(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def requested(result: dg.SensorResult) -> list[str]:
    return [request.partition_key for request in result.run_requests]


def test_each_new_file_is_requested_once_as_a_dynamic_partition(
    zone: LandingZone, instance: dg.DagsterInstance
) -> None:
    landing = sensor()
    first = [land(zone, minute) for minute in (0, 1, 2)]
    result = tick(landing, zone, instance, None)
    assert requested(result) == first
    assert len({r.run_key for r in result.run_requests}) == 3
    assert all(r.run_key.startswith(f"{r.partition_key}@") for r in result.run_requests)
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [first]
    assert instance.get_dynamic_partitions(ORDERS_FEED.partitions.name) == first

    result = tick(landing, zone, instance, result.cursor)
    assert requested(result) == []
    second = [land(zone, minute) for minute in (3, 4)]
    result = tick(landing, zone, instance, result.cursor)
    assert requested(result) == second
    assert instance.get_dynamic_partitions(ORDERS_FEED.partitions.name) == first + second


def test_a_replayed_tick_requests_nothing_new(
    zone: LandingZone, instance: dg.DagsterInstance
) -> None:
    landing = sensor()
    before = tick(landing, zone, instance, None)
    for minute in (0, 1):
        land(zone, minute)
    result = tick(landing, zone, instance, before.cursor)
    replay = tick(landing, zone, instance, before.cursor)
    assert [r.run_key for r in replay.run_requests] == [r.run_key for r in result.run_requests]
    assert requested(tick(landing, zone, instance, result.cursor)) == []


def test_an_overwritten_file_is_requested_again_an_unchanged_one_is_not(
    zone: LandingZone, instance: dg.DagsterInstance
) -> None:
    landing = sensor()
    kept, changed = land(zone, 0), land(zone, 1)
    result = tick(landing, zone, instance, None)
    zone.storage.put(changed, b"order_id\nO-1\n")
    again = tick(landing, zone, instance, result.cursor)
    assert requested(again) == [changed]
    assert again.run_requests[0].run_key == f"{changed}@{zone.storage.stat(changed).etag}"
    assert again.run_requests[0].run_key != result.run_requests[1].run_key
    assert requested(tick(landing, zone, instance, again.cursor)) == []
    assert kept in requested(result)


def test_an_overwrite_after_the_key_settled_is_found_by_the_rescan(
    zone: LandingZone, instance: dg.DagsterInstance
) -> None:
    landing = sensor()
    kept, changed = land(zone, 0), land(zone, 1)
    cursor = tick(landing, zone, instance, None).cursor
    deadline = datetime.now(UTC) + SETTLE * 3
    while f'"after":"{changed}"' not in cursor:
        assert datetime.now(UTC) < deadline, "the window never settled past both files"
        time.sleep(0.2)
        result = tick(landing, zone, instance, cursor)
        assert requested(result) == []
        cursor = result.cursor
    zone.storage.put(changed, b"order_id\nO-2\n")
    result = tick(landing, zone, instance, cursor)
    assert requested(result) == [changed]
    assert requested(tick(landing, zone, instance, result.cursor)) == []
    assert kept != changed


def test_the_cursor_survives_a_tick_that_fails_half_way(
    zone: LandingZone, instance: dg.DagsterInstance, hook: list
) -> None:
    landing = sensor()
    faulty = intercepted(zone)
    first = tick(landing, faulty, instance, None)
    files = [land(zone, minute) for minute in range(5)]
    seen: list[str] = []

    def fail_on_third(info: ObjectInfo) -> ObjectInfo:
        seen.append(info.key)
        if len(seen) == 3:
            raise StorageError("connection reset by peer")
        return info

    hook.append(fail_on_third)
    with pytest.raises(StorageError, match="connection reset"):
        tick(landing, faulty, instance, first.cursor)
    hook.clear()
    result = tick(landing, faulty, instance, first.cursor)
    assert requested(result) == files
    assert requested(tick(landing, faulty, instance, result.cursor)) == []


def test_files_landing_during_a_tick_are_picked_up_next_tick(
    zone: LandingZone, instance: dg.DagsterInstance, hook: list
) -> None:
    landing = sensor(rescan_objects=0)
    faulty = intercepted(zone)
    existing = [land(zone, minute) for minute in (10, 20)]
    during: list[str] = []

    def land_meanwhile(info: ObjectInfo) -> ObjectInfo:
        if not during:
            during.extend([land(zone, 30), land(zone, 5)])
        return info

    hook.append(land_meanwhile)
    first = tick(landing, faulty, instance, None)
    hook.clear()
    second = tick(landing, faulty, instance, first.cursor)
    all_requests = requested(first) + requested(second)
    assert sorted(all_requests) == sorted(existing + during)
    assert set(existing) <= set(requested(first))
    assert requested(tick(landing, faulty, instance, second.cursor)) == []


def test_files_sharing_a_modified_time_are_all_ingested(
    zone: LandingZone, instance: dg.DagsterInstance, hook: list
) -> None:
    landing = sensor()
    faulty = intercepted(zone)
    same = datetime.now(UTC).replace(microsecond=0)
    hook.append(lambda info: ObjectInfo(info.key, info.size, info.etag, same))
    twins = [land(zone, 0), land(zone, 0)]
    assert twins[0] != twins[1]
    result = tick(landing, faulty, instance, None)
    assert sorted(requested(result)) == sorted(twins)
    late = land(zone, 0)
    result = tick(landing, faulty, instance, result.cursor)
    assert requested(result) == [late]


def test_a_tick_never_reads_more_than_its_page_budget(
    zone: LandingZone, instance: dg.DagsterInstance, hook: list
) -> None:
    landing = sensor(max_objects=4, max_window=2, rescan_objects=2)
    faulty = intercepted(zone)
    files = [land(zone, minute) for minute in range(11)]
    reads: list[str] = []
    hook.append(lambda info: reads.append(info.key) or info)
    cursor, ticks, all_requests = None, 0, []
    while True:
        reads.clear()
        result = tick(landing, faulty, instance, cursor)
        assert len(reads) <= 4 + 2
        ticks += 1
        cursor = result.cursor
        if not result.run_requests:
            break
        all_requests += requested(result)
        assert ticks < 20
    assert sorted(all_requests) == files
    assert ticks > 3
    assert len(cursor) < 4000


def test_requested_runs_materialise_and_orders_read_them_downstream(
    use_target: dict[str, str], instance: dg.DagsterInstance
) -> None:
    sales = next(loc for loc in workspace_locations() if loc.name == "sales").load()
    zone: LandingZone = sales.resources["landing"]
    [landing] = [s for s in sales.sensors if s.name == "sales_orders_landing"]
    times = [START, START + timedelta(days=1)]
    keys = [zone.land("sales", "orders", orders_file(at), at).key for at in times]
    result = tick(landing, zone, instance, None)
    assert requested(result) == keys
    assert instance.get_dynamic_partitions(ORDERS_FEED.partitions.name) == keys

    job = sales.resolve_implicit_global_asset_job_def()
    for request in result.run_requests:
        run = job.execute_in_process(
            instance=instance,
            asset_selection=[ORDERS_FEED.product_key],
            partition_key=request.partition_key,
            tags=request.tags,
        )
        assert run.success
    assert job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(["sales", "orders"])]
    ).success

    environment = load_deployment(use_target).environment
    orders = pq.read_table(io.BytesIO(zone.storage.get(f"{environment}/sales/orders.parquet")))
    expected = pd.concat([orders_file(at) for at in times], ignore_index=True)
    orders = orders.to_pandas()
    assert "email" not in orders.columns
    pdt.assert_series_equal(orders["order_id"], expected["order_id"])
    assert orders["channel"].dtype == expected["channel"].dtype
    assert str(orders["ordered_at"].dtype) == "datetime64[us, UTC]"
    pdt.assert_series_equal(orders["ordered_at"], expected["ordered_at"])


def test_dataops_land_drops_a_file_the_sensor_ingests(
    target_env: dict[str, str],
    zone: LandingZone,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATAOPS_", "AWS_"))},
        "DAGSTER_HOME": str(tmp_path),
        **OWNER_SECRETS,
        **target_env,
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dataops"), "land"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sales: landed " in result.stdout
    requests = tick(sensor(), zone, instance, None).run_requests
    assert len(requests) == 1
    prefix = zone.prefix("sales", "orders")
    assert prefix == f"{zone.environment}/landing/sales/orders/"
    assert requests[0].partition_key.startswith(f"{prefix}{datetime.now(UTC):%Y/%m/%d}/")
    assert zone.storage.uri(requests[0].partition_key) in result.stdout


def test_environments_sharing_a_bucket_have_separate_landing_zones(
    storage: StorageAdapter, instance: dg.DagsterInstance
) -> None:
    dev, test = (LandingZone(storage=storage, environment=env) for env in ("dev", "test"))
    landed = land(dev, 0)
    assert landed.startswith("dev/landing/sales/orders/2026/11/01/080000000000-")
    assert requested(tick(sensor(), test, instance, None)) == []
    assert requested(tick(sensor(), dev, instance, None)) == [landed]
    expected = orders_file(START).head(3)
    pdt.assert_frame_equal(dev.read_frame(landed, ORDERS_FEED), expected)
    with pytest.raises(
        ValueError, match="not a file of the landing feed 'test/landing/sales/orders/'"
    ):
        test.read_frame(landed, ORDERS_FEED)
