"""``dataops materialize``: --missing runs only what never ran, readable per-asset lines and a
summary, Dagster's event stream in a log file, every failure reported, the local instance settings.
"""

import json
import os
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from conftest import run_dataops, write_policy
from locations.failing import team as broken

from assets.sales.sample_data import SAMPLE_LANDINGS, orders_file
from platform_core.cli import main
from platform_core.dagster_home import local_instance_settings, prepare_dagster_home
from platform_core.materialize import materialize_all
from platform_core.run_log import RunLog

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
FAILING_WORKSPACE = (
    "load_from:\n  - python_module:\n      module_name: locations.failing\n"
    "      location_name: broken\n"
)
MATERIALIZED_LINE = re.compile(r"  materialized (\S+): (\d+) rows, \d+\.\d\d s")
CHECK_LINE = re.compile(r"  check (\S+): passed, \d+\.\d\d s")
LOG_LINE = re.compile(r"Dagster's event log of these runs: (.+)")


@pytest.fixture
def local(local_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    return local_target_env


def run_headers(stdout: str) -> list[str]:
    return [
        line for line in stdout.splitlines() if re.match(r"(sales|analytics|broken): \w+/", line)
    ]


def summary_row(lines: list[str], asset: str) -> list[str]:
    start = lines.index("summary:")
    row = next(line for line in lines[start:] if line.split()[:1] == [asset])
    return row.split()[1:]


def test_missing_runs_only_what_was_never_materialised(
    local: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    prepare_dagster_home()
    lines: list[str] = []
    run_log = RunLog(tmp_path / "first.log")
    with dg.DagsterInstance.get() as instance:
        assert materialize_all(instance, echo=lines.append, only_missing=True, run_log=run_log)
        first_runs = len(instance.get_runs())
        raw = instance.fetch_materializations(dg.AssetKey(["sales", "raw_orders"]), limit=100)
    uris = [r.asset_materialization.metadata["dagster/uri"].value for r in raw.records]
    assert len(uris) == len(SAMPLE_LANDINGS)
    for uri in uris:
        assert "%25" not in uri and "%2F" not in uri, uri
        assert re.search(r"/dev/sales/raw_orders/dev/landing/sales/orders/2026/11/0\d/", uri)
        assert len(pd.read_parquet(uri)) > 0

    materialized = [MATERIALIZED_LINE.fullmatch(line) for line in lines]
    assert sum(1 for m in materialized if m and m[1] == "sales/raw_orders") == len(SAMPLE_LANDINGS)
    checks = [line for line in lines if line.startswith("  check ")]
    assert checks and all(CHECK_LINE.fullmatch(line) for line in checks), checks
    assert lines[lines.index("summary:") + 1].split() == [
        "asset", "runs", "materialized", "failed", "skipped", "rows", "seconds"
    ]  # fmt: skip
    orders = sum(len(orders_file(at)) for at in SAMPLE_LANDINGS)
    raw_orders = summary_row(lines, "sales/raw_orders")
    assert raw_orders[:5] == ["7", "7", "0", "0", str(orders)]
    assert float(raw_orders[5]) > 0
    assert f"  checks: {len(checks)} passed, 0 failed" in lines
    logged = run_log.path.read_text()
    assert (
        " DEBUG " in logged and " STEP_SUCCESS " in logged and " ASSET_MATERIALIZATION " in logged
    )

    again = run_dataops(["materialize", "--missing"], local, home)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert run_headers(again.stdout) == []
    assert "nothing to materialise: every asset and partition has been materialised" in again.stdout
    assert again.stdout.strip().endswith("all data products materialized")

    landed = run_dataops(["land"], local, home)
    assert landed.returncode == 0, landed.stderr[-3000:]
    exported = run_dataops(["audit", "export"], local, home)
    lands = [r for r in map(json.loads, exported.stdout.splitlines()) if r["action"] == "land"]
    assert len(lands) == 1 and lands[0]["principal"] == "sales" and lands[0]["rows"] > 0
    assert run_dataops(["audit", "verify"], local, home).returncode == 0
    third = run_dataops(["materialize", "--missing"], local, home)
    assert third.returncode == 0, third.stdout + third.stderr[-3000:]
    headers = run_headers(third.stdout)
    assert len(headers) == 1 and headers[0].startswith("sales: sales/raw_orders [dev/landing/")
    new_partition = headers[0].removeprefix("sales: sales/raw_orders [").removesuffix("]")
    assert "/sample" not in new_partition and new_partition.endswith(".csv")
    assert summary_row(third.stdout.splitlines(), "sales/raw_orders")[:4] == ["1", "1", "0", "0"]
    assert "DEBUG" not in third.stderr
    assert "dagster.yaml" not in third.stderr
    log_file = Path(LOG_LINE.search(third.stdout)[1])
    assert log_file.parent == home / "logs"
    assert new_partition in log_file.read_text()
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == first_runs + 1
        assert new_partition in instance.get_materialized_partitions(
            dg.AssetKey(["sales", "raw_orders"])
        )


def test_every_failure_is_reported_and_independent_runs_go_on(
    local: dict[str, str], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(FAILING_WORKSPACE)
    home = tmp_path / "home"
    policy = write_policy(tmp_path / "policy", [broken])
    result = run_dataops(
        ["materialize", "--all", "--verbose", "--workspace", str(workspace)],
        {**local, "DATAOPS_POLICY_DIR": str(policy)},
        home,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"  FAILED broken/explodes: \d+\.\d\d s", lines[1]), lines
    assert "  skipped broken/after_explodes: upstream broken/explodes did not materialise" in lines
    fine = [m for m in map(MATERIALIZED_LINE.fullmatch, lines) if m and m[1] == "broken/fine"]
    assert [m[2] for m in fine] == ["3", "3"]
    total = [
        m for m in map(MATERIALIZED_LINE.fullmatch, lines) if m and m[1] == "broken/fine_total"
    ]
    assert [m[2] for m in total] == ["2"]
    assert summary_row(lines, "broken/explodes")[:4] == ["1", "0", "1", "0"]
    assert summary_row(lines, "broken/after_explodes")[:4] == ["1", "0", "0", "1"]
    assert summary_row(lines, "broken/fine")[:4] == ["2", "2", "0", "0"]
    failures = lines.index("failures (1):")
    assert lines[failures + 1].startswith(
        "  broken: FAILED step broken__explodes: RuntimeError: upstream system is down (run "
    )
    assert lines[-1] == "materialization failed"
    log_file = Path(LOG_LINE.search(result.stdout)[1])
    logged = log_file.read_text()
    assert "STEP_FAILURE" in logged and 'raise RuntimeError("upstream system is down")' in logged
    assert " - DEBUG - " in result.stderr


@pytest.mark.parametrize("choice", [[], ["--all", "--missing"]])
def test_exactly_one_of_all_and_missing(choice: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["materialize", *choice])
    assert exit_info.value.code == 2
    assert "--all" in capsys.readouterr().err


def test_dagster_home_gets_deliberate_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    home = prepare_dagster_home()
    assert home == tmp_path / ".dagster_home"
    assert os.environ["DAGSTER_HOME"] == str(home)
    assert (home / "dagster.yaml").read_text() == local_instance_settings()
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]

    @dg.asset
    def one() -> int:
        return 1

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert not instance.telemetry_enabled
        assert dg.materialize([one], instance=instance).success
    assert (home / "history" / "runs.db").exists()

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    prepare_dagster_home()
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


def test_config_shows_a_readable_uri_template(
    local: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    assert main(["config"]) == 0
    root = Path(local["DATAOPS_LOCAL_ROOT"]).resolve()
    out = capsys.readouterr().out
    assert f"storage:     LocalStorage at file://{root}/dev/<team>/<product>.parquet\n" in out
    assert "%3C" not in out
