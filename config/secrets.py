"""The one secret detector: names that hold credentials never reach a file, a manifest or a log.

Settings files, environment overrides, ``compute.forward_env`` and whatever the platform copies
into a pod or prints ask this module, so widening what counts as a secret is one change here.
"""

from __future__ import annotations

SECRET_WORDS = (
    "password",
    "secret",
    "access_key",
    "account_key",
    "sas_token",
    "token",
    "private_key",
)


def looks_secret(name: str) -> bool:
    """Whether a setting or variable name looks like it holds a credential."""
    return any(word in name.lower() for word in SECRET_WORDS)


def names_a_variable(key: str) -> bool:
    """Keys ending in ``_env`` hold the name of a variable (``access_key_id_env``), not a value."""
    return key.endswith("_env")
