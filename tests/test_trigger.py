"""``dataops trigger``, ``status`` and ``logs`` against a real webserver and daemon.

One deployment per module: the ``sales`` team's code location and a test location ``ops``
(``locations/ops.py``: a product held open until the test opens its gate, and one that fails)
served by gRPC code servers, the webserver and the daemon with its run queue, all real, on
free 127.0.0.1 ports. Only the faults a real webserver cannot produce are made here: an
authenticating proxy in front of it, and a listener that never answers.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import requests
from conftest import write_policy
from dagster_servers import code_servers, dagster_servers, graphql
from locations.ops import team as ops
from servers import free_port

from assets.analytics.definitions import team as analytics
from assets.sales.definitions import team as sales
from platform_core.cli import main
from platform_core.feeds import register_landed_files
from platform_core.governance.policy import POLICY_DIR
from platform_core.materialize import workspace_locations
from platform_core.remote.client import TOKEN_VARIABLE
from platform_core.remote.runs import RUN_KEY_TAG

TESTS = Path(__file__).resolve().parent
ENVIRONMENT = "test"
TOKEN = "s3cret-bearer.token"
INSTANCE = "run_queue:\n  dequeue_interval_seconds: 1\ntelemetry:\n  enabled: false\n"
SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { jobOriginId sensorState { selectorId } } } }
"""
STOP_SENSOR = """
mutation Stop($origin: String, $selector: String) {
  stopSensor(jobOriginId: $origin, jobSelectorId: $selector) { __typename } }
"""
RUNS = "{ runsOrError { ... on Runs { results { runId tags { key value } } } } }"


@dataclass(frozen=True)
class Deployment:
    url: str
    home: Path
    gates: Path


def runs(url: str) -> dict[str, dict[str, str]]:
    """Every run of the deployment: its tags by run id."""
    results = graphql(url, RUNS)["runsOrError"]["results"]
    return {run["runId"]: {t["key"]: t["value"] for t in run["tags"]} for run in results}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(INSTANCE)
    gates = home / "gates"
    gates.mkdir()
    policy = write_policy(
        home / "policy", [ops, sales, analytics], (POLICY_DIR / "access.yaml").read_text()
    )
    env = {
        "PYTHONPATH": str(TESTS),
        "GATES_DIRECTORY": str(gates),
        "DATAOPS_ENV": ENVIRONMENT,
        "DATAOPS_POLICY_DIR": str(policy),
    }
    locations = {"sales": "assets.sales.definitions", "ops": "locations.ops"}
    with (
        code_servers(home, locations, env) as workspace,
        dagster_servers(home, [workspace], env, daemon=True) as url,
    ):
        selector = {
            "repositoryLocationName": "sales",
            "repositoryName": "__repository__",
            "sensorName": "sales_orders_landing",
        }
        sensor = graphql(url, SENSOR, {"selector": selector})["sensorOrError"]
        stop = {"origin": sensor["jobOriginId"], "selector": sensor["sensorState"]["selectorId"]}
        graphql(url, STOP_SENSOR, stop)
        yield Deployment(url=url, home=home, gates=gates)


@pytest.fixture(scope="module")
def guarded(deployment: Deployment) -> Iterator[str]:
    """An authenticating proxy in front of the webserver: only ``Bearer TOKEN`` passes."""

    class Guard(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = requests.request(
                self.command,
                f"{deployment.url}{self.path}",
                data=body,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                timeout=60,
            )
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Guard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dataops(capsys: pytest.CaptureFixture[str]):
    """``dataops ARGS`` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_an_unreachable_deployment_exits_5(dataops) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = dataops("trigger", "--url", url, "--select", "sales/orders", "--wait")
    assert (code, out) == (5, "")
    assert f"deployment at {url} is unreachable: [Errno 111] Connection refused" in err


def test_an_unknown_host_is_unreachable(dataops) -> None:
    code, out, err = dataops("status", "some-run", "--url", "http://dagster.no-such-host.invalid")
    assert code == 5
    assert "dagster.no-such-host.invalid is unreachable" in err
    assert out == ""


def test_a_deployment_that_never_answers_times_out_with_3(dataops) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code, _, err = dataops("status", "some-run", "--url", url, "--timeout", "1")
    assert code == 3
    assert f"{url} did not answer within 1 s while reading the run" in err
    assert "keeps going" in err


def test_usage_errors_exit_2_and_launch_nothing(deployment: Deployment, dataops) -> None:
    before = runs(deployment.url)
    url = deployment.url
    cases = {
        ("--select", "sales/nope,ops/gated_report"): "materialises sales/nope",
        ("--select", "sales/orders,ops/gated_report"): (
            "spans code locations (ops: ops/gated_report; sales: sales/orders)"
        ),
        ("--select", "sales/raw_orders"): "sales/raw_orders is partitioned: say which",
        ("--select", "ops/gated_report", "--partition", "2026-11-01"): "no selected asset is",
        ("--select", "sales orders"): "is not a comma-separated list of asset keys",
        ("--select", "ops/gated_report", "--run-key", "bad key\n"): "--run-key 'bad key\\n'",
    }
    for args, reason in cases.items():
        code, out, err = dataops("trigger", "--url", url, *args)
        assert (code, out) == (2, ""), (args, err)
        assert reason in err, (args, err)
    credentials = url.replace("http://", "http://admin:hunter2@")
    code, _, err = dataops("trigger", "--url", credentials, "--select", "ops/gated_report")
    assert code == 2
    assert "must not hold credentials" in err
    assert "hunter2" not in err
    code, _, err = dataops("status", "no-such-run", "--url", url)
    assert code == 2
    assert f"{url} has no run 'no-such-run'" in err
    code, _, err = dataops("trigger", "--url", f"{url}/nowhere", "--select", "ops/gated_report")
    assert code == 2
    assert "no GraphQL API at /graphql (HTTP 405): check --url" in err
    assert runs(url) == before


def test_a_partition_runs_to_success_and_reports_json(
    deployment: Deployment, dataops, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(deployment.home))
    monkeypatch.setenv("DATAOPS_LOCAL_ROOT", str(deployment.home / "storage"))
    monkeypatch.setenv("DATAOPS_ENV", ENVIRONMENT)
    team = next(loc for loc in workspace_locations() if loc.name == "sales").team()
    landing = team.definitions().resources["landing"]
    [feed] = team.feeds
    landed = feed.land_sample(landing, datetime(2026, 11, 3, 6, tzinfo=UTC))
    with dg.DagsterInstance.get() as instance:
        assert list(register_landed_files(team.feeds, landing, instance)) == [landed.key]

    code, out, err = dataops(
        "trigger", "--url", deployment.url, "--select", "sales/raw_orders",
        "--partition", landed.key, "--wait", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"run_id", "status", "url", "start", "end"}
    assert report["status"] == "SUCCESS"
    assert report["url"] == f"{deployment.url}/runs/{report['run_id']}"
    start, end = (
        datetime.fromisoformat(report[k].replace("Z", "+00:00")) for k in ("start", "end")
    )
    assert start <= end <= datetime.now(UTC)
    assert runs(deployment.url)[report["run_id"]]["dagster/partition"] == landed.key
    stored = deployment.home / "storage" / ENVIRONMENT / "sales" / "raw_orders"
    assert [str(p.relative_to(stored)) for p in stored.rglob("*.parquet")] == [
        f"{landed.key}.parquet"
    ]

    code, out, _ = dataops("status", report["run_id"], "--url", deployment.url)
    assert (code, out.split()) == (0, [report["run_id"], "SUCCESS", report["url"]])


def test_a_timeout_leaves_the_run_going_and_the_run_key_finds_it(
    deployment: Deployment, dataops
) -> None:
    url = deployment.url
    trigger = ("trigger", "--url", url, "--select", "ops/gated_report", "--run-key", "nightly-7")
    code, out, err = dataops(*trigger, "--wait", "--timeout", "3", "--json")
    assert code == 3, err
    run = json.loads(out)
    assert run["status"] in ("QUEUED", "STARTING", "STARTED")
    assert run["end"] is None
    assert f"run {run['run_id']} is still {run['status']} after 3 s; it keeps going" in err

    code, out, err = dataops(*trigger)
    assert code == 0, err
    assert out.split()[0] == run["run_id"]
    assert f"run key 'nightly-7' names run {run['run_id']}" in err
    code, _, err = dataops("status", run["run_id"], "--url", url)
    assert code == 3
    assert "it keeps going" in err
    code, _, err = dataops(
        "trigger", "--url", url, "--select", "ops/broken_report", "--run-key", "nightly-7"
    )
    assert code == 2
    assert f"--run-key 'nightly-7' already names run {run['run_id']} of ops/gated_report" in err

    (deployment.gates / run["run_id"]).write_text("scheduler test")
    code, out, err = dataops("status", run["run_id"], "--url", url, "--wait", "--timeout", "90")
    assert code == 0, err
    assert out.split()[:2] == [run["run_id"], "SUCCESS"]
    code, out, _ = dataops(*trigger, "--json")
    assert code == 0
    assert json.loads(out)["run_id"] == run["run_id"]
    assert json.loads(out)["status"] == "SUCCESS"
    keyed = [run_id for run_id, tags in runs(url).items() if tags.get(RUN_KEY_TAG) == "nightly-7"]
    assert keyed == [run["run_id"]]


def test_a_failed_run_exits_1_shows_why_and_its_retry_launches_a_new_run(
    deployment: Deployment, dataops
) -> None:
    url = deployment.url
    trigger = ("trigger", "--url", url, "--select", "ops/broken_report", "--run-key", "daily-1")
    code, out, err = dataops(*trigger, "--wait")
    assert code == 1
    failed, status, _ = out.split()
    assert status == "FAILURE"
    assert f"run {failed} ended FAILURE" in err

    code, out, _ = dataops("logs", failed, "--url", url)
    assert code == 1
    assert 'Execution of step "ops__broken_report" failed.' in out
    assert "RuntimeError: upstream system is down" in out

    code, out, err = dataops(*trigger)
    assert code == 0, err
    retry = out.split()[0]
    assert retry != failed
    assert f"launched run {retry} of ops/broken_report" in err
    tags = runs(url)
    assert tags[retry][RUN_KEY_TAG] == tags[failed][RUN_KEY_TAG] == "daily-1"


def test_an_authenticating_proxy_gets_the_bearer_token(
    deployment: Deployment, guarded: str, dataops, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = runs(deployment.url)
    code, out, err = dataops("trigger", "--url", guarded, "--select", "ops/gated_report")
    assert (code, out) == (4, "")
    assert f"{guarded} refused looking up the assets (HTTP 401)" in err
    assert f"set {TOKEN_VARIABLE}" in err

    monkeypatch.setenv(TOKEN_VARIABLE, "not-the-token")
    code, _, err = dataops("status", "some-run", "--url", guarded)
    assert code == 4
    assert f"the token in {TOKEN_VARIABLE} was refused" in err
    assert "not-the-token" not in err

    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    code, _, err = dataops("status", "some-run", "--url", guarded)
    assert code == 2
    assert f"{guarded} has no run 'some-run'" in err
    assert TOKEN not in err
    assert runs(deployment.url) == before
