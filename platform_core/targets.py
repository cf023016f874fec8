"""Which adapter serves each target: the one place a new backend is registered."""

from __future__ import annotations

from adapters.compute.base import ComputeAdapter
from adapters.compute.kubernetes import KubernetesCompute
from adapters.compute.local import LocalCompute
from adapters.storage.azure_blob import AzureBlobStorage
from adapters.storage.base import StorageAdapter, StorageError
from adapters.storage.gcs import GCSStorage
from adapters.storage.local import LocalStorage
from adapters.storage.s3 import S3Storage
from platform_core.settings import ConfigError, Deployment

STORAGE_BACKENDS: dict[str, type[StorageAdapter]] = {
    "local": LocalStorage,
    "s3": S3Storage,
    "azure_blob": AzureBlobStorage,
    "gcs": GCSStorage,
}


def storage_for(deployment: Deployment, check: bool = True) -> StorageAdapter:
    """The adapter ``storage.backend`` names, built and (by default) checked.

    The check is one cheap call (the bucket or directory exists and answers), so a missing
    bucket or an unreachable endpoint fails when the code location loads, not mid-run.
    """
    backend = deployment.storage.get("backend")
    if backend not in STORAGE_BACKENDS:
        raise deployment.storage.error(
            "backend",
            f"is {backend!r}, not a known storage backend",
            f"Use one of: {', '.join(sorted(STORAGE_BACKENDS))}.",
        )
    adapter = STORAGE_BACKENDS[backend].from_settings(deployment)
    if check:
        try:
            adapter.check()
        except StorageError as exc:
            raise ConfigError(
                f"Storage for target '{deployment.target}' (environment "
                f"'{deployment.environment}') is not usable: {exc}"
            ) from exc
    return adapter


COMPUTE_BACKENDS: dict[str, type[ComputeAdapter]] = {
    "in_process": LocalCompute,
    "multiprocess": LocalCompute,
    "k8s_job": KubernetesCompute,
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
    return COMPUTE_BACKENDS[executor].from_settings(deployment)
