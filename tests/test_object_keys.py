"""Partition keys as storage keys, property-based: any partition key (unicode, slashes, ``%``,
dots, very long) maps to exactly one storage key that every backend accepts (the key itself as a
path when it is safe, one hashed name otherwise), distinct keys never share an object, and the
object round-trips on the local adapter and on Azure Blob (Azurite, whose blob URLs make it the
strictest about names).
"""

import hashlib
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.storage.base import StorageAdapter, check_key
from adapters.storage.local import LocalStorage
from config import load_deployment
from platform_core.io_manager import DataProductIOManager, object_key, stored_as_is
from platform_core.storage_factory import storage_for

ASSET = dg.AssetKey(["sales", "orders"])
FOLDER = "dev/sales/orders/"
NAME_MAX = 255
KEY_MAX = 1024
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 =_.~+@,-]*")
HOSTILE = ["/", "%", "%2F", "%25", ".", "..", " ", "\\", "?", "#", "&", "+", "~", "\x00", "\n"]

partition_keys = st.one_of(
    st.text(min_size=1, max_size=60),
    st.lists(
        st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=8)),
        min_size=1,
        max_size=30,
    ).map("".join),
    st.text(min_size=60, max_size=400),
    st.text(alphabet="./%", min_size=1, max_size=90),
)


def path_of(key: str) -> str:
    assert key.startswith(FOLDER) and key.endswith(".parquet"), key
    return key.removeprefix(FOLDER).removesuffix(".parquet")


@settings(max_examples=200, deadline=None)
@given(partition_keys)
def test_every_partition_key_maps_to_one_storable_path(partition_key: str) -> None:
    key = object_key("dev", ASSET, partition_key)
    path = path_of(key)
    assert check_key(key) == key
    assert len(key.encode()) <= KEY_MAX
    for name in f"{path}.parquet".split("/"):
        assert SAFE_NAME.fullmatch(name), name
        assert not name.startswith((".", "_"))
        assert len(name.encode()) <= NAME_MAX
    if stored_as_is(partition_key):
        assert path == partition_key
    else:
        assert "/" not in path and "%" not in path
        assert path.endswith("~" + hashlib.sha256(partition_key.encode()).hexdigest())


@settings(max_examples=400, deadline=None)
@given(partition_keys, partition_keys)
def test_distinct_partition_keys_never_share_an_object(first: str, second: str) -> None:
    assume(first != second)
    assert object_key("dev", ASSET, first) != object_key("dev", ASSET, second)


def test_long_keys_differing_only_at_the_end_stay_apart() -> None:
    base = "landing/2026/11/30/" + "o" * 300
    assert object_key("dev", ASSET, base + "1.csv") != object_key("dev", ASSET, base + "2.csv")


@pytest.fixture(params=["local", "azure"])
def storage(request: pytest.FixtureRequest) -> StorageAdapter:
    return storage_for(load_deployment(request.getfixturevalue(f"{request.param}_target_env")))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(partition_key=partition_keys)
def test_partition_objects_round_trip(storage: StorageAdapter, partition_key: str) -> None:
    key = object_key("dev", ASSET, partition_key)
    content = partition_key.encode()
    storage.put(key, content)
    try:
        assert storage.get(key) == content
        assert [info.key for info in storage.list(key)] == [key]
        assert storage.uri(key)
    finally:
        storage.delete(key)
    assert not storage.exists(key)


def test_a_long_partition_key_is_stored_and_recorded(tmp_path: Path) -> None:
    """A landing file with a 200-character name used to fail with "File name too long"."""
    storage = LocalStorage(root=str(tmp_path / "storage"))
    files = dg.DynamicPartitionsDefinition(name="landed_files")
    long_key = f"landing/2026/11/30/{'orders-' * 40}.csv"
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("landed_files", [long_key])

    @dg.asset(key_prefix="sales", partitions_def=files)
    def landed(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"file": [context.partition_key]})

    @dg.asset(key_prefix="sales")
    def every_landed(landed: pd.DataFrame) -> pd.DataFrame:
        return landed

    resources = {"io_manager": DataProductIOManager(storage=storage, environment="dev")}
    result = dg.materialize(
        [landed, every_landed], partition_key=long_key, resources=resources, instance=instance
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("sales__landed")
    assert materialization.metadata["dataops/partition_key"].value == long_key
    [stored] = [info.key for info in storage.list("dev/sales/landed/")]
    assert stored == object_key("dev", landed.key, long_key)
    assert len(Path(stored).name) <= NAME_MAX
    assert result.output_for_node("sales__every_landed")["file"].tolist() == [long_key]
