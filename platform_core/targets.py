"""Which adapter serves each target: the one place a new backend is registered."""

from __future__ import annotations

from adapters.storage.base import StorageAdapter, StorageError
from adapters.storage.local import LocalStorage
from platform_core.settings import ConfigError, Deployment

STORAGE_BACKENDS: dict[str, type[StorageAdapter]] = {
    "local": LocalStorage,
}


def storage_for(deployment: Deployment, check: bool = True) -> StorageAdapter:
    """The storage adapter the deployment's ``storage.backend`` names, built and (by default) checked.

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
