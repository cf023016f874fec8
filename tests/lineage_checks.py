"""What every set of emitted OpenLineage events must satisfy, on any target.

Events validate against the OpenLineage JSON Schemas kept in ``tests/openlineage_spec`` (the core
schema, and each facet against the schema its ``_schemaURL`` names) and the platform's own facet
schema; every facet must name a schema we hold. Dataset identities must map one-to-one onto the
``dagster/uri`` of each product on the target, and the analytics team's inputs must be exactly the
sales team's outputs, so cross-team lineage joins up in any catalog.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from platform_core.io_manager import partition_path
from platform_core.lineage.facets import SCHEMAS_DIR

SPEC_DIR = Path(__file__).parent / "openlineage_spec"
SCHEMA_FILES = [
    SPEC_DIR / "OpenLineage.json",
    *sorted((SPEC_DIR / "facets").glob("*.json")),
    *sorted(SCHEMAS_DIR.glob("*.json")),
]
SCHEMAS = {schema["$id"]: schema for schema in (json.loads(p.read_text()) for p in SCHEMA_FILES)}
REGISTRY = Registry().with_resources(
    (schema_id, Resource.from_contents(schema, default_specification=DRAFT202012))
    for schema_id, schema in SCHEMAS.items()
)
CORE = SCHEMAS["https://openlineage.io/spec/2-0-2/OpenLineage.json"]
AZURITE_ACCOUNT = "devstoreaccount1"


def _errors(schema: dict, instance: Any) -> list[str]:
    validator = Draft202012Validator(
        schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def _facets(event: dict) -> Iterator[tuple[str, str, dict]]:
    for where, holder in [("run", event["run"]), ("job", event["job"])]:
        for key, facet in holder.get("facets", {}).items():
            yield where, key, facet
    for side in ("inputs", "outputs"):
        for dataset in event.get(side, []):
            for group in ("facets", "inputFacets", "outputFacets"):
                for key, facet in dataset.get(group, {}).items():
                    yield f"{side}:{dataset['name']}:{group}", key, facet


def validation_errors(event: dict) -> list[str]:
    """Every way ``event`` breaks the core schema or one of its facets' schemas."""
    errors = _errors(CORE, event)
    datetime.fromisoformat(event["eventTime"])
    for where, key, facet in _facets(event):
        schema_id = facet.get("_schemaURL", "").split("#")[0]
        schema = SCHEMAS.get(schema_id)
        if schema is None or key not in schema.get("properties", {}):
            errors.append(f"{where}.{key}: no schema held for {facet.get('_schemaURL')!r}")
            continue
        errors += [f"{where}.{key}{e}" for e in _errors(schema, {key: facet})]
    return errors


def read_events(home: Path) -> list[dict]:
    """The events the file transport wrote under the instance home, in the order written."""
    path = home / "lineage" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def runs_of(events: Iterable[dict]) -> dict[str, list[dict]]:
    """Events grouped by Dagster run: a run's own events and its steps' (by the parent facet)."""
    grouped: dict[str, list[dict]] = {}
    for event in events:
        parent = event["run"]["facets"].get("parent")
        grouped.setdefault(parent["run"]["runId"] if parent else event["run"]["runId"], []).append(
            event
        )
    return grouped


def object_uri(namespace: str, name: str, partition: str | None, env: dict[str, str]) -> str:
    """The inverse of the naming: the ``dagster/uri`` a dataset identity stands for on a target."""
    key = f"{name}/{partition_path(partition)}.parquet" if partition else name
    target = env["DATAOPS_TARGET"]
    if target == "local":
        assert namespace == "file"
        return Path(key).as_uri()
    if target in ("aws", "onprem"):
        assert namespace == f"s3://{env['DATAOPS_BUCKET']}"
        return f"{namespace}/{key}"
    if target == "gcp":
        assert namespace == f"gs://{env['DATAOPS_BUCKET']}"
        return f"{namespace}/{key}"
    container = env["DATAOPS_BUCKET"]
    assert namespace == f"wasbs://{container}@{AZURITE_ACCOUNT}.dfs.core.windows.net"
    endpoint = env["AZURE_STORAGE_CONNECTION_STRING"].split("BlobEndpoint=")[1].rstrip(";")
    return f"{endpoint}/{container}/{quote(key, safe='/~')}"


def check_lineage(home: Path, env: dict[str, str], instance: dg.DagsterInstance) -> list[dict]:
    """Assert everything the issue asks of the events one ``dataops materialize --all`` emitted."""
    events = read_events(home)
    assert events, "no lineage event was written"
    for event in events:
        assert validation_errors(event) == [], (event["job"]["name"], validation_errors(event))

    for run_id, run_events in runs_of(events).items():
        own = [e for e in run_events if e["run"]["runId"] == run_id]
        assert [e["eventType"] for e in own] == ["START", "COMPLETE"], run_id
        assert run_events[0] is own[0] and run_events[-1] is own[-1], "run events frame its steps"
        for event in run_events:
            parent = event["run"]["facets"].get("parent")
            if parent:
                run_job = {key: own[0]["job"][key] for key in ("namespace", "name")}
                assert {key: parent["job"][key] for key in run_job} == run_job
                assert uuid.UUID(event["run"]["runId"]).version == 5

    produced = {}
    for event in events:
        if event["eventType"] == "COMPLETE" and "parent" in event["run"]["facets"]:
            for output in event["outputs"]:
                subset = output["outputFacets"].get("subset")
                partition = (
                    subset["outputCondition"]["partitions"][0]["identifier"] if subset else None
                )
                produced[output["namespace"], output["name"], partition] = output
    for key in instance.get_asset_keys():
        record = instance.get_latest_materialization_event(key)
        if record is None:
            continue
        materialization = record.asset_materialization
        uri = materialization.metadata["dagster/uri"].value
        matches = [
            (namespace, name)
            for namespace, name, partition in produced
            if partition == materialization.partition
            and object_uri(namespace, name, partition, env) == uri
        ]
        assert len(matches) == 1, (key.to_user_string(), uri, matches)

    def datasets(team: str, side: str) -> set[tuple[str, str]]:
        return {
            (d["namespace"], d["name"])
            for e in events
            if e["job"]["namespace"].endswith(f".{team}") and "parent" not in e["run"]["facets"]
            for d in e[side]
        }

    sales_outputs, analytics_outputs = (
        datasets("sales", "outputs"),
        datasets("analytics", "outputs"),
    )
    analytics_from_elsewhere = datasets("analytics", "inputs") - analytics_outputs
    assert analytics_from_elsewhere, "analytics runs read nothing from sales"
    assert analytics_from_elsewhere <= sales_outputs
    granted = {
        d
        for d in sales_outputs
        if d[1].endswith(("sales/orders.parquet", "sales/shares/analytics/customers.parquet"))
    }
    assert len(granted) == 2
    assert analytics_from_elsewhere == granted
    return events
