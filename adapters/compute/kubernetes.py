"""Kubernetes compute: a pod per step through ``dagster_k8s.k8s_job_executor``, tools as Pipes pods.

Conventions shared with ``deploy/``: a team's pods run in namespace ``dataops-<team>-<env>``
under service account ``dataops-<team>`` (which carries the cloud's workload-identity
annotation), from image ``<image_registry>/dataops-<team>:<image_tag>`` unless the code server
reports its own image in ``DAGSTER_CURRENT_IMAGE``. Every pod is labelled with the platform, team,
environment and data product. What differs between clouds (GPU and spot node labels and taints,
the Azure identity pod label, the on-prem credentials Secret) is data in the target's settings.

Pods get the ``DATAOPS_*`` variables that resolve the same deployment, plus the values of the
non-secret SDK variables named by ``compute.forward_env`` (an endpoint, a region). Storage
credentials never appear here: pods get them from workload identity or, on-prem, from the Secret
named by ``compute.storage_credentials_from`` through ``envFrom``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
import yaml
from dagster_k8s import PipesK8sClient, k8s_job_executor
from dagster_k8s.utils import sanitize_k8s_label

from adapters.compute.base import ComputeAdapter, Tool, ToolRunner, max_concurrent
from platform_core.compute_hints import ComputeHints, HintedOp, hints_for
from platform_core.settings import SECRET_WORDS, ConfigError, Deployment, Section

PART_OF = "dataops-paas"
TEAM_LABEL = "dataops.io/team"
ENVIRONMENT_LABEL = "dataops.io/environment"
PRODUCT_LABEL = "dataops.io/data-product"
ENV_SOURCE = "environment variable "
DEFAULTS = {
    "image_registry": "registry.example.com/dataops",
    "image_tag": "0.1.0",
    "image_pull_policy": "IfNotPresent",
    "gpu_resource": "nvidia.com/gpu",
}
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@dataclass(frozen=True)
class Placement:
    """Node selector and tolerations that steer a pod onto a kind of node."""

    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class TeamPods:
    """Everything a team's pods share, and the per-asset part derived from compute hints."""

    namespace: str
    service_account: str
    labels: Mapping[str, str]
    image_pull_policy: str
    image_pull_refs: tuple[str, ...]
    env: Mapping[str, str]
    env_from_secrets: tuple[str, ...]
    gpu_resource: str
    gpu: Placement
    spot: Placement

    def resources(self, hints: ComputeHints) -> dict[str, dict[str, str]]:
        """Requests for cpu and memory; limits for memory and GPUs."""
        requests = {k: v for k, v in (("cpu", hints.cpu), ("memory", hints.memory)) if v}
        limits = {"memory": hints.memory} if hints.memory else {}
        if hints.gpu:
            limits[self.gpu_resource] = str(hints.gpu)
        return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}

    def placement(self, hints: ComputeHints) -> dict[str, Any]:
        """``node_selector`` and ``tolerations`` for GPU and spot, as the target names them."""
        chosen = [p for p, wanted in ((self.gpu, hints.gpu > 0), (self.spot, hints.spot)) if wanted]
        selector = {k: v for p in chosen for k, v in p.node_selector.items()}
        tolerations = [dict(t) for p in chosen for t in p.tolerations]
        return {k: v for k, v in (("node_selector", selector), ("tolerations", tolerations)) if v}

    def product_labels(self, data_product: str) -> dict[str, str]:
        return {PRODUCT_LABEL: sanitize_k8s_label(data_product)}

    def step_config(self, op: HintedOp) -> dict[str, Any]:
        """One step's ``dagster-k8s/config``-shaped overrides (deep-merged by dagster-k8s)."""
        labels = self.product_labels(op.data_product)
        config: dict[str, Any] = {
            "pod_template_spec_metadata": {"labels": labels},
            "job_metadata": {"labels": labels},
        }
        resources = self.resources(op.hints)
        if resources:
            config["container_config"] = {"resources": resources}
        placement = self.placement(op.hints)
        if placement:
            config["pod_spec_config"] = placement
        return config


@dataclass(frozen=True)
class KubernetesToolRunner(ToolRunner):
    """Runs a tool's image as a pod with the team's namespace, identity and placement."""

    pods: TeamPods
    image_prefix: str
    image_tag: str

    def image(self, tool: Tool) -> str:
        return f"{self.image_prefix}-{tool.name}:{self.image_tag}"

    def pod_request(self, tool: Tool, op: HintedOp) -> dict[str, Any]:
        """The ``PipesK8sClient.run`` arguments that shape the pod."""
        container: dict[str, Any] = {
            "image_pull_policy": self.pods.image_pull_policy,
            "resources": self.pods.resources(op.hints),
            "env_from": [{"secret_ref": {"name": name}} for name in self.pods.env_from_secrets],
        }
        return {
            "image": self.image(tool),
            "namespace": self.pods.namespace,
            "env": dict(self.pods.env),
            "base_pod_meta": {
                "labels": {**self.pods.labels, **self.pods.product_labels(op.data_product)}
            },
            "base_pod_spec": {
                "service_account_name": self.pods.service_account,
                "image_pull_secrets": [{"name": name} for name in self.pods.image_pull_refs],
                **self.pods.placement(op.hints),
                "containers": [container],
            },
        }

    def run(
        self, context: dg.AssetExecutionContext, tool: Tool, extras: Mapping[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        (op,) = hints_for([context.assets_def])
        return PipesK8sClient().run(
            context=context, extras=dict(extras), **self.pod_request(tool, op)
        )


@dataclass(frozen=True)
class KubernetesCompute(ComputeAdapter):
    """``compute.executor: k8s_job``: one Kubernetes Job per step, configured from settings.

    ``shared`` holds what every team's pods get; ``pods(team)`` adds the team's namespace,
    service account and labels.
    """

    environment: str
    max_concurrent: int
    image_registry: str
    image_tag: str
    current_image: str | None
    shared: TeamPods

    @classmethod
    def from_settings(cls, deployment: Deployment) -> KubernetesCompute:
        compute = deployment.compute
        policy = _setting(compute, "image_pull_policy")
        if policy not in PULL_POLICIES:
            raise compute.error(
                "image_pull_policy", f"is {policy!r}", f"Use one of: {', '.join(PULL_POLICIES)}."
            )
        credentials = compute.get("storage_credentials_from")
        return cls(
            environment=deployment.environment,
            max_concurrent=max_concurrent(deployment),
            image_registry=str(_setting(compute, "image_registry")).rstrip("/"),
            image_tag=str(_setting(compute, "image_tag")),
            current_image=os.environ.get("DAGSTER_CURRENT_IMAGE") or None,
            shared=TeamPods(
                namespace="",
                service_account="",
                labels={"app.kubernetes.io/part-of": PART_OF, **_strings(compute, "pod_labels")},
                image_pull_policy=policy,
                image_pull_refs=tuple(_names(compute, "image_pull_refs")),
                env={**deployment_env(deployment), **forwarded_env(compute)},
                env_from_secrets=(str(credentials),) if credentials else (),
                gpu_resource=str(_setting(compute, "gpu_resource")),
                gpu=_placement(compute, "gpu"),
                spot=_placement(compute, "spot"),
            ),
        )

    def pods(self, team: str) -> TeamPods:
        """What every pod of ``team`` in this environment shares."""
        return replace(
            self.shared,
            namespace=f"dataops-{team}-{self.environment}",
            service_account=f"dataops-{team}",
            labels={
                **self.shared.labels,
                TEAM_LABEL: sanitize_k8s_label(team),
                ENVIRONMENT_LABEL: self.environment,
            },
        )

    def image(self, team: str) -> str:
        """The step image: the code server's own (``DAGSTER_CURRENT_IMAGE``) or the convention."""
        return self.current_image or f"{self.image_registry}/dataops-{team}:{self.image_tag}"

    def executor_config(self, team: str, assets: Iterable[object]) -> dict[str, Any]:
        """The ``k8s_job_executor`` config for the team; hints become ``per_step_k8s_config``."""
        pods = self.pods(team)
        return {
            "job_namespace": pods.namespace,
            "service_account_name": pods.service_account,
            "job_image": self.image(team),
            "image_pull_policy": pods.image_pull_policy,
            "image_pull_secrets": [{"name": name} for name in pods.image_pull_refs],
            "env_vars": [f"{name}={value}" for name, value in pods.env.items()],
            "env_secrets": list(pods.env_from_secrets),
            "labels": dict(pods.labels),
            "max_concurrent": self.max_concurrent,
            "per_step_k8s_config": {op.op_name: pods.step_config(op) for op in hints_for(assets)},
        }

    def executor(self, team: str, assets: Iterable[object]) -> dg.ExecutorDefinition:
        executor = k8s_job_executor.configured(
            self.executor_config(team, assets), name=f"dataops_{team}_k8s"
        )
        resolved = executor.config_schema.resolve_config({})
        if not resolved.success:
            raise ConfigError(
                f"The k8s executor config for team '{team}' is invalid: {resolved.errors}"
            )
        return executor

    def pipes_resource(self, team: str) -> KubernetesToolRunner:
        return KubernetesToolRunner(
            pods=self.pods(team),
            image_prefix=f"{self.image_registry}/dataops-{team}",
            image_tag=self.image_tag,
        )


def deployment_env(deployment: Deployment) -> dict[str, str]:
    """``DATAOPS_TARGET``/``DATAOPS_ENV`` plus every setting this process took from a variable.

    A pod then resolves the same deployment as the code server that launched it. Settings that
    look like secrets are never copied.
    """
    env = deployment.as_env()
    for section in (deployment.storage, deployment.compute):
        for key, value in section.values.items():
            source = section.source(key)
            if source.startswith(ENV_SOURCE) and not any(w in key.lower() for w in SECRET_WORDS):
                env[source.removeprefix(ENV_SOURCE)] = _env_value(value)
    return env


def forwarded_env(compute: Section) -> dict[str, str]:
    """The values, in this process, of the non-secret variables named by ``compute.forward_env``."""
    names = _names(compute, "forward_env")
    for name in names:
        if any(word in name.lower() for word in SECRET_WORDS):
            raise compute.error(
                "forward_env",
                f"names {name}, which looks like a credential",
                "Credentials reach pods only through workload identity or "
                "compute.storage_credentials_from; remove it.",
            )
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def _env_value(value: Any) -> str:
    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _setting(section: Section, key: str) -> Any:
    value = section.get(key)
    return DEFAULTS[key] if value in (None, "") else value


def _strings(section: Section, key: str) -> dict[str, str]:
    value = section.get(key) or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise section.error(key, "is not a mapping of strings to strings", "Quote every value.")
    return dict(value)


def _names(section: Section, key: str) -> list[str]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise section.error(key, "is not a list of names", "Use e.g. [regcred].")
    return value


def _placement(section: Section, kind: str) -> Placement:
    key = f"{kind}_tolerations"
    tolerations = section.get(key) or []
    allowed = {"key", "operator", "value", "effect"}
    if not isinstance(tolerations, list) or not all(
        isinstance(t, Mapping)
        and t.get("key")
        and set(t) <= allowed
        and all(isinstance(v, str) for v in t.values())
        for t in tolerations
    ):
        raise section.error(
            key,
            "is not a list of tolerations",
            "Use e.g. [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}].",
        )
    return Placement(
        node_selector=_strings(section, f"{kind}_node_selector"),
        tolerations=tuple(dict(t) for t in tolerations),
    )
