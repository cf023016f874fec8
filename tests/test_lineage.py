"""OpenLineage from the example graph on the embedded local default: facets, ids, export, sensor.

One ``materialize_all`` on a fresh instance feeds the module; the file transport's output under
the instance home is what is checked. (Schema validation, naming and the cross-team join on every
target are asserted in ``test_conformance.py`` through ``lineage_checks.check_lineage``.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from conftest import OWNER_SECRETS, deployment_environment, write_policy
from lineage_checks import read_events, runs_of, validation_errors
from locations.failing import team as broken
from openlineage.client.serde import Serde

from config import ConfigError, load_deployment
from platform_core.cli import main
from platform_core.data_product import data_product
from platform_core.definitions import Team
from platform_core.governance import CLASSIFICATION_TAG, MASKING_TAG
from platform_core.lineage.config import lineage_config
from platform_core.lineage.facets import column_lineage_facet
from platform_core.lineage.naming import DatasetId, product_dataset
from platform_core.materialize import materialize_all

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The whole example graph materialised once, with lineage to the default file transport."""
    base = tmp_path_factory.mktemp("lineage")
    env = {
        "DATAOPS_TARGET": "local",
        "DATAOPS_LOCAL_ROOT": str(base / "storage"),
        "DATAOPS__COMPUTE__EXECUTOR": "in_process",
        "DAGSTER_HOME": str(base / "home"),
        **OWNER_SECRETS,
    }
    (base / "home").mkdir()
    with deployment_environment(env), dg.DagsterInstance.get() as instance:
        assert materialize_all(instance, echo=lambda _: None)
        events = read_events(base / "home")
        yield {"env": env, "home": base / "home", "instance": instance, "events": events}


def _step_events(events: list[dict], job: str, state: str = "COMPLETE") -> list[dict]:
    return [e for e in events if e["job"]["name"] == job and e["eventType"] == state]


def _output(graph: dict, job: str) -> dict:
    [event] = _step_events(graph["events"], job)[-1:]
    [output] = event["outputs"]
    return output


def test_personal_data_columns_carry_their_tag(graph: dict) -> None:
    personal = {"key": CLASSIFICATION_TAG, "value": "pii", "field": "email"}
    for job, classification in [("sales.raw_orders", "pii"), ("sales.customers", "pii")]:
        tags = _output(graph, job)["facets"]["tags"]["tags"]
        assert {k: v for k, v in tags[0].items() if k != "source"} == {
            "key": "dataops/classification",
            "value": classification,
        }
        assert personal in [{k: t[k] for k in ("key", "value", "field") if k in t} for t in tags]
    orders_tags = _output(graph, "sales.orders")["facets"]["tags"]["tags"]
    assert [t["value"] for t in orders_tags] == ["confidential"]
    assert not any("field" in t for t in orders_tags)


def test_declared_column_lineage_joins_up_across_teams(graph: dict) -> None:
    orders = _output(graph, "sales.orders")
    raw_orders = _output(graph, "sales.raw_orders")
    net_amount = orders["facets"]["columnLineage"]["fields"]["net_amount"]["inputFields"]
    assert [(f["namespace"], f["name"], f["field"]) for f in net_amount] == [
        (raw_orders["namespace"], raw_orders["name"], "amount"),
        (raw_orders["namespace"], raw_orders["name"], "discount"),
    ]
    revenue = _output(graph, "analytics.revenue_by_country")["facets"]["columnLineage"]["fields"]
    assert {
        column: [(f["namespace"], f["name"], f["field"]) for f in spec["inputFields"]]
        for column, spec in revenue.items()
    } == {
        "country": [(orders["namespace"], orders["name"], "country")],
        "orders": [(orders["namespace"], orders["name"], "order_id")],
        "revenue": [(orders["namespace"], orders["name"], "net_amount")],
    }


def test_asset_checks_become_quality_assertions(graph: dict) -> None:
    instance: dg.DagsterInstance = graph["instance"]
    expected = {}
    for record in instance.get_run_records():
        for entry in instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ):
            evaluation = entry.dagster_event.event_specific_data
            product = "/".join(evaluation.asset_key.path[-2:])
            expected[product, evaluation.check_name] = evaluation.passed
    found = {}
    for event in graph["events"]:
        if event["eventType"] != "COMPLETE" or "parent" not in event["run"]["facets"]:
            continue
        for dataset, group in [(d, "inputFacets") for d in event["inputs"]] + [
            (d, "facets") for d in event["outputs"]
        ]:
            facet = dataset[group].get("dataQualityAssertions")
            for assertion in facet["assertions"] if facet else []:
                product = "/".join(Path(dataset["name"]).with_suffix("").parts[-2:])
                found[product, assertion["assertion"]] = assertion["success"]
    # five team checks, the orders feed's contract check and the personal-data check of each of
    # the eight products not classified pii (two of them share views)
    assert len(expected) == 14
    assert found == expected


def test_outputs_carry_statistics_version_and_residency(graph: dict) -> None:
    instance: dg.DagsterInstance = graph["instance"]
    for key in [dg.AssetKey(["sales", "orders"]), dg.AssetKey(["analytics", "customer_scores"])]:
        record = instance.get_latest_materialization_event(key)
        metadata = record.asset_materialization.metadata
        output = _output(graph, ".".join(key.path))
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == (
            metadata["dagster/row_count"].value
        )
        assert output["outputFacets"]["outputStatistics"]["size"] == (
            metadata["dataops/byte_size"].value
        )
        assert output["facets"]["version"]["datasetVersion"] == record.run_id
        assert output["facets"]["ownership"]["owners"] == [
            {"name": f"team:{key.path[0]}", "type": "team"}
        ]
        residency = output["facets"]["dataopsResidency"]
        assert {k: residency[k] for k in ("target", "environment", "storageBackend")} == {
            "target": "local",
            "environment": "dev",
            "storageBackend": "local",
        }
        assert "region" not in residency


def test_partitions_share_the_product_dataset(graph: dict) -> None:
    runs = _step_events(graph["events"], "analytics.regional_daily_revenue")
    outputs = [run["outputs"][0] for run in runs]
    assert len({(o["namespace"], o["name"]) for o in outputs}) == 1
    partitions = [
        o["outputFacets"]["subset"]["outputCondition"]["partitions"][0]["identifier"]
        for o in outputs
    ]
    assert sorted(partitions) == ["amer", "apac", "emea"]


def test_step_run_ids_are_uuid5_of_run_and_step(graph: dict) -> None:
    instance: dg.DagsterInstance = graph["instance"]
    grouped = runs_of(graph["events"])
    assert len(grouped) == len(instance.get_run_records())
    for run_id, events in grouped.items():
        step_keys = {
            entry.step_key
            for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        }
        expected = {str(uuid.uuid5(uuid.UUID(run_id), key)) for key in step_keys}
        assert {e["run"]["runId"] for e in events if e["run"]["runId"] != run_id} == expected


def test_export_rebuilds_the_same_events_every_time(
    graph: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in graph["env"].items():
        monkeypatch.setenv(name, value)
    assert main(["lineage", "export", "--output", str(tmp_path / "a")]) == 0
    assert main(["lineage", "export", "--output", str(tmp_path / "b")]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(f"{run_id}.jsonl" for run_id in runs_of(graph["events"]))
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    exported = [json.loads(line) for f in files for line in (tmp_path / "a" / f).open()]
    assert sorted(map(json.dumps, exported)) == sorted(map(json.dumps, graph["events"]))
    assert (
        main(["lineage", "export", "--since", "2999-01-01", "--output", str(tmp_path / "c")]) == 0
    )
    assert list((tmp_path / "c").iterdir()) == []


def test_a_failed_run_emits_fail_with_its_error(
    tmp_path: Path, local_target_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATAOPS__COMPUTE__EXECUTOR", "in_process")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n  - python_module:\n      module_name: locations.failing\n")
    monkeypatch.setenv("DATAOPS_POLICY_DIR", str(write_policy(tmp_path / "policy", [broken])))
    with dg.DagsterInstance.ephemeral() as instance:
        assert not materialize_all(instance, workspace=workspace, echo=lambda _: None)
        events = [
            event
            for event in read_events(Path(instance.root_directory))
            if event["job"]["name"].endswith("broken.explodes")
        ]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("materialize.broken.explodes", "START"),
        ("broken.explodes", "START"),
        ("broken.explodes", "FAIL"),
        ("materialize.broken.explodes", "FAIL"),
    ]
    for event in events:
        assert validation_errors(event) == []
    assert events[2]["run"]["facets"]["errorMessage"]["message"] == (
        "RuntimeError: upstream system is down"
    )
    assert "RuntimeError" in events[2]["run"]["facets"]["errorMessage"]["stackTrace"]
    assert events[3]["run"]["facets"]["errorMessage"]["message"]


@data_product(team="sensing", classification="internal")
def numbers() -> pd.DataFrame:
    """A product whose runs are made without any emission, for the sensor to find."""
    return pd.DataFrame({"n": [1, 2, 3]})


def test_the_daemon_sensor_emits_runs_nobody_emitted(
    tmp_path: Path, local_target_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    sensing, other_team = Team("sensing", [numbers]), Team("other", [])
    policy = write_policy(tmp_path / "policy", [sensing, other_team])
    defs = sensing.definitions(policy_dir=policy)
    [sensor] = [s for s in defs.sensors if s.name == "sensing_lineage"]
    other = other_team.definitions(policy_dir=policy).sensors[-1]
    with dg.DagsterInstance.ephemeral() as instance:
        home = Path(instance.root_directory)
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
        assert not (home / "lineage" / "events.jsonl").exists()

        assert other.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
        assert not (home / "lineage" / "events.jsonl").exists()

        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        events = read_events(home)
        assert [(e["job"]["name"], e["eventType"]) for e in events] == [
            ("materialize.sensing.numbers", "START"),
            ("sensing.numbers", "START"),
            ("sensing.numbers", "COMPLETE"),
            ("sensing.numbers.no_undeclared_personal_data", "START"),
            ("sensing.numbers.no_undeclared_personal_data", "COMPLETE"),
            ("materialize.sensing.numbers", "COMPLETE"),
        ]
        assert {e["run"]["runId"] for e in events} == {
            run.run_id,
            str(uuid.uuid5(uuid.UUID(run.run_id), "sensing__numbers")),
            str(uuid.uuid5(uuid.UUID(run.run_id), "sensing__numbers_no_undeclared_personal_data")),
        }
        assert json.loads(first.cursor)["running"] == []

        again = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )
        assert again.cursor == first.cursor
        rebuilt = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert rebuilt.cursor == first.cursor
        assert read_events(home) == events


def test_a_masked_column_is_marked_in_column_lineage() -> None:
    """No product pseudonymises yet (share views will); the facet support is proven here."""
    customers = DatasetId("s3://lake", "dataops/dev/sales/customers.parquet")
    facet = column_lineage_facet(
        dg.TableColumnLineage(
            deps_by_column={
                "customer_ref": [dg.TableColumnDep(dg.AssetKey(["sales", "customers"]), "email")],
                "country": [dg.TableColumnDep(dg.AssetKey(["sales", "customers"]), "country")],
            }
        ),
        {dg.AssetKey(["sales", "customers"]): customers},
        {"customer_ref": {MASKING_TAG: "pseudonymised"}},
    )
    serialized = Serde.to_dict(facet)
    event = {
        "eventTime": "2026-11-01T00:00:00+00:00",
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "dataops.dev.sales", "name": "sales.share"},
        "outputs": [
            {"namespace": "s3://lake", "name": "share", "facets": {"columnLineage": serialized}}
        ],
    }
    assert validation_errors(event) == []
    [masked] = serialized["fields"]["customer_ref"]["inputFields"]
    assert masked["transformations"] == [
        {
            "type": "DIRECT",
            "subtype": "TRANSFORMATION",
            "description": "pseudonymised",
            "masking": True,
        }
    ]
    assert "transformations" not in serialized["fields"]["country"]["inputFields"][0]


@pytest.mark.parametrize(
    ("uri", "partition", "expected"),
    [
        (
            "file:///srv/lake/dev/sales/orders.parquet",
            None,
            ("file", "/srv/lake/dev/sales/orders.parquet"),
        ),
        (
            "s3://lake/dataops/dev/sales/orders.parquet",
            None,
            ("s3://lake", "dataops/dev/sales/orders.parquet"),
        ),
        ("gs://lake/dataops/dev/a/b/emea.parquet", "emea", ("gs://lake", "dataops/dev/a/b")),
        (
            "https://acct.blob.core.windows.net/lake/dataops/dev/sales/orders.parquet",
            None,
            ("wasbs://lake@acct.dfs.core.windows.net", "dataops/dev/sales/orders.parquet"),
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/lake/dataops/dev/s/r/dev/x%201.csv.parquet",
            "dev/x 1.csv",
            ("wasbs://lake@devstoreaccount1.dfs.core.windows.net", "dataops/dev/s/r"),
        ),
    ],
)
def test_dataset_names_follow_the_spec(uri: str, partition: str | None, expected: tuple) -> None:
    assert product_dataset(uri, partition) == DatasetId(*expected)


def test_unknown_storage_uris_are_refused() -> None:
    with pytest.raises(ValueError, match="ftp"):
        product_dataset("ftp://host/x.parquet")
    with pytest.raises(ValueError, match="account, container and blob"):
        product_dataset("https://acct.blob.core.windows.net/lake")


def test_lineage_settings_are_checked_with_the_fix(tmp_path: Path) -> None:
    def config(**variables: str):
        environ = {f"DATAOPS__LINEAGE__{k.upper()}": v for k, v in variables.items()}
        return lineage_config(load_deployment(environ), environ)

    assert config().transport == "file"
    with pytest.raises(ConfigError, match="lineage.transport is 'kafka'.*one of: file, http"):
        config(transport="kafka")
    with pytest.raises(ConfigError, match="lineage.url is not set"):
        config(transport="http")
    with pytest.raises(ConfigError, match="OPENLINEAGE_API_KEY, which is not set"):
        config(transport="http", url="http://127.0.0.1:1", api_key_env="OPENLINEAGE_API_KEY")
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "base.yaml").write_text("lineage: {transport: http, api_key: abc}\n")
    (settings / "local.yaml").write_text("storage: {backend: local}\n")
    with pytest.raises(ConfigError, match="looks like a secret"):
        load_deployment({}, config_dir=settings)
