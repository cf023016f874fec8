"""The Parquet IO manager: exact dtype round-trips, every partition kind, metadata, safe writes."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq
import pytest

from adapters.storage.local import LocalStorage
from platform_core.io_manager import DataProductIOManager, object_key


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=str(tmp_path / "storage"))


@pytest.fixture
def resources(storage: LocalStorage) -> dict[str, DataProductIOManager]:
    return {"io_manager": DataProductIOManager(storage=storage, environment="test")}


def every_dtype() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "int": np.array([1, -2, 3], dtype="int64"),
            "small_int": np.array([1, 2, 3], dtype="int16"),
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "float": [1.5, np.nan, -0.25],
            "string": pd.Series(["a", None, "ç"], dtype="str"),
            "bool": [True, False, True],
            "nullable_bool": pd.array([True, None, False], dtype="boolean"),
            "ts_utc": pd.to_datetime(["2026-11-01 10:00", None, "2026-11-03 00:00"], utc=True),
            "ts_paris": pd.date_range("2026-03-29", periods=3, freq="h", tz="Europe/Paris"),
            "naive_ns": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]).as_unit("ns"),
            "category": pd.Categorical(
                ["lo", "hi", None], categories=["lo", "mid", "hi"], ordered=True
            ),
            "decimal_like": pd.Series([0.1, 0.2, 0.3], dtype="float32"),
        }
    )


def load(
    storage: LocalStorage, key: dg.AssetKey, partitions: list[str] | None = None
) -> pd.DataFrame:
    manager = DataProductIOManager(storage=storage, environment="test")
    if partitions is None:
        return manager.load_input(dg.build_input_context(asset_key=key))
    partitions_def = dg.StaticPartitionsDefinition(partitions)
    context = dg.build_input_context(
        asset_key=key,
        asset_partitions_def=partitions_def,
        asset_partition_key_range=dg.PartitionKeyRange(partitions[0], partitions[-1]),
    )
    return manager.load_input(context)


def test_every_dtype_round_trips_exactly(storage: LocalStorage, resources: dict) -> None:
    @dg.asset(key_prefix="team")
    def typed() -> pd.DataFrame:
        return every_dtype()

    assert dg.materialize([typed], resources=resources).success
    pdt.assert_frame_equal(load(storage, typed.key), every_dtype(), check_exact=True)
    loaded = load(storage, typed.key)
    assert list(loaded["category"].cat.categories) == ["lo", "mid", "hi"]
    assert loaded["category"].cat.ordered


def test_large_frame_is_written_in_row_groups_and_round_trips(
    storage: LocalStorage, resources: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("platform_core.io_manager.ROW_GROUP_ROWS", 1_000)
    frame = pd.concat([every_dtype()] * 1_500, ignore_index=True)

    @dg.asset(key_prefix="team")
    def big() -> pd.DataFrame:
        return frame

    assert dg.materialize([big], resources=resources).success
    path = Path(storage.root, "test", "team", "big.parquet")
    assert pq.ParquetFile(path).num_row_groups == 5
    pdt.assert_frame_equal(load(storage, big.key), frame, check_exact=True)


def test_materialization_metadata(storage: LocalStorage, resources: dict) -> None:
    @dg.asset(key_prefix="team")
    def described() -> pd.DataFrame:
        return every_dtype()

    result = dg.materialize([described], resources=resources)
    metadata = result.asset_materializations_for_node("team__described")[0].metadata
    key = object_key("test", described.key)
    assert key == "test/team/described.parquet"
    assert metadata["dagster/uri"].value == storage.uri(key)
    assert metadata["dagster/uri"].value.startswith("file://")
    assert metadata["dagster/row_count"].value == 3
    assert metadata["dataops/byte_size"].value == storage.stat(key).size
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].schema.columns}
    assert columns["int"] == "int64"
    assert columns["ts_paris"].startswith("timestamp[") and "tz=Europe/Paris" in columns["ts_paris"]
    assert columns["category"].startswith("dictionary")
    assert list(columns) == list(every_dtype().columns)


def test_daily_partitions_load_as_one_frame_downstream(
    storage: LocalStorage, resources: dict
) -> None:
    days = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-05")

    @dg.asset(key_prefix="team", partitions_def=days)
    def daily(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"day": [context.partition_key] * 2, "n": [1, 2]})

    @dg.asset(
        key_prefix="team",
        partitions_def=days,
        ins={
            "daily": dg.AssetIn(
                key=daily.key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-2)
            )
        },
    )
    def rolling(daily: pd.DataFrame) -> pd.DataFrame:
        return daily.groupby("day", as_index=False)["n"].sum()

    @dg.asset(key_prefix="team")
    def everything(daily: pd.DataFrame) -> pd.DataFrame:
        return daily

    instance = dg.DagsterInstance.ephemeral()
    for day in days.get_partition_keys():
        assert dg.materialize(
            [daily], partition_key=day, resources=resources, instance=instance
        ).success
    assert dg.materialize(
        [daily, rolling],
        selection=[rolling],
        partition_key="2026-11-04",
        resources=resources,
        instance=instance,
    ).success
    assert load(storage, rolling.key, ["2026-11-04"])["day"].tolist() == [
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
    ]
    assert dg.materialize([daily, everything], selection=[everything], resources=resources).success
    whole = load(storage, everything.key)
    assert whole["day"].tolist() == [d for d in days.get_partition_keys() for _ in range(2)]
    assert sorted(p.name for p in Path(storage.root, "test", "team", "daily").iterdir()) == [
        "2026-11-01.parquet",
        "2026-11-02.parquet",
        "2026-11-03.parquet",
        "2026-11-04.parquet",
    ]


def test_static_partitions(storage: LocalStorage, resources: dict) -> None:
    regions = dg.StaticPartitionsDefinition(["emea", "amer"])

    @dg.asset(key_prefix="team", partitions_def=regions)
    def regional(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"region": [context.partition_key]})

    for region in ("amer", "emea"):
        assert dg.materialize([regional], partition_key=region, resources=resources).success
    assert load(storage, regional.key, ["amer"])["region"].tolist() == ["amer"]
    assert load(storage, regional.key, ["emea", "amer"])["region"].tolist() == ["emea", "amer"]


def test_dynamic_partitions_named_after_files(storage: LocalStorage, resources: dict) -> None:
    files = dg.DynamicPartitionsDefinition(name="landed_files")
    keys = ["landing/2026/11/30/orders 1.csv", "landing/2026/11/30/orders-2.csv"]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("landed_files", keys)

    @dg.asset(key_prefix="team", partitions_def=files)
    def landed(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"file": [context.partition_key]})

    @dg.asset(key_prefix="team")
    def all_landed(landed: pd.DataFrame) -> pd.DataFrame:
        return landed

    for key in keys:
        assert dg.materialize(
            [landed], partition_key=key, resources=resources, instance=instance
        ).success
    landed_root = Path(storage.root, "test", "team", "landed")
    stored = sorted(str(p.relative_to(landed_root)) for p in landed_root.rglob("*.parquet"))
    assert stored == [
        "landing/2026/11/30/orders 1.csv.parquet",
        "landing/2026/11/30/orders-2.csv.parquet",
    ]
    assert dg.materialize(
        [landed, all_landed], selection=[all_landed], resources=resources, instance=instance
    ).success
    assert load(storage, all_landed.key)["file"].tolist() == keys


def test_partition_uri_is_encoded_once_and_opens(storage: LocalStorage, resources: dict) -> None:
    files = dg.DynamicPartitionsDefinition(name="landed_files")
    key = "dev/landing/sales/orders/2026/11/30/orders 1.csv"
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("landed_files", [key])

    @dg.asset(key_prefix="team", partitions_def=files)
    def landed(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"file": [context.partition_key]})

    result = dg.materialize([landed], partition_key=key, resources=resources, instance=instance)
    uri = result.get_asset_materialization_events()[0].materialization.metadata["dagster/uri"]
    assert uri.value.endswith(
        "/test/team/landed/dev/landing/sales/orders/2026/11/30/orders%201.csv.parquet"
    )
    assert "%25" not in uri.value and "%2F" not in uri.value
    assert pd.read_parquet(uri.value)["file"].tolist() == [key]


def test_a_partition_key_that_is_no_safe_path_stays_inside(
    storage: LocalStorage, resources: dict
) -> None:
    sneaky = dg.StaticPartitionsDefinition(["../../outside"])

    @dg.asset(key_prefix="team", partitions_def=sneaky)
    def escaping() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    result = dg.materialize([escaping], partition_key="../../outside", resources=resources)
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["dataops/partition_key"].value == "../../outside"
    [stored] = Path(storage.root, "test", "team", "escaping").iterdir()
    assert (
        stored.name.startswith("outside~")
        and not Path(storage.root).parent.joinpath("outside.parquet").exists()
    )


def test_failed_write_keeps_previous_version(storage: LocalStorage, resources: dict) -> None:
    attempt = {"broken": False}

    @dg.asset(key_prefix="team")
    def fragile() -> pd.DataFrame:
        if attempt["broken"]:
            return pd.DataFrame({"value": [1, "not a number", 2.5]})
        return pd.DataFrame({"value": [1.0, 2.0]})

    assert dg.materialize([fragile], resources=resources).success
    attempt["broken"] = True
    assert not dg.materialize([fragile], resources=resources, raise_on_error=False).success
    assert load(storage, fragile.key)["value"].tolist() == [1.0, 2.0]
    assert [p.name for p in Path(storage.root, "test", "team").iterdir()] == ["fragile.parquet"]


def test_non_frame_output_is_refused(resources: dict) -> None:
    @dg.asset(key_prefix="team")
    def not_a_frame() -> dict:
        return {"a": 1}

    with pytest.raises(TypeError, match="return a pandas DataFrame"):
        dg.materialize([not_a_frame], resources=resources)
