"""Storage adapters from deployment settings: the one place that knows the ``storage`` section.

Backends are registered by import path and imported on first use (as fsspec's
``known_implementations``), so loading a code location on the local target imports no cloud SDK.
Each builder turns settings and the deployment's environment snapshot into the adapter's typed
fields, refusing a missing bucket, credential variable or endpoint with the variable to set.
Credential *values* never become fields: adapters hold the names of the variables at most.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.storage.base import StorageAdapter, StorageError
from config import ConfigError, Deployment

STORAGE_BACKENDS: dict[str, str] = {
    "local": "adapters.storage.local:LocalStorage",
    "s3": "adapters.storage.s3:S3Storage",
    "azure_blob": "adapters.storage.azure_blob:AzureBlobStorage",
    "gcs": "adapters.storage.gcs:GCSStorage",
}

S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
AZURE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
AZURE_ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
AZURE_CREDENTIAL_VARIABLES = (
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
)
AZURE_CREDENTIAL_FIX = (
    f"Set {AZURE_CONNECTION_STRING}, or {AZURE_ACCOUNT_URL} (or storage.account_url) together "
    "with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or a workload identity "
    "(AZURE_FEDERATED_TOKEN_FILE and AZURE_CLIENT_ID)."
)
GCS_EMULATOR = "STORAGE_EMULATOR_HOST"
GCS_KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"


def load_class(path: str) -> type[Any]:
    """The class at ``module:name``, imported now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def bucket_name(deployment: Deployment, noun: str = "bucket") -> str:
    """``storage.bucket`` (the bucket or container), or the ConfigError saying how to set it."""
    return str(
        deployment.storage.require(
            "bucket",
            f"Set DATAOPS_BUCKET to the {noun}'s name "
            "(or storage.bucket in the target's settings).",
        )
    )


def _prefix(deployment: Deployment) -> str:
    return str(deployment.storage.get("prefix") or "").strip("/")


def _local(deployment: Deployment) -> dict[str, Any]:
    root = deployment.storage.require(
        "root", "Set DATAOPS_LOCAL_ROOT or storage.root in the target's settings file."
    )
    return {"root": str(Path(root).absolute())}


def _s3(deployment: Deployment) -> dict[str, Any]:
    storage = deployment.storage
    bucket = bucket_name(deployment)
    key_env = storage.get("access_key_id_env")
    secret_env = storage.get("secret_access_key_env")
    for name in (key_env, secret_env):
        if name and not deployment.variable(name):
            raise ConfigError(
                f"Environment variable {name} is not set. Target '{deployment.target}' "
                f"reads its S3 credentials from {key_env} and {secret_env} (named by "
                "storage.access_key_id_env and storage.secret_access_key_env): set both."
            )
    endpoint = storage.get("endpoint_url")
    if storage.get("require_endpoint") and not (
        endpoint or any(deployment.variable(name) for name in S3_ENDPOINT_VARIABLES)
    ):
        raise ConfigError(
            f"No S3 endpoint for target '{deployment.target}'. Set AWS_ENDPOINT_URL_S3 to the "
            "server's URL (https://minio.example.com:9000), or storage.endpoint_url."
        )
    return {
        "bucket": bucket,
        "prefix": _prefix(deployment),
        "region": storage.get("region") or deployment.variable("AWS_REGION"),
        "endpoint_url": endpoint,
        "path_style": bool(storage.get("path_style", False)),
        "ca_bundle": storage.get("ca_bundle"),
        "role_arn": storage.get("role_arn"),
        "access_key_id_env": key_env,
        "secret_access_key_env": secret_env,
    }


def _azure_blob(deployment: Deployment) -> dict[str, Any]:
    container = bucket_name(deployment, "container")
    account_url = deployment.storage.get("account_url") or deployment.variable(AZURE_ACCOUNT_URL)
    if not deployment.variable(AZURE_CONNECTION_STRING):
        if not account_url:
            raise ConfigError(
                f"No Azure storage account for '{deployment.target}'. {AZURE_CREDENTIAL_FIX}"
            )
        if not any(deployment.variable(name) for name in AZURE_CREDENTIAL_VARIABLES):
            raise ConfigError(
                f"No credential for Azure account {account_url}: none of AZURE_STORAGE_KEY, "
                f"AZURE_STORAGE_SAS_TOKEN or an identity is set. {AZURE_CREDENTIAL_FIX}"
            )
    return {"bucket": container, "prefix": _prefix(deployment), "account_url": account_url}


def _gcs(deployment: Deployment) -> dict[str, Any]:
    storage = deployment.storage
    bucket = bucket_name(deployment)
    emulator = deployment.variable(GCS_EMULATOR)
    key_file = deployment.variable(GCS_KEY_FILE)
    if key_file and not emulator and not os.path.isfile(key_file):
        raise ConfigError(
            f"{GCS_KEY_FILE}={key_file} is not a readable file. Point it at the service "
            "account's JSON key file, or unset it to use Application Default Credentials."
        )
    fields: dict[str, Any] = {
        "bucket": bucket,
        "prefix": _prefix(deployment),
        "project": storage.get("project"),
        "emulator_host": emulator,
    }
    if "chunk_mb" in storage.values:
        chunk_mb = storage.get("chunk_mb")
        if isinstance(chunk_mb, bool) or not isinstance(chunk_mb, int) or chunk_mb < 1:
            raise storage.error(
                "chunk_mb", f"is {chunk_mb!r}", "Use a whole number of MiB, at least 1."
            )
        fields["chunk_mb"] = chunk_mb
    return fields


BUILDERS: dict[str, Callable[[Deployment], dict[str, Any]]] = {
    "local": _local,
    "s3": _s3,
    "azure_blob": _azure_blob,
    "gcs": _gcs,
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
    fields = BUILDERS[backend](deployment)
    adapter = load_class(STORAGE_BACKENDS[backend])(target=deployment.target, **fields)
    if check:
        try:
            adapter.check()
        except StorageError as exc:
            raise ConfigError(
                f"Storage for target '{deployment.target}' (environment "
                f"'{deployment.environment}') is not usable: {exc}"
            ) from exc
    return adapter
