"""The kustomize overlays per target: rendered with kubectl, strictly valid for Kubernetes 1.30."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_offline import kustomize, validate_manifest

from config import ENVIRONMENTS, TARGETS
from platform_core.api.commands import add_api_commands
from platform_core.images import discover_teams

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
OVERLAYS = DEPLOY / "k8s" / "overlays"
KUBERNETES_TARGETS = [target for target in TARGETS if target != "local"]
TEAMS = discover_teams()
TEAM_NAMESPACES = {
    f"dataops-{team}-{environment}": (team, environment)
    for team in TEAMS
    for environment in ENVIRONMENTS
}
IDENTITY_ANNOTATION = {
    "aws": ("eks.amazonaws.com/role-arn", "arn:aws:iam::{account}:role/dataops-{team}-{env}"),
    "azure": ("azure.workload.identity/client-id", None),
    "gcp": (
        "iam.gke.io/gcp-service-account",
        "dataops-{team}-{env}@{project}.iam.gserviceaccount.com",
    ),
}
API_IDENTITY = {
    "aws": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/dataops-api-prod"},
    "gcp": {
        "iam.gke.io/gcp-service-account": "dataops-api-prod@example-project.iam.gserviceaccount.com"
    },
    "azure": {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"},
    "onprem": {},
}
NEEDED_PERMISSIONS = [
    ("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")
] + [
    ("batch", "jobs/status", "get"),
    ("", "pods", "get"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "create"),
    ("", "pods", "delete"),
    ("", "pods/log", "get"),
    ("", "pods/status", "get"),
    ("", "events", "list"),
]


@pytest.fixture(scope="module", params=KUBERNETES_TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, kustomize(OVERLAYS / request.param)


def find(docs: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict]:
    return [
        doc
        for doc in docs
        if doc["kind"] == kind
        and (namespace is None or doc["metadata"].get("namespace") == namespace)
    ]


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in rules
    )


def test_one_overlay_per_kubernetes_target() -> None:
    assert {path.name for path in OVERLAYS.iterdir()} == set(KUBERNETES_TARGETS)


def test_every_document_is_valid_kubernetes_1_30(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    assert docs
    for doc in docs:
        validate_manifest(doc)


def test_strict_validation_rejects_unknown_fields() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "lables": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(namespace)


def test_namespaces_per_team_and_environment(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    namespaces = {doc["metadata"]["name"]: doc for doc in find(docs, "Namespace")}
    assert set(namespaces) == {"dagster", *TEAM_NAMESPACES}
    for name, (team, environment) in TEAM_NAMESPACES.items():
        labels = namespaces[name]["metadata"]["labels"]
        assert labels["dataops.io/team"] == team
        assert labels["dataops.io/environment"] == environment
        assert labels["app.kubernetes.io/part-of"] == "dataops-paas"
    names = Counter(
        (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]) for doc in docs
    )
    assert max(names.values()) == 1


def test_service_accounts_carry_the_target_identity(rendered: tuple[str, list[dict]]) -> None:
    target, docs = rendered
    for namespace, (team, environment) in TEAM_NAMESPACES.items():
        [account] = find(docs, "ServiceAccount", namespace)
        assert account["metadata"]["name"] == f"dataops-{team}"
        annotations = account["metadata"].get("annotations", {})
        if target not in IDENTITY_ANNOTATION:
            assert annotations == {}
            continue
        key, pattern = IDENTITY_ANNOTATION[target]
        assert set(annotations) == {key}
        if pattern:
            expected = pattern.format(
                account="111122223333", project="example-project", team=team, env=environment
            )
            assert annotations[key] == expected


def test_rbac_lets_the_launcher_and_the_executor_run_jobs(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    for namespace, (team, _) in TEAM_NAMESPACES.items():
        [role] = find(docs, "Role", namespace)
        for permission in NEEDED_PERMISSIONS:
            assert allows(role["rules"], *permission), (namespace, permission)
        assert not allows(role["rules"], "", "secrets", "get")
        [binding] = find(docs, "RoleBinding", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        subjects = {(s["kind"], s["namespace"], s["name"]) for s in binding["subjects"]}
        assert subjects == {
            ("ServiceAccount", namespace, f"dataops-{team}"),
            ("ServiceAccount", "dagster", "dagster"),
        }


def test_secrets_are_templates_without_values(rendered: tuple[str, list[dict]]) -> None:
    target, docs = rendered
    secrets = find(docs, "Secret")
    for secret in secrets:
        assert "data" not in secret
        assert set(secret["stringData"].values()) == {""}
    keys = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): set(s["stringData"]) for s in secrets
    }
    assert not any(name == "dataops-storage-credentials" for _, name in keys)
    for namespace in ["dagster", *TEAM_NAMESPACES]:
        assert keys[(namespace, "dagster-postgresql-secret")] == {"postgresql-password"}
        for team in TEAMS:
            credentials = keys.get((namespace, f"dataops-storage-credentials-{team}"))
            if target == "onprem" and (
                namespace == "dagster" or TEAM_NAMESPACES[namespace][0] == team
            ):
                assert credentials == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
            else:
                assert credentials is None


def test_settings_and_instance_in_every_team_namespace(rendered: tuple[str, list[dict]]) -> None:
    target, docs = rendered
    instance = yaml.safe_load((DEPLOY / "instance" / "dagster.yaml").read_text())
    for namespace, (_, environment) in TEAM_NAMESPACES.items():
        config_maps = {
            doc["metadata"]["name"]: doc["data"] for doc in find(docs, "ConfigMap", namespace)
        }
        assert set(config_maps) == {"dataops-settings", "dagster-instance"}
        settings = config_maps["dataops-settings"]
        assert settings["DATAOPS_TARGET"] == target
        assert settings["DATAOPS_ENV"] == environment
        assert settings["DATAOPS_BUCKET"] == f"dataops-{environment}"
        assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_DB"} <= set(
            settings
        )
        assert not any("PASSWORD" in key or "SECRET" in key for key in settings)
        assert yaml.safe_load(config_maps["dagster-instance"]["dagster.yaml"]) == instance
    endpoint_settings = {
        "onprem": "AWS_ENDPOINT_URL_S3",
        "aws": "AWS_REGION",
        "azure": "AZURE_STORAGE_ACCOUNT_URL",
    }
    if target in endpoint_settings:
        for doc in find(docs, "ConfigMap"):
            if doc["metadata"]["name"] == "dataops-settings":
                assert doc["data"][endpoint_settings[target]]


def _system_docs(rendered: tuple[str, list[dict]]) -> tuple[str, dict[tuple[str, str], dict]]:
    target, docs = rendered
    return target, {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in docs
        if doc["metadata"].get("namespace") == "dagster"
    }


def test_the_api_runs_under_its_own_identity(rendered: tuple[str, list[dict]]) -> None:
    target, docs = _system_docs(rendered)
    account = docs["ServiceAccount", "dataops-api"]
    assert account["metadata"].get("annotations", {}) == API_IDENTITY[target]
    assert account["automountServiceAccountToken"] is False
    pod = docs["Deployment", "dataops-api"]["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "dataops-api"
    assert not any(
        doc["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(s["name"] == "dataops-api" for s in doc.get("subjects", []))
        for doc in docs.values()
    )
    if target == "azure":
        assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"


def test_deployment_service_probes_and_resources(rendered: tuple[str, list[dict]]) -> None:
    target, docs = _system_docs(rendered)
    deployment = docs["Deployment", "dataops-api"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    probes = {name: container[f"{name}Probe"]["httpGet"] for name in ("startup", "liveness")}
    probes["readiness"] = container["readinessProbe"]["httpGet"]
    assert {p["path"] for p in probes.values()} == {"/healthz", "/readyz"}
    [port] = container["ports"]
    assert all(p["port"] == port["name"] for p in probes.values())
    parser = argparse.ArgumentParser(prog="dataops")
    add_api_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(container["command"][1:])
    assert (container["command"][0], args.port) == ("dataops", port["containerPort"])
    service = docs["Service", "dataops-api"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    settings = docs["ConfigMap", "dataops-settings"]["data"]
    assert settings["DATAOPS_TARGET"] == target
    assert not any("SECRET" in key or "PASSWORD" in key for key in settings)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert ("ConfigMap", volumes["instance"]["configMap"]["name"]) in docs
    claim = volumes["tokens"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in docs
    secret_refs = [
        e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    ]
    assert all(("Secret", name) in docs for name in secret_refs)
    assert docs["Secret", "dataops-api"]["stringData"] == {"DATAOPS_API_SIGNING_KEY": ""}
