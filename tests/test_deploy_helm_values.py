"""Helm values for the official Dagster charts: schema-valid offline, true to the conventions."""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Any

import pytest
from k8s_offline import (
    CHART_SCHEMA,
    REMOTE_DEFINITIONS,
    USER_DEPLOYMENTS_SCHEMA,
    helm_merge,
    load_yaml,
    values_errors,
)

from config import ENVIRONMENTS, TARGETS
from platform_core.images import DEFAULT_REGISTRY, DEFAULT_TAG, discover_teams
from platform_core.materialize import workspace_locations

HELM = Path(__file__).resolve().parent.parent / "deploy" / "helm"
CHART = HELM / "dagster"
USER_DEPLOYMENTS = HELM / "user-deployments"
KUBERNETES_TARGETS = [target for target in TARGETS if target != "local"]
TEAMS = discover_teams()
CODE_SERVER_PORT = 4000
IDENTITY_ANNOTATION = {
    "aws": "eks.amazonaws.com/role-arn",
    "azure": "azure.workload.identity/client-id",
    "gcp": "iam.gke.io/gcp-service-account",
}
AZURE_POD_LABEL = "azure.workload.identity/use"
COMBINATIONS = list(product(KUBERNETES_TARGETS, ENVIRONMENTS))
TEAM_RELEASES = list(product(KUBERNETES_TARGETS, ENVIRONMENTS, TEAMS))


def chart_values(target: str, environment: str, per_team: bool = False) -> dict[str, Any]:
    layers = [CHART / "values.yaml", CHART / f"values-{target}-{environment}.yaml"]
    if per_team:
        layers.append(CHART / f"values-per-team-{environment}.yaml")
    return helm_merge(*(load_yaml(path) for path in layers))


def launcher(values: dict[str, Any]) -> dict[str, Any]:
    return values["runLauncher"]["config"]["k8sRunLauncher"]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in deployment.get("env", [])}


def check_team_entry(deployment: dict[str, Any], team: str, target: str) -> None:
    modules = {location.name: location.module for location in workspace_locations()}
    assert deployment["image"]["repository"] == f"{DEFAULT_REGISTRY}/dataops-{team}"
    assert deployment["image"]["tag"] == DEFAULT_TAG
    assert deployment["codeServerArgs"] == ["-m", modules[team]]
    assert deployment["port"] == CODE_SERVER_PORT
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["labels"]["dataops.io/team"] == team
    assert deployment["labels"]["app.kubernetes.io/part-of"] == "dataops-paas"
    secrets = [source["name"] for source in deployment.get("envSecrets", [])]
    assert secrets == ([f"dataops-storage-credentials-{team}"] if target == "onprem" else [])
    assert (deployment["labels"].get(AZURE_POD_LABEL) == "true") == (target == "azure")


def test_every_target_and_environment_has_a_values_file() -> None:
    expected = {f"values-{t}-{e}.yaml" for t, e in COMBINATIONS}
    expected |= {f"values-per-team-{e}.yaml" for e in ENVIRONMENTS} | {"values.yaml"}
    assert {path.name for path in CHART.glob("*.yaml")} == expected
    expected_teams = {f"{t}/{e}/{team}.yaml" for t, e in COMBINATIONS for team in TEAMS}
    found = {str(path.relative_to(USER_DEPLOYMENTS)) for path in USER_DEPLOYMENTS.glob("*/*/*")}
    assert found == expected_teams


@pytest.mark.parametrize("per_team", [False, True], ids=["single-release", "per-team"])
@pytest.mark.parametrize(("target", "environment"), COMBINATIONS)
def test_chart_values_validate_against_the_chart_schema(
    target: str, environment: str, per_team: bool
) -> None:
    assert values_errors(chart_values(target, environment, per_team), CHART_SCHEMA) == []


@pytest.mark.parametrize(("target", "environment", "team"), TEAM_RELEASES)
def test_per_team_values_validate_against_the_user_deployments_schema(
    target: str, environment: str, team: str
) -> None:
    values = load_yaml(USER_DEPLOYMENTS / target / environment / f"{team}.yaml")
    assert values_errors(values, USER_DEPLOYMENTS_SCHEMA) == []


@pytest.mark.parametrize(("target", "environment"), COMBINATIONS)
def test_run_launcher_daemon_and_postgres(target: str, environment: str) -> None:
    values = chart_values(target, environment)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert launcher(values)["jobNamespace"] == "dagster"
    assert launcher(values)["loadInclusterConfig"] is True
    assert launcher(values)["labels"]["dataops.io/environment"] == environment
    launcher_secrets = [source["name"] for source in launcher(values)["envSecrets"]]
    assert launcher_secrets == []
    assert values["dagsterDaemon"]["enabled"] is True
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"
    assert values["generatePostgresqlPasswordSecret"] is False
    postgres = values["postgresql"]
    assert "postgresqlPassword" not in postgres
    assert postgres["postgresqlScheme"] == "postgresql+psycopg2"
    if environment == "dev":
        assert postgres["enabled"] is True
        assert postgres["existingSecret"] == "dagster-postgresql-secret"
    else:
        assert postgres["enabled"] is False
        assert postgres["postgresqlHost"]


@pytest.mark.parametrize(("target", "environment"), COMBINATIONS)
def test_one_code_location_per_team_with_its_image_and_settings(
    target: str, environment: str
) -> None:
    user_deployments = chart_values(target, environment)["dagster-user-deployments"]
    assert user_deployments["enabled"] is True
    assert user_deployments["enableSubchart"] is True
    deployments = user_deployments["deployments"]
    assert sorted(deployment["name"] for deployment in deployments) == TEAMS
    for deployment in deployments:
        check_team_entry(deployment, deployment["name"], target)
        env = env_of(deployment)
        assert env["DATAOPS_TARGET"] == target
        assert env["DATAOPS_ENV"] == environment
        assert env["DATAOPS_BUCKET"]
        assert deployment["labels"]["dataops.io/environment"] == environment


@pytest.mark.parametrize(("target", "environment"), COMBINATIONS)
def test_dagster_service_account_carries_the_target_identity(target: str, environment: str) -> None:
    values = chart_values(target, environment)
    assert values["serviceAccount"]["name"] == values["global"]["serviceAccountName"] == "dagster"
    annotations = values["serviceAccount"].get("annotations", {})
    if target in IDENTITY_ANNOTATION:
        assert set(annotations) == {IDENTITY_ANNOTATION[target]}
    else:
        assert annotations == {}
    azure_label = launcher(values)["labels"].get(AZURE_POD_LABEL)
    assert (azure_label == "true") == (target == "azure")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_per_team_scheme_points_the_workspace_at_each_team_namespace(environment: str) -> None:
    values = chart_values("aws", environment, per_team=True)
    assert values["dagster-user-deployments"]["enableSubchart"] is False
    workspace = values["dagsterWebserver"]["workspace"]
    assert workspace["enabled"] is True
    assert {server["name"]: server["host"] for server in workspace["servers"]} == {
        team: f"{team}.dataops-{team}-{environment}.svc.cluster.local" for team in TEAMS
    }
    assert {server["port"] for server in workspace["servers"]} == {CODE_SERVER_PORT}


@pytest.mark.parametrize(("target", "environment", "team"), TEAM_RELEASES)
def test_per_team_release_runs_under_the_team_service_account(
    target: str, environment: str, team: str
) -> None:
    values = load_yaml(USER_DEPLOYMENTS / target / environment / f"{team}.yaml")
    assert values["global"]["serviceAccountName"] == f"dataops-{team}"
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"
    assert values["serviceAccount"] == {
        "create": False,
        "name": f"dataops-{team}",
        "annotations": {},
    }
    [deployment] = values["deployments"]
    assert deployment["name"] == team
    check_team_entry(deployment, team, target)
    assert deployment["envConfigMaps"] == [{"name": "dataops-settings"}]
    assert deployment["labels"]["dataops.io/environment"] == environment


def test_schema_check_rejects_typos_missing_keys_and_bad_kubernetes_types() -> None:
    values = chart_values("aws", "prod")
    values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespce"] = "dagster"
    values["dagsterDaemon"]["enabled"] = "yes"
    values["dagster-user-deployments"]["deployments"].append(
        {"name": "broken", "image": {"repository": "x", "pullPolicy": "IfNotPresent"}}
    )
    values["dagster-user-deployments"]["deployments"][0]["envSecrets"] = [{"nmae": "typo"}]
    errors = "\n".join(values_errors(values, CHART_SCHEMA))
    assert "runLauncher.config.k8sRunLauncher" in errors
    assert "dagsterDaemon.enabled: 'yes' is not of type 'boolean'" in errors
    assert "dagster-user-deployments.deployments.2: 'port' is a required property" in errors
    assert "dagster-user-deployments.deployments.0.envSecrets.0" in errors


def test_kubernetes_references_resolve_offline_to_strict_definitions() -> None:
    schema_text = CHART_SCHEMA.read_text()
    assert REMOTE_DEFINITIONS in schema_text
    values = chart_values("gcp", "test")
    values["dagsterDaemon"]["env"] = [{"name": "A", "value": "b", "vaule": "typo"}]
    errors = values_errors(values, CHART_SCHEMA)
    assert any(error.startswith("dagsterDaemon.env") for error in errors)
    values["dagsterDaemon"]["env"] = [{"name": "A", "value": "b"}]
    assert values_errors(values, CHART_SCHEMA) == []
