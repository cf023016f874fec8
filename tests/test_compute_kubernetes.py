"""Kubernetes compute, up to the API server: the Jobs and Pods dagster-k8s would submit.

No Kubernetes API server runs on this machine. Each test builds the team's executor the way a
code location does (settings -> ``compute_for`` -> ``executor``), then builds the step Job with
dagster-k8s's own ``construct_dagster_k8s_job`` exactly as its step handler does (executor config,
op tags, ``per_step_k8s_config``), and the Pipes pod with ``build_pod_body`` as ``PipesK8sClient``
does. Every manifest is validated against the Kubernetes 1.30 schema in strict mode.
"""

import json
import os
from typing import Any

import dagster as dg
import kubernetes
import kubernetes_validate
import pandas as pd
import pytest
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from dagster_k8s.pipes import build_pod_body, get_pod_name
from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR

from adapters.compute.hints import hints_for
from adapters.compute.kubernetes import KubernetesCompute, KubernetesToolRunner
from assets.analytics import assets as analytics
from assets.analytics.scoring import SCORING, customer_scores
from assets.sales import assets as sales
from config import ConfigError, load_deployment
from config.secrets import SECRET_WORDS
from platform_core.compute_factory import compute_for
from platform_core.compute_hints import compute_hints
from platform_core.data_product import data_product
from platform_core.definitions import Team

K8S_TARGETS = ("onprem", "aws", "azure", "gcp")
KUBERNETES_VERSION = "1.30.0"
RUN_ID = "5f1c2f43-0000-4000-8000-00000000abcd"
SECRET_VALUES = {
    "AWS_ACCESS_KEY_ID": "example-access-key-id-0001",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-example-secret-0001",
    "AZURE_STORAGE_KEY": "azure-example-account-key-0001",
    "AZURE_STORAGE_CONNECTION_STRING": "AccountName=x;AccountKey=azure-example-0002",
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
EXPECTED = {
    "onprem": {
        "pod_labels": {},
        "env_from": [{"secretRef": {"name": "dataops-storage-credentials-{team}"}}],
        "gpu": ({"nvidia.com/gpu.present": "true"}, [GPU_TOLERATION]),
        "spot": ({}, []),
    },
    "aws": {
        "pod_labels": {},
        "env_from": [],
        "gpu": ({}, [GPU_TOLERATION]),
        "spot": ({"eks.amazonaws.com/capacityType": "SPOT"}, []),
    },
    "azure": {
        "pod_labels": {"azure.workload.identity/use": "true"},
        "env_from": [],
        "gpu": (
            {"kubernetes.azure.com/accelerator": "nvidia"},
            [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        ),
        "spot": (
            {"kubernetes.azure.com/scalesetpriority": "spot"},
            [
                {
                    "key": "kubernetes.azure.com/scalesetpriority",
                    "operator": "Equal",
                    "value": "spot",
                    "effect": "NoSchedule",
                }
            ],
        ),
    },
    "gcp": {
        "pod_labels": {},
        "env_from": [],
        "gpu": ({"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}, [GPU_TOLERATION]),
        "spot": (
            {"cloud.google.com/gke-spot": "true"},
            [
                {
                    "key": "cloud.google.com/gke-spot",
                    "operator": "Equal",
                    "value": "true",
                    "effect": "NoSchedule",
                }
            ],
        ),
    },
}


@data_product(
    team=sales.TEAM,
    classification="internal",
    op_tags=compute_hints(cpu=2, memory="4Gi", gpu=1, spot=True),
)
def demand_model(orders: pd.DataFrame) -> pd.DataFrame:
    """A GPU-hungry product that tolerates spot nodes."""
    return orders


SALES = [sales.raw_orders, sales.orders, sales.customers]
ANALYTICS = [
    analytics.revenue_by_country,
    analytics.customer_value,
    analytics.regional_daily_revenue,
    customer_scores,
]


def deployment_env(target: str, **extra: str) -> dict[str, str]:
    return {
        "DATAOPS_TARGET": target,
        "DATAOPS_ENV": "prod",
        "DATAOPS_BUCKET": "dataops-prod",
        **extra,
    }


def compute(target: str, **extra: str) -> KubernetesCompute:
    """The adapter a code server builds, its process environment plus the deployment's."""
    adapter = compute_for(load_deployment({**os.environ, **deployment_env(target, **extra)}))
    assert isinstance(adapter, KubernetesCompute)
    return adapter


def executor_config(executor: dg.ExecutorDefinition) -> dict[str, Any]:
    """The config the executor receives at run time: its configured values plus schema defaults."""
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def step_job(executor: dg.ExecutorDefinition, assets_def: dg.AssetsDefinition) -> dict[str, Any]:
    """The Job ``K8sStepHandler.launch_step`` submits for this asset's step, as a manifest.

    Mirrors ``k8s_job_executor`` and ``K8sStepHandler._get_container_context``: executor config,
    then the op's ``dagster-k8s/config`` tag, then its ``per_step_k8s_config`` entry. The run
    launcher part is what the official Helm chart's K8sRunLauncher contributes.
    """
    config = executor_config(executor)
    context = K8sContainerContext(
        image_pull_policy=config.get("image_pull_policy"),
        image_pull_secrets=config.get("image_pull_secrets"),
        service_account_name=config.get("service_account_name"),
        env_config_maps=config.get("env_config_maps"),
        env_secrets=config.get("env_secrets"),
        env_vars=config.get("env_vars"),
        volume_mounts=config.get("volume_mounts"),
        volumes=config.get("volumes"),
        labels=config.get("labels"),
        namespace=config.get("job_namespace"),
        resources=config.get("resources"),
        scheduler_name=config.get("scheduler_name"),
        security_context=config.get("security_context"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(config.get("step_k8s_config", {})),
    )
    op = assets_def.node_def
    context = context.merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op.tags))
    ).merge(
        K8sContainerContext(
            run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
                config["per_step_k8s_config"].get(op.name, {})
            )
        )
    )
    job_config = DagsterK8sJobConfig(
        job_image=config["job_image"],
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql-secret",
    )
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{op.name.replace('_', '-')}",
        pod_name=f"dagster-step-{op.name.replace('_', '-')}",
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": "__ASSET_JOB", "dagster/op": op.name, "dagster/run-id": RUN_ID},
        env_vars=[
            {"name": "DAGSTER_RUN_JOB_NAME", "value": "__ASSET_JOB"},
            {"name": "DAGSTER_RUN_STEP_KEY", "value": op.name},
        ],
    )
    manifest = kubernetes.client.ApiClient().sanitize_for_serialization(job)
    assert context.namespace == config["job_namespace"]
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": context.namespace}}


def pipes_pod(adapter: KubernetesCompute, team: str, assets_def: dg.AssetsDefinition) -> dict:
    """The Pod ``PipesK8sClient.run`` creates for the team's tool, as a manifest."""
    (op,) = hints_for([assets_def])
    request = adapter.pipes_resource(team).pod_request(SCORING, op)
    pod = build_pod_body(
        pod_name=get_pod_name(RUN_ID, op.op_name),
        image=request["image"],
        command=None,
        env_vars={
            DAGSTER_PIPES_CONTEXT_ENV_VAR: "eyJleHRyYXMiOiB7fX0=",
            DAGSTER_PIPES_MESSAGES_ENV_VAR: "eyJzdGRpbyI6ICJzdGRlcnIifQ==",
            **request["env"],
        },
        base_pod_meta=request["base_pod_meta"],
        base_pod_spec=request["base_pod_spec"],
    )
    manifest = kubernetes.client.ApiClient().sanitize_for_serialization(pod)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        **manifest,
        "metadata": {**manifest["metadata"], "namespace": request["namespace"]},
    }


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def env_of(container: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def assert_no_credentials(*documents: Any) -> None:
    text = json.dumps(documents)
    for name, value in SECRET_VALUES.items():
        assert value not in text, f"{name}'s value leaked into a manifest or config"
        assert f'"{name}"' not in text


def assert_team_pod(pod_meta: dict, pod_spec: dict, target: str, team: str, product: str) -> None:
    assert pod_meta["labels"] == {
        **pod_meta["labels"],
        "app.kubernetes.io/part-of": "dataops-paas",
        "dataops.io/team": team,
        "dataops.io/environment": "prod",
        "dataops.io/data-product": product,
        **EXPECTED[target]["pod_labels"],
    }
    assert pod_spec["serviceAccountName"] == f"dataops-{team}"
    (container,) = pod_spec["containers"]
    assert container.get("envFrom", []) == [
        {"secretRef": {"name": ref["secretRef"]["name"].replace("{team}", team)}}
        for ref in EXPECTED[target]["env_from"]
    ]
    env = env_of(container)
    assert env["DATAOPS_TARGET"] == target
    assert env["DATAOPS_ENV"] == "prod"
    assert env["DATAOPS_BUCKET"] == "dataops-prod"


@pytest.fixture
def cloud_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the code server's environment, as a developer's shell would have them."""
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("target", K8S_TARGETS)
@pytest.mark.parametrize(
    ("team", "team_assets", "assets_def"),
    [("sales", SALES, sales.orders), ("analytics", ANALYTICS, analytics.customer_value)],
)
def test_step_job_of_each_team(
    target: str,
    team: str,
    team_assets: list[dg.AssetsDefinition],
    assets_def: dg.AssetsDefinition,
    cloud_credentials: None,
) -> None:
    adapter = compute(target)
    executor = adapter.executor(team, team_assets)
    job = step_job(executor, assets_def)
    validate(job)

    assert job["metadata"]["namespace"] == f"dataops-{team}-prod"
    assert job["metadata"]["labels"]["dataops.io/team"] == team
    template = job["spec"]["template"]
    product = ".".join(assets_def.key.path)
    assert_team_pod(template["metadata"], template["spec"], target, team, product)
    (container,) = template["spec"]["containers"]
    assert container["image"] == f"registry.example.com/dataops/dataops-{team}:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == ["dagster", "api", "execute_step"]
    assert "resources" not in container or not container["resources"]
    assert "nodeSelector" not in template["spec"]
    assert "tolerations" not in template["spec"]
    assert executor_config(executor)["max_concurrent"] == 4
    assert_no_credentials(job, executor_config(executor))


@pytest.mark.parametrize("target", K8S_TARGETS)
def test_pipes_pod_has_the_team_identity_and_the_asset_hints(
    target: str, cloud_credentials: None
) -> None:
    pod = pipes_pod(compute(target), "analytics", customer_scores)
    validate(pod)

    assert pod["metadata"]["namespace"] == "dataops-analytics-prod"
    assert_team_pod(pod["metadata"], pod["spec"], target, "analytics", "analytics.customer_scores")
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example.com/dataops/dataops-analytics-scoring:0.1.0"
    assert "command" not in container
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert pod["spec"]["restartPolicy"] == "Never"
    assert DAGSTER_PIPES_CONTEXT_ENV_VAR in env_of(container)
    assert_no_credentials(pod)


@pytest.mark.parametrize("target", K8S_TARGETS)
def test_a_hint_changes_the_job_of_that_asset_only(target: str) -> None:
    adapter = compute(target)
    plain = adapter.executor("sales", SALES)
    hinted = adapter.executor("sales", [*SALES, demand_model])

    for assets_def in SALES:
        assert step_job(hinted, assets_def) == step_job(plain, assets_def)

    job = step_job(hinted, demand_model)
    validate(job)
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    gpu_selector, gpu_tolerations = EXPECTED[target]["gpu"]
    spot_selector, spot_tolerations = EXPECTED[target]["spot"]
    assert spec.get("nodeSelector", {}) == {**gpu_selector, **spot_selector}
    assert spec.get("tolerations", []) == [*gpu_tolerations, *spot_tolerations]
    assert job["spec"]["template"]["metadata"]["labels"]["dataops.io/data-product"] == (
        "sales.demand_model"
    )


def test_spot_only_hint_places_without_gpu() -> None:
    @data_product(team="sales", classification="internal", op_tags=compute_hints(spot=True))
    def nightly_rollup() -> pd.DataFrame:
        return pd.DataFrame()

    spec = step_job(compute("gcp").executor("sales", [nightly_rollup]), nightly_rollup)["spec"]
    pod_spec = spec["template"]["spec"]
    assert pod_spec["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert [t["key"] for t in pod_spec["tolerations"]] == ["cloud.google.com/gke-spot"]
    assert not pod_spec["containers"][0].get("resources")


@pytest.mark.parametrize(
    ("tags", "hint"),
    [
        (compute_hints(cpu="-1"), "dataops/compute-cpu='-1'"),
        (compute_hints(memory="lots"), "dataops/compute-memory='lots'"),
        (compute_hints(memory="0"), "dataops/compute-memory='0'"),
        (compute_hints(gpu=-1), "dataops/compute-gpu='-1'"),
        ({"dataops/compute-spot": "maybe"}, "dataops/compute-spot='maybe'"),
        ({"dataops/compute-cpus": "2"}, "dataops/compute-cpus"),
    ],
)
@pytest.mark.parametrize("target", ["local", *K8S_TARGETS])
def test_invalid_hints_fail_at_load_naming_asset_and_hint(
    target: str, tags: dict[str, str], hint: str
) -> None:
    @data_product(team="sales", classification="internal", op_tags=tags)
    def forecast() -> pd.DataFrame:
        return pd.DataFrame()

    adapter = compute_for(load_deployment(deployment_env(target)))
    with pytest.raises(ConfigError) as error:
        adapter.executor("sales", [*SALES, forecast])
    assert "sales/forecast" in str(error.value)
    assert hint in str(error.value)


def test_env_sourced_settings_reach_the_pods_and_the_code_server_image_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGSTER_CURRENT_IMAGE", "registry.internal/dataops-sales:sha-1234")
    adapter = compute(
        "aws",
        DATAOPS_STORAGE_PREFIX="lake",
        DATAOPS__COMPUTE__MAX_CONCURRENT="8",
        DATAOPS__COMPUTE__IMAGE_PULL_REFS="[regcred]",
    )
    executor = adapter.executor("sales", SALES)
    config = executor_config(executor)
    job = step_job(executor, sales.orders)
    validate(job)

    spec = job["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    assert spec["containers"][0]["image"] == "registry.internal/dataops-sales:sha-1234"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert config["max_concurrent"] == 8
    assert env["DATAOPS_STORAGE_PREFIX"] == "lake"
    assert env["DATAOPS__COMPUTE__MAX_CONCURRENT"] == "8"
    assert (
        load_deployment({k: v for k, v in env.items() if k.startswith("DATAOPS")}).compute.values
        == load_deployment(
            deployment_env(
                "aws",
                DATAOPS_STORAGE_PREFIX="lake",
                DATAOPS__COMPUTE__MAX_CONCURRENT="8",
                DATAOPS__COMPUTE__IMAGE_PULL_REFS="[regcred]",
            )
        ).compute.values
    )


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("DATAOPS__COMPUTE__MAX_CONCURRENT", "0", "compute.max_concurrent"),
        ("DATAOPS__COMPUTE__IMAGE_PULL_POLICY", "Sometimes", "compute.image_pull_policy"),
        ("DATAOPS__COMPUTE__SPOT_TOLERATIONS", "[{effect: x}]", "compute.spot_tolerations"),
        ("DATAOPS__COMPUTE__POD_LABELS", "{tier: 1}", "compute.pod_labels"),
        ("DATAOPS__COMPUTE__EXECUTOR", "k8s", "compute.executor"),
    ],
)
def test_bad_compute_settings_name_the_setting_and_its_source(
    variable: str, value: str, setting: str
) -> None:
    with pytest.raises(ConfigError) as error:
        compute("azure", **{variable: value})
    assert setting in str(error.value)
    assert f"environment variable {variable}" in str(error.value)


def test_onprem_pods_get_the_endpoint_by_value_and_credentials_by_secret_reference(
    cloud_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://minio.storage.svc:9000")
    job = step_job(compute("onprem").executor("sales", SALES), sales.orders)
    validate(job)

    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["AWS_ENDPOINT_URL_S3"] == "https://minio.storage.svc:9000"
    assert container["envFrom"] == [{"secretRef": {"name": "dataops-storage-credentials-sales"}}]
    assert_no_credentials(job)


def test_forwarding_a_credential_variable_is_refused(cloud_credentials: None) -> None:
    with pytest.raises(ConfigError, match="compute.forward_env names AWS_SECRET_ACCESS_KEY"):
        compute("onprem", DATAOPS__COMPUTE__FORWARD_ENV="[AWS_REGION, AWS_SECRET_ACCESS_KEY]")


@pytest.mark.parametrize(
    "variable",
    [
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_SECRET",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DATABASE_URL",
        "MY_SERVICE_APIKEY",
        "LDAP_PASSWD",
    ],
)
def test_forwarding_any_sdk_credential_variable_is_refused_with_the_way_in(variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        compute("aws", DATAOPS__COMPUTE__FORWARD_ENV=f"[AWS_REGION, {variable}]")
    message = str(error.value)
    assert f"compute.forward_env names {variable}" in message
    assert "workload identity" in message and "credentials Secret" in message


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("AWS_ENDPOINT_URL_S3", "https://admin:hunter2@minio.example:9000", "password"),
        (
            "AZURE_STORAGE_ACCOUNT_URL",
            "https://acct.blob.core.windows.net/?sv=1&sig=abc%3D",
            "signed",
        ),
        ("CUSTOM_ENDPOINT", "DefaultEndpointsProtocol=https;AccountKey=abc==", "account key"),
    ],
)
def test_forwarded_values_carrying_a_secret_are_refused_without_showing_it(
    name: str, value: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        compute("onprem", DATAOPS__COMPUTE__FORWARD_ENV=f"[{name}]")
    message = str(error.value)
    assert name in message and reason in message
    assert value not in message and "hunter2" not in message


@pytest.mark.parametrize("target", K8S_TARGETS)
def test_team_definitions_run_steps_and_tools_on_kubernetes(
    target: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_env = request.getfixturevalue(f"{target}_target_env")
    for name, value in target_env.items():
        monkeypatch.setenv(name, value)
    defs = Team("analytics", ANALYTICS, upstream=[dg.AssetKey(["sales", "orders"])]).definitions()

    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "dataops_analytics_k8s"
    assert isinstance(defs.resources["pipes"], KubernetesToolRunner)
    manifest = step_job(job.executor_def, customer_scores)
    validate(manifest)
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert env_of(container)["DATAOPS_TARGET"] == target
    assert env_of(container)["DATAOPS_BUCKET"] == os.environ["DATAOPS_BUCKET"]
    credentials = [
        value
        for name, value in target_env.items()
        if any(word in name.lower() for word in (*SECRET_WORDS, "connection_string"))
    ]
    assert all(value not in json.dumps(manifest) for value in credentials)
