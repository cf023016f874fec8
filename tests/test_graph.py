"""The two team code locations on the embedded local default: load, lineage, materialise, CLI."""

import io
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq
import pytest
from conftest import run_dataops, write_policy
from locations.failing import team as broken

from assets.sales.assets import ORDERS_FEED
from assets.sales.sample_data import SAMPLE_LANDINGS, orders_file
from config import load_deployment
from platform_core.governance import CLASSIFICATION_TAG
from platform_core.landing import feed_prefix, landing_key
from platform_core.materialize import materialize_all, workspace_locations
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SAMPLE_FILES = [
    landing_key(feed_prefix("dev", "sales", "orders"), at, "sample") for at in SAMPLE_LANDINGS
]


def read_product(env: dict[str, str], key: str) -> pd.DataFrame:
    """Every object stored under ``<environment>/<key>``, as one frame, in key order."""
    deployment = load_deployment(env)
    storage = storage_for(deployment)
    keys = [o.key for o in storage.list(f"{deployment.environment}/{key}")]
    assert keys, f"nothing stored for {key}"
    frames = [pq.read_table(io.BytesIO(storage.get(k))).to_pandas() for k in keys]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def local(local_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    return local_target_env


def test_both_locations_load_with_governed_products(local: dict[str, str]) -> None:
    locations = {loc.name: loc.load() for loc in workspace_locations()}
    assert set(locations) == {"sales", "analytics"}
    for team, defs in locations.items():
        graph = defs.resolve_asset_graph()
        assert graph.materializable_asset_keys
        for key in graph.materializable_asset_keys:
            spec = graph.get(key)
            assert key.path[0] == team
            assert spec.owners == [f"team:{team}"]
            assert spec.tags[CLASSIFICATION_TAG] in {"public", "internal", "confidential", "pii"}


def test_lineage_crosses_code_locations(local: dict[str, str]) -> None:
    analytics = next(loc for loc in workspace_locations() if loc.name == "analytics").load()
    graph = analytics.resolve_asset_graph()
    orders = dg.AssetKey(["sales", "orders"])
    assert orders in graph.external_asset_keys
    assert graph.get(dg.AssetKey(["analytics", "revenue_by_country"])).parent_keys == {orders}


def test_whole_graph_materialises_and_reads_back(local: dict[str, str]) -> None:
    lines: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize_all(instance, echo=lines.append)
        runs = instance.get_runs()
        partitions = instance.get_dynamic_partitions(ORDERS_FEED.partitions.name)
    assert partitions == SAMPLE_FILES
    # raw files, sales products, sales share views, two analytics levels, three regions
    assert len(runs) == len(SAMPLE_FILES) + 1 + 1 + 1 + 1 + 3
    assert all(run.is_success for run in runs)
    ingested = [
        run for run in runs if run.tags.get("dagster/sensor_name") == "sales_orders_landing"
    ]
    assert sorted(run.tags["dagster/partition"] for run in ingested) == SAMPLE_FILES
    assert len({run.tags["dagster/run_key"] for run in ingested}) == len(SAMPLE_FILES)
    assert lines[: len(SAMPLE_FILES)] == [f"sales: landed sample {key}" for key in SAMPLE_FILES]
    assert lines.index("sales: sales/customers, sales/orders") < lines.index(
        "analytics: analytics/customer_value, analytics/revenue_by_country"
    )
    assert any(
        re.fullmatch(r"  check sales/orders:orders_have_unique_ids: passed, \d+\.\d\d s", line)
        for line in lines
    )

    expected = pd.concat([orders_file(at) for at in SAMPLE_LANDINGS], ignore_index=True)
    raw = read_product(local, "sales/raw_orders/")
    pdt.assert_frame_equal(raw, expected)

    orders = read_product(local, "sales/orders.parquet")
    assert "email" not in orders.columns
    assert len(orders) == len(expected)
    assert orders["net_amount"].sum() == pytest.approx(
        (expected["amount"] * (1 - expected["discount"].fillna(0))).round(2).sum()
    )

    revenue = read_product(local, "analytics/revenue_by_country.parquet")
    by_country = orders.groupby("country")["net_amount"].sum().round(2)
    assert dict(zip(revenue["country"], revenue["revenue"], strict=True)) == pytest.approx(
        by_country.to_dict()
    )
    regional = read_product(local, "analytics/regional_daily_revenue/")
    assert regional["revenue"].sum() == pytest.approx(orders["net_amount"].sum(), rel=1e-9)


def test_cli_materializes_everything_with_progress(
    local: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_dataops(["materialize", "--all"], local, tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"sales: sales/raw_orders [{SAMPLE_FILES[-1]}]" in result.stdout
    assert "materialized analytics/customer_value: " in result.stdout
    assert result.stdout.strip().endswith("all data products materialized")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["analytics", "customer_value"])
        )
        assert event is not None
        assert event.asset_materialization.metadata["dagster/uri"].value.startswith("file://")


def test_cli_exits_nonzero_when_a_run_fails(local: dict[str, str], tmp_path: Path) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: locations.failing\n"
        "      location_name: broken\n"
    )
    policy = write_policy(tmp_path / "policy", [broken])
    result = run_dataops(
        ["materialize", "--all", "--workspace", str(workspace)],
        {**local, "DATAOPS_POLICY_DIR": str(policy)},
        tmp_path / "home",
    )
    assert result.returncode == 1
    assert "FAILED step broken__explodes: RuntimeError: upstream system is down" in result.stdout
    assert "materialization failed" in result.stdout


def test_cli_exits_nonzero_on_bad_configuration(tmp_path: Path) -> None:
    result = run_dataops(["materialize", "--all"], {"DATAOPS_TARGET": "mars"}, tmp_path / "home")
    assert result.returncode == 2
    assert "configuration error: DATAOPS_TARGET='mars' is not a known target" in result.stderr
