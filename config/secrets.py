"""The one secret guard: credentials never reach a settings file, a manifest, metadata or a log.

Settings files, environment overrides, ``compute.forward_env``, whatever the platform copies into
a pod and whatever ``dataops config`` prints ask this module, so widening what counts as a secret
is one change here. It knows the SDKs' real credential variables (AWS, Azure, Google, database
URLs), names that say "secret", and values that carry one: connection strings with an account
key, SAS tokens and signed URLs, URLs with a password in their userinfo.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "access_key",
    "accesskey",
    "account_key",
    "sas_token",
    "token",
    "private_key",
    "api_key",
    "apikey",
    "credential",
    "connection_string",
    "connstr",
)
CREDENTIAL_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DATABASE_URL",
        "DAGSTER_PG_PASSWORD",
        "PGPASSWORD",
    }
)
SIGNATURE_PARAMETERS = frozenset({"sig", "x-amz-signature", "x-goog-signature", "signature"})
SECRET_VALUE = re.compile(r"(AccountKey|SharedAccessSignature|password|pwd)\s*=", re.IGNORECASE)
HOW_CREDENTIALS_REACH_PODS = (
    "Credentials reach pods only through workload identity (IRSA, Azure workload identity, GKE "
    "workload identity) or the team's credentials Secret (compute.storage_credentials_from)."
)
MASK = "****"


def looks_secret(name: str) -> bool:
    """Whether a setting or variable name looks like it holds a credential."""
    lowered = name.lower()
    return name.upper() in CREDENTIAL_VARIABLES or any(word in lowered for word in SECRET_WORDS)


def names_a_variable(key: str) -> bool:
    """Keys ending in ``_env`` hold the name of a variable (``access_key_id_env``), not a value."""
    return key.lower().endswith("_env")


def secret_in_value(value: str) -> str | None:
    """Why ``value`` carries a credential (a key, a signature, a password), or None."""
    if SECRET_VALUE.search(value):
        return "it holds an account key, signature or password"
    parts = urlsplit(value.strip())
    if parts.scheme and parts.netloc:
        if parts.password is not None:
            return "it is a URL with a password in it"
        query = {name.lower() for name in parse_qs(parts.query, keep_blank_values=True)}
        if query & SIGNATURE_PARAMETERS:
            return "it is a signed URL"
    return None


def secret_reason(name: str, value: object = None) -> str | None:
    """Why the variable or setting ``name`` (with ``value``) is a secret, or None if it is not."""
    if looks_secret(name) and not names_a_variable(name):
        return f"{name} is a credential"
    if isinstance(value, str):
        reason = secret_in_value(value)
        if reason:
            return f"the value of {name} is secret: {reason}"
    return None


def masked(name: str, value: object) -> object:
    """``value`` as it may be shown, or ``****`` where it is secret-shaped."""
    return MASK if secret_reason(name, value) else value
