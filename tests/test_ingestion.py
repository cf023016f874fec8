"""Bad input never corrupts data or blocks the pipeline: contract, quarantine, partial loads.

Each test reproduces a defect found by trying the platform adversarially. The ones whose outcome
depends on storage run on every target, against the real local servers.
"""

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames

from adapters.storage.base import StorageError
from adapters.storage.local import LocalStorage
from assets.sales import assets as sales
from assets.sales.sample_data import orders_file
from config import load_deployment
from platform_core.contract import Column, ContractViolation, read_contracted_csv
from platform_core.definitions import Team
from platform_core.feeds import land_samples, register_landed_files
from platform_core.io_manager import object_key
from platform_core.landing import LandingZone
from platform_core.storage_factory import storage_for

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
SALES = [sales.raw_orders, sales.orders, sales.customers]


def good(minutes: int = 0) -> pd.DataFrame:
    return orders_file(AT + timedelta(minutes=minutes)).head(12)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


BAD_FILES = {
    "channel outside its categories": (
        lambda: csv_bytes(good().assign(channel=["Web", "app", *["web"] * 10])),
        "values are not one of the declared categories",
        "channel",
    ),
    "wrong columns": (
        lambda: csv_bytes(good().rename(columns={"amount": "amt"})),
        "required columns are missing",
        "amount",
    ),
    "bad number": (
        lambda: csv_bytes(good().astype({"amount": str}).assign(amount=lambda f: "12,5")),
        "values are not numbers",
        "amount",
    ),
    "zero bytes": (lambda: b"", "the file is empty", ""),
    "not utf-8": (lambda: b"order_id,email\n1,caf\xe9\n", "not UTF-8 text", ""),
}


@pytest.fixture
def deployment(target_env: dict[str, str]):
    return load_deployment(target_env)


@pytest.fixture
def zone(deployment) -> LandingZone:
    return LandingZone(storage=storage_for(deployment), environment=deployment.environment)


def land_bytes(zone: LandingZone, data: bytes, minutes: int, name: str | None = None) -> str:
    at = AT + timedelta(minutes=minutes)
    key = name or f"{zone.prefix('sales', 'orders')}{at:%Y/%m/%d/%H%M%S%f}-x.csv"
    zone.storage.put(key, data)
    return key


def run_sales(
    deployment, instance: dg.DagsterInstance, selection: list[dg.AssetKey], partition=None
) -> dg.ExecuteInProcessResult:
    defs = Team("sales", SALES, feeds=[sales.ORDERS_FEED]).definitions(deployment)
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=selection, partition_key=partition, raise_on_error=False
    )


def failure_of(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    (event,) = [e for e in result.all_events if e.is_step_failure]
    return event


OBJECT_STORES = ("onprem", "aws", "azure", "gcp")
CASES = [("local", case) for case in sorted(BAD_FILES)] + [
    (target, "channel outside its categories") for target in OBJECT_STORES
]


@pytest.mark.parametrize(("target", "case"), CASES)
def test_a_file_breaking_its_contract_fails_its_run_and_is_quarantined(
    target: str, case: str, request: pytest.FixtureRequest
) -> None:
    deployment = load_deployment(request.getfixturevalue(f"{target}_target_env"))
    zone = LandingZone(storage=storage_for(deployment), environment=deployment.environment)
    make, rule, named_column = BAD_FILES[case]
    healthy = land_bytes(zone, csv_bytes(good()), 0)
    broken = land_bytes(zone, make(), 1)
    with dg.instance_for_test() as instance:
        landed = register_landed_files([sales.ORDERS_FEED], zone, instance)
        assert set(landed) == {healthy, broken}
        assert run_sales(deployment, instance, [sales.raw_orders.key], healthy).success
        result = run_sales(deployment, instance, [sales.raw_orders.key], broken)
        assert not result.success
        error = failure_of(result).step_failure_data
        message = error.error.message + str(error.user_failure_data.description)
        assert broken in message and rule in message and named_column in message
        assert error.user_failure_data.metadata["dataops/landing_key"].value == broken

        stored = object_key(deployment.environment, sales.raw_orders.key, broken)
        assert not zone.storage.exists(stored), "nothing of a broken file is stored"
        (record,) = zone.quarantined(sales.ORDERS_FEED)
        assert record["key"] == broken and rule in record["reason"]
        assert zone.storage.get(broken) == make(), "a quarantined file stays readable in place"

        orders = run_sales(deployment, instance, [sales.orders.key])
        assert orders.success, "downstream builds from the healthy partitions"
        (written,) = orders.get_asset_materialization_events()
        metadata = written.materialization.metadata
        assert metadata["dataops/upstream_partitions_missing"].value == 1
        upstream = metadata["dataops/upstream_partitions"].value["sales/raw_orders"]
        assert upstream == {"loaded": 1, "missing": [broken], "missing_count": 1}
        assert len(orders.output_for_node("sales__orders")) == len(good())

        zone.storage.put(broken, csv_bytes(good(5)))
        relanded = register_landed_files([sales.ORDERS_FEED], zone, instance)
        run_key = "dagster/run_key"
        assert relanded[broken][run_key] != landed[broken][run_key], "the fix is a new version"
        assert relanded[healthy][run_key] == landed[healthy][run_key]
        assert run_sales(deployment, instance, [sales.raw_orders.key], broken).success
        assert zone.quarantined(sales.ORDERS_FEED) == []


def test_the_quarantine_check_fails_while_a_file_is_quarantined(deployment, zone) -> None:
    healthy = land_bytes(zone, csv_bytes(good()), 0)
    broken = land_bytes(zone, b"", 1)
    with dg.instance_for_test() as instance:
        register_landed_files([sales.ORDERS_FEED], zone, instance)
        run_sales(deployment, instance, [sales.raw_orders.key], broken)
        result = run_sales(deployment, instance, [sales.raw_orders.key], healthy)
    assert result.success
    (check,) = [c for c in result.get_asset_check_evaluations() if "contract" in c.check_name]
    assert not check.passed
    assert check.metadata["files"].value == [broken]


def test_silently_coerced_categories_no_longer_skew_revenue(deployment, zone) -> None:
    """Defect 1: unknown channels were stored as NaN and regional revenue summed 2,071 less."""
    frame = good().assign(channel=["Web", *["web"] * 11])
    with pytest.raises(ContractViolation, match="declared categories"):
        read_contracted_csv("k", csv_bytes(frame), sales.RAW_ORDER_COLUMNS)


def test_most_partitions_missing_fails_with_the_policy(deployment, zone) -> None:
    keys = [land_bytes(zone, b"", minute) for minute in range(3)]
    keys.append(land_bytes(zone, csv_bytes(good()), 9))
    with dg.instance_for_test() as instance:
        register_landed_files([sales.ORDERS_FEED], zone, instance)
        for key in keys:
            run_sales(deployment, instance, [sales.raw_orders.key], key)
        result = run_sales(deployment, instance, [sales.orders.key])
    assert not result.success
    message = failure_of(result).step_failure_data.user_failure_data.description
    assert "3 of 4 partitions of sales/raw_orders have no stored data" in message


def test_markers_hidden_and_off_pattern_files_are_not_data(zone: LandingZone) -> None:
    data = land_bytes(zone, csv_bytes(good()), 0)
    prefix = zone.prefix("sales", "orders")
    for name in ("2026/11/02/.DS_Store", "_SUCCESS", "2026/_temporary/0/part.csv", "notes.txt"):
        zone.storage.put(prefix + name, b"junk")
    with dg.instance_for_test() as instance:
        assert list(register_landed_files([sales.ORDERS_FEED], zone, instance)) == [data]


def test_a_very_long_file_name_is_stored_under_a_safe_name(deployment, zone) -> None:
    key = land_bytes(zone, csv_bytes(good()), 0, None)
    long_key = key.replace("-x.csv", "-" + "n" * 200 + ".csv")
    zone.storage.put(long_key, csv_bytes(good()))
    with dg.instance_for_test() as instance:
        register_landed_files([sales.ORDERS_FEED], zone, instance)
        result = run_sales(deployment, instance, [sales.raw_orders.key], long_key)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dataops/partition_key"].value == long_key
    stored = object_key(deployment.environment, sales.raw_orders.key, long_key)
    assert len(stored.rsplit("/", 1)[-1]) < 255 and zone.storage.exists(stored)


def test_a_file_moved_in_late_with_an_old_time_is_ingested(tmp_path: Path) -> None:
    """Defect 4: ``mv`` of an old file under a key the cursor had passed was never ingested.

    Local storage only: object stores stamp an object's time when it is written, so a late
    object always looks new; a renamed local file keeps its old modification time.
    """
    storage = LocalStorage(root=str(tmp_path / "root"))
    zone = LandingZone(storage=storage, environment="dev")
    first = [land_bytes(zone, csv_bytes(good(m)), m) for m in (0, 10)]
    with dg.instance_for_test() as instance:
        sensor = replace(sales.ORDERS_FEED, limits=_limits()).sensor()
        cursor = _settle(sensor, zone, instance)
        written_earlier = tmp_path / "outbox.csv"
        written_earlier.write_bytes(csv_bytes(good(5)))
        old = (AT - timedelta(days=30)).timestamp()
        os.utime(written_earlier, (old, old))
        late = f"{zone.prefix('sales', 'orders')}2026/11/02/093500000000-moved.csv"
        os.rename(written_earlier, Path(storage.root, *late.split("/")))
        result = _tick(sensor, zone, instance, cursor)
    assert [r.partition_key for r in result.run_requests] == [late]
    assert first[0] < late < first[1]


def _limits():
    from platform_core.cursor import LandingLimits

    return LandingLimits(settle=timedelta(seconds=0.5), rescan_objects=50)


def _tick(sensor, zone, instance, cursor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": zone}
    ) as context:
        result = sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def _settle(sensor, zone, instance) -> str:
    import time

    cursor = _tick(sensor, zone, instance, None).cursor
    time.sleep(1.2)
    for _ in range(3):
        cursor = _tick(sensor, zone, instance, cursor).cursor
    return cursor


def test_samples_never_land_in_preprod_or_prod(tmp_path: Path) -> None:
    """Defect 7: ``DATAOPS_ENV=prod dataops materialize --all`` landed synthetic orders."""
    storage = LocalStorage(root=str(tmp_path))
    for environment in ("preprod", "prod"):
        zone = LandingZone(storage=storage, environment=environment)
        assert land_samples([sales.ORDERS_FEED], zone) == []
        assert list(storage.list(f"{environment}/")) == []
    zone = LandingZone(storage=storage, environment="prod")
    assert len(land_samples([sales.ORDERS_FEED], zone, with_samples=True)) == 7
    assert (
        len(land_samples([sales.ORDERS_FEED], LandingZone(storage=storage, environment="test")))
        == 7
    )


class TestLocalStorageStaysInsideItsRoot:
    """Defect 3: the local adapter followed symlinks out of its root and stalled on bad ones."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(root=str(tmp_path / "root"))

    def test_a_symlink_to_another_environment_is_not_ingested(
        self, storage: LocalStorage, tmp_path: Path
    ) -> None:
        prod = storage.put("prod/landing/sales/orders/2026/11/02/093000000000-p.csv", b"secret")
        dev_folder = Path(storage.root, "dev/landing/sales/orders/2026/11/02")
        dev_folder.mkdir(parents=True)
        (dev_folder / "093000000000-link.csv").symlink_to(Path(storage.root, *prod.key.split("/")))
        zone = LandingZone(storage=storage, environment="dev")
        with dg.instance_for_test() as instance:
            assert register_landed_files([sales.ORDERS_FEED], zone, instance) == {}

    def test_reading_through_a_link_out_of_the_root_is_refused(self, storage: LocalStorage) -> None:
        Path(storage.root, "dev").mkdir(parents=True)
        Path(storage.root, "dev", "passwd").symlink_to("/etc/passwd")
        Path(storage.root, "etc").symlink_to("/etc")
        for key in ("dev/passwd", "etc/passwd"):
            with pytest.raises(StorageError, match="symbolic link"):
                storage.get(key)
            with pytest.raises(StorageError, match="symbolic link"):
                storage.put(key, b"x")
            for whole in (True, False):
                with pytest.raises(StorageError, match="symbolic link"):
                    storage.open_input(key, whole=whole)

    def test_dangling_links_and_loops_are_skipped_and_reported_once(
        self, storage: LocalStorage, caplog: pytest.LogCaptureFixture
    ) -> None:
        folder = Path(storage.root, "dev/landing/sales/orders/2026/11/02")
        folder.mkdir(parents=True)
        (folder / "a-dangling.csv").symlink_to(folder / "missing.csv")
        (folder / "b-loop.csv").symlink_to(folder / "b-loop.csv")
        (folder / "c-dir-loop").symlink_to(folder)
        real = storage.put("dev/landing/sales/orders/2026/11/02/d-real.csv", csv_bytes(good()))
        zone = LandingZone(storage=storage, environment="dev")
        for _ in range(3):
            assert [info.key for info in zone.list("sales", "orders")] == [real.key]
        reported = [r for r in caplog.records if "symbolic link" in r.getMessage()]
        assert len(reported) == 3

    def test_orphaned_temporary_files_are_swept(self, storage: LocalStorage) -> None:
        storage.put("dev/x.csv", b"1")
        orphan = Path(storage.root, "dev", ".dataops-tmp-abandoned")
        orphan.write_bytes(b"half a file")
        fresh = Path(storage.root, "dev", ".dataops-tmp-writing")
        fresh.write_bytes(b"being written")
        old = datetime(2020, 1, 1).timestamp()
        os.utime(orphan, (old, old))
        assert [info.key for info in storage.list("dev/")] == ["dev/x.csv"]
        assert not orphan.exists() and fresh.exists()


CONTRACT = {
    "id": Column("str", nullable=False, pattern=r"[A-Z]-\d+"),
    "amount": Column("float64", minimum=0),
    "count": "int64",
    "flag": "bool",
    "kind": pd.CategoricalDtype(["a", "b"]),
    "at": "datetime64[us, UTC]",
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data_frames(
        [
            column("id", elements=st.from_regex(r"[A-Z]-\d{1,6}", fullmatch=True)),
            column("amount", elements=st.floats(0, 1e9, allow_nan=False)),
            column("count", elements=st.integers(-(2**62), 2**62)),
            column("flag", elements=st.booleans()),
            column("kind", elements=st.sampled_from(["a", "b"])),
            column(
                "at",
                elements=st.datetimes(
                    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)
                ).map(lambda d: pd.Timestamp(d, tz="UTC").floor("us")),
            ),
        ]
    ).filter(lambda frame: len(frame) > 0)
)
def test_conforming_files_round_trip_exactly(frame: pd.DataFrame) -> None:
    frame = frame.reset_index(drop=True).astype(
        {"id": "str", "kind": CONTRACT["kind"], "at": "datetime64[us, UTC]"}
    )
    read = read_contracted_csv("k", csv_bytes(frame), CONTRACT)
    pd.testing.assert_frame_equal(read, frame)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and s not in ("a", "b")))
def test_any_value_outside_the_categories_is_refused(value: str) -> None:
    frame = pd.DataFrame(
        {
            "id": ["A-1"],
            "amount": [1.0],
            "count": [1],
            "flag": [True],
            "kind": [value],
            "at": [pd.Timestamp("2026-01-01", tz="UTC")],
        }
    )
    text = frame.to_csv(index=False).encode()
    try:
        read = read_contracted_csv("k", text, CONTRACT)
    except ContractViolation:
        return
    assert read["kind"].iloc[0] in ("a", "b"), "a value outside the categories was accepted"


def test_a_deleted_landing_file_does_not_break_later_runs(
    local_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 2: deleting an ingested landing file made every later materialize exit 1."""
    from platform_core.materialize import materialize_all

    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    with dg.instance_for_test() as instance:
        assert materialize_all(instance, echo=lambda line: None)
        zone = LandingZone(
            storage=storage_for(load_deployment(local_target_env)), environment="dev"
        )
        deleted = next(zone.list("sales", "orders")).key
        zone.storage.delete(deleted)
        lines: list[str] = []
        assert materialize_all(instance, echo=lines.append)
    assert any(deleted in line and "landing file was deleted" in line for line in lines)
