"""Kubernetes compute: a pod per step through ``dagster_k8s.k8s_job_executor``, tools as Pipes pods.

Conventions shared with ``deploy/``: a team's pods run in namespace ``dataops-<team>-<env>``
under service account ``dataops-<team>`` (which carries the cloud's workload-identity
annotation), from image ``<image_registry>/dataops-<team>:<image_tag>`` unless the code server
reports its own image in ``DAGSTER_CURRENT_IMAGE``. Every pod is labelled with the platform, team,
environment and data product. What differs between clouds (GPU and spot node labels and taints,
the Azure identity pod label, the on-prem credentials Secret) is data in the target's settings.

Pods get the environment the factory computed (the ``DATAOPS_*`` variables that resolve the same
deployment, plus non-secret SDK variables such as an endpoint or a region). Storage credentials
never appear here: pods get them from workload identity or, on-prem, from the Secrets named in
``env_from_secrets`` (``{team}`` in a name is the team) through ``envFrom``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
from dagster_k8s import PipesK8sClient, k8s_job_executor
from dagster_k8s.utils import sanitize_k8s_label

from adapters.compute.base import ComputeAdapter, Tool, ToolRunner
from adapters.compute.hints import ComputeHints, HintedOp, hints_for
from config import ConfigError

PART_OF = "dataops-paas"
TEAM_LABEL = "dataops.io/team"
ENVIRONMENT_LABEL = "dataops.io/environment"
PRODUCT_LABEL = "dataops.io/data-product"


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
    """``compute.executor: k8s_job``: one Kubernetes Job per step.

    ``shared`` holds what every team's pods get; ``pods(team)`` adds the team's namespace,
    service account and labels.
    """

    environment: str
    max_concurrent: int
    image_registry: str
    image_tag: str
    current_image: str | None
    shared: TeamPods

    def pods(self, team: str) -> TeamPods:
        """What every pod of ``team`` in this environment shares."""
        return replace(
            self.shared,
            namespace=f"dataops-{team}-{self.environment}",
            service_account=f"dataops-{team}",
            env_from_secrets=tuple(
                name.replace("{team}", team) for name in self.shared.env_from_secrets
            ),
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

    def check(self) -> None:
        """A cluster configuration (in-cluster, ``KUBECONFIG`` or ``~/.kube/config``) exists."""
        from kubernetes import config as kube_config

        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            try:
                kube_config.load_kube_config()
            except (kube_config.ConfigException, OSError) as exc:
                raise ConfigError(
                    "This deployment runs its steps and tools on Kubernetes (compute.executor "
                    f"k8s_job), but no cluster is configured here ({exc}). Point KUBECONFIG at "
                    "the cluster, or run the steps on this machine with "
                    "DATAOPS__COMPUTE__EXECUTOR=multiprocess."
                ) from exc

    def pipes_resource(self, team: str) -> KubernetesToolRunner:
        return KubernetesToolRunner(
            pods=self.pods(team),
            image_prefix=f"{self.image_registry}/dataops-{team}",
            image_tag=self.image_tag,
        )
