"""Pseudonyms: keyed HMAC-SHA256 of a value, deterministic under one key, so products stay joinable.

The key is read from the owner location's environment (``DATAOPS_PSEUDONYM_KEY``, or
``DATAOPS_PSEUDONYM_KEY_<DOMAIN>`` for a grant with a ``domain``), never from the repository,
and never leaves that location: only its id (the first 12 hex digits of its SHA-256) is
recorded, so a consumer can tell which key made a pseudonym without learning it.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from config import ConfigError
from config.environment import variable

MIN_KEY_BYTES = 32


class Pseudonymiser:
    """Pseudonymises values with the key held by one environment variable."""

    def __init__(self, key_env: str) -> None:
        key = variable(key_env)
        if not key:
            raise ConfigError(
                f"{key_env} is not set: the owner's location pseudonymises share views with it. "
                f"Set it to a random secret of at least {MIN_KEY_BYTES} bytes in this location's "
                "environment only (e.g. from the secret store), never in a file."
            )
        if len(key.encode()) < MIN_KEY_BYTES:
            raise ConfigError(f"{key_env} is shorter than {MIN_KEY_BYTES} bytes; use a longer key.")
        self._key = key.encode()
        self.key_id = hashlib.sha256(self._key).hexdigest()[:12]

    def pseudonym(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def series(self, values: pd.Series) -> pd.Series:
        """Every non-null value replaced by its pseudonym; nulls stay null."""
        present = values.notna()
        result = pd.Series(pd.NA, index=values.index, dtype="string")
        result[present] = [self.pseudonym(str(v)) for v in values[present]]
        return result.astype("str")
