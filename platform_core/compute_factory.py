"""Compute adapters from deployment settings: the one place that knows the ``compute`` section.

Executors are registered by import path and imported on first use, so the local target never
imports dagster-k8s or the Kubernetes client. The Kubernetes builder works out what every pod
gets: the variables that make a pod resolve the same deployment (only those this process took
from the environment, never a secret-looking one), the non-secret variables named by
``compute.forward_env``, labels, pull settings and GPU/spot placement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from adapters.compute.base import ComputeAdapter
from config import Deployment, Section
from config.secrets import HOW_CREDENTIALS_REACH_PODS, secret_reason
from platform_core.storage_factory import load_class

COMPUTE_BACKENDS: dict[str, str] = {
    "in_process": "adapters.compute.local:LocalCompute",
    "multiprocess": "adapters.compute.local:LocalCompute",
    "k8s_job": "adapters.compute.kubernetes:KubernetesCompute",
}
KUBERNETES_DEFAULTS = {
    "image_registry": "registry.example.com/dataops",
    "image_tag": "0.1.0",
    "image_pull_policy": "IfNotPresent",
    "gpu_resource": "nvidia.com/gpu",
}
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def max_concurrent(deployment: Deployment) -> int:
    """``compute.max_concurrent``: how many steps of one run may execute at once."""
    value = deployment.compute.get("max_concurrent", 4)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise deployment.compute.error(
            "max_concurrent", f"is {value!r}, not a positive whole number", "Use e.g. 4."
        )
    return value


def deployment_env(deployment: Deployment) -> dict[str, str]:
    """``DATAOPS_TARGET``/``DATAOPS_ENV`` plus every setting this process took from a variable.

    A pod then resolves the same deployment as the code server that launched it. Settings that
    look like secrets are never copied.
    """
    env = deployment.as_env()
    for section in (deployment.storage, deployment.compute):
        for key, value in section.values.items():
            source = section.source(key)
            if source.kind == "env" and not secret_reason(source.name, value):
                env[source.name] = _env_value(value)
    return env


def forwarded_env(deployment: Deployment) -> dict[str, str]:
    """The values of the non-secret variables named by ``compute.forward_env``."""
    compute = deployment.compute
    values = {name: deployment.variable(name) for name in _names(compute, "forward_env")}
    for name, value in values.items():
        reason = secret_reason(name, value)
        if reason:
            raise compute.error(
                "forward_env",
                f"names {name}, which would copy a credential into every pod ({reason})",
                f"{HOW_CREDENTIALS_REACH_PODS} Remove {name} from compute.forward_env.",
            )
    return {name: value for name, value in values.items() if value}


def _local(deployment: Deployment) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": deployment.compute.get("executor"),
        "max_concurrent": max_concurrent(deployment),
    }
    if deployment.compute.get("tool_python"):
        fields["tool_python"] = str(deployment.compute.get("tool_python"))
    return fields


def _kubernetes(deployment: Deployment) -> dict[str, Any]:
    from adapters.compute.kubernetes import PART_OF, Placement, TeamPods

    compute = deployment.compute
    policy = _setting(compute, "image_pull_policy")
    if policy not in PULL_POLICIES:
        raise compute.error(
            "image_pull_policy", f"is {policy!r}", f"Use one of: {', '.join(PULL_POLICIES)}."
        )
    credentials = compute.get("storage_credentials_from")

    def placement(kind: str) -> Placement:
        node_selector, tolerations = _placement(compute, kind)
        return Placement(node_selector=node_selector, tolerations=tolerations)

    return {
        "environment": deployment.environment,
        "max_concurrent": max_concurrent(deployment),
        "image_registry": str(_setting(compute, "image_registry")).rstrip("/"),
        "image_tag": str(_setting(compute, "image_tag")),
        "current_image": deployment.variable("DAGSTER_CURRENT_IMAGE"),
        "shared": TeamPods(
            namespace="",
            service_account="",
            labels={"app.kubernetes.io/part-of": PART_OF, **_strings(compute, "pod_labels")},
            image_pull_policy=policy,
            image_pull_refs=tuple(_names(compute, "image_pull_refs")),
            env={**deployment_env(deployment), **forwarded_env(deployment)},
            env_from_secrets=(str(credentials),) if credentials else (),
            gpu_resource=str(_setting(compute, "gpu_resource")),
            gpu=placement("gpu"),
            spot=placement("spot"),
        ),
    }


BUILDERS: dict[str, Callable[[Deployment], dict[str, Any]]] = {
    "in_process": _local,
    "multiprocess": _local,
    "k8s_job": _kubernetes,
}


def compute_for(deployment: Deployment) -> ComputeAdapter:
    """The compute adapter the deployment's ``compute.executor`` names, built from its settings."""
    executor = deployment.compute.get("executor")
    if executor not in COMPUTE_BACKENDS:
        raise deployment.compute.error(
            "executor",
            f"is {executor!r}, not a known executor",
            f"Use one of: {', '.join(sorted(COMPUTE_BACKENDS))}.",
        )
    return load_class(COMPUTE_BACKENDS[executor])(**BUILDERS[executor](deployment))


def _env_value(value: Any) -> str:
    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _setting(section: Section, key: str) -> Any:
    value = section.get(key)
    return KUBERNETES_DEFAULTS[key] if value in (None, "") else value


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


def _placement(section: Section, kind: str) -> tuple[dict[str, str], tuple[Mapping[str, str], ...]]:
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
    return _strings(section, f"{kind}_node_selector"), tuple(dict(t) for t in tolerations)
