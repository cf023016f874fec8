"""The real dagster-webserver on workspace.yaml: locations load, lineage crosses, runs launch."""

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_servers import ROOT, dagster_servers, graphql

from platform_core.feeds import land_samples, register_landed_files
from platform_core.materialize import workspace_locations

LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError {
      __typename
      ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } }
      ... on PythonError { message }
    }
} } } }
"""

ASSET_GRAPH = """
{ assetNodes { assetKey { path } dependencyKeys { path } isMaterializable
  repository { location { name } } } }
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

SENSORS = """
{ sensorsOrError(repositorySelector: {repositoryLocationName: "sales",
                                      repositoryName: "__repository__"}) {
    ... on Sensors { results { name sensorState { status } } } } }
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dagster_home")


@pytest.fixture(scope="module")
def webserver(home: Path) -> Iterator[str]:
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    with dagster_servers(home, [ROOT / "workspace.yaml"]) as url:
        yield url


def test_both_locations_load_and_list_their_assets(webserver: str) -> None:
    entries = graphql(webserver, LOCATIONS)["workspaceOrError"]["locationEntries"]
    by_name = {entry["name"]: entry["locationOrLoadError"] for entry in entries}
    assert set(by_name) == {"sales", "analytics"}
    keys = {}
    for name, location in by_name.items():
        assert location["__typename"] == "RepositoryLocation", location
        nodes = location["repositories"][0]["assetNodes"]
        keys[name] = {"/".join(node["assetKey"]["path"]) for node in nodes}
    assert {"sales/raw_orders", "sales/orders", "sales/customers"} <= keys["sales"]
    assert {
        "analytics/revenue_by_country",
        "analytics/customer_value",
        "analytics/regional_daily_revenue",
    } <= keys["analytics"]


def test_lineage_crosses_locations_in_the_ui(webserver: str) -> None:
    nodes = graphql(webserver, ASSET_GRAPH)["assetNodes"]
    materializable = {"/".join(n["assetKey"]["path"]): n for n in nodes if n["isMaterializable"]}
    orders = materializable["sales/orders"]
    assert orders["repository"]["location"]["name"] == "sales"
    revenue = materializable["analytics/revenue_by_country"]
    assert revenue["repository"]["location"]["name"] == "analytics"
    assert {"/".join(k["path"]) for k in revenue["dependencyKeys"]} == {"sales/orders"}


def test_the_landing_sensor_is_listed_and_running(webserver: str) -> None:
    sensors = graphql(webserver, SENSORS)["sensorsOrError"]["results"]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
        "sales_orders_landing": "RUNNING",
        "sales_lineage": "RUNNING",
        "sales_share_views": "RUNNING",
    }


def test_a_materialization_launched_from_the_ui_succeeds(
    webserver: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DATAOPS_LOCAL_ROOT", str(home / "storage"))
    sales = next(loc for loc in workspace_locations() if loc.name == "sales").team()
    landing = sales.definitions().resources["landing"]
    landed = [info.key for info in land_samples(sales.feeds, landing)]
    with dg.DagsterInstance.get() as instance:
        assert set(register_landed_files(sales.feeds, landing, instance)) == set(landed)
    partition = next(key for key in landed if "/2026/11/03/" in key)
    params = {
        "selector": {
            "repositoryLocationName": "sales",
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": ["sales", "raw_orders"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        "mode": "default",
    }
    launched = graphql(webserver, LAUNCH, {"params": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        status = graphql(webserver, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS"
    raw = home / "storage" / "dev" / "sales" / "raw_orders"
    assert [str(path.relative_to(raw)) for path in raw.rglob("*.parquet")] == [
        f"{partition}.parquet"
    ]


def test_a_person_sees_lineage_across_teams_in_the_browser(webserver: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: tests/install-servers.sh installs it"
    page = f"{webserver}/assets/analytics/revenue_by_country?view=lineage&lineageScope=upstream"
    rendered = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--window-size=1400,900",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    texts = set(re.findall(r">([a-z_]+)<", rendered.stdout))
    assert {"sales", "orders", "analytics", "revenue_by_country"} <= texts, texts
