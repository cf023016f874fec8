"""Short-lived signed file URLs: the storage key and an expiry, HMAC-SHA256 signed.

The key comes from ``DATAOPS_API_SIGNING_KEY`` (every replica of the server shares it) or is
generated once into the instance home with mode 600. A URL whose key, expiry or signature was
changed, or that has expired, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

SIGNING_KEY_VARIABLE = "DATAOPS_API_SIGNING_KEY"
KEY_FILE = "signing.key"


class BadSignature(ValueError):
    """A signed file reference that was tampered with, malformed or expired."""


def signing_key(folder: Path) -> bytes:
    """The HMAC key: from the environment, else from (or generated into) ``folder``."""
    configured = os.environ.get(SIGNING_KEY_VARIABLE)
    if configured:
        return configured.encode()
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs storage keys for a limited time and checks what comes back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, storage_key: str, expires_at: float) -> str:
        """An opaque reference to ``storage_key`` valid until ``expires_at`` (epoch seconds)."""
        payload = _b64(json.dumps({"k": storage_key, "e": int(expires_at)}).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, reference: str) -> str:
        """The storage key of a valid reference; BadSignature otherwise."""
        payload, _, mac = reference.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise BadSignature("bad signature")
        try:
            data = json.loads(_unb64(payload))
            storage_key, expires = str(data["k"]), int(data["e"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadSignature("malformed reference") from exc
        if time.time() >= expires:
            raise BadSignature("expired")
        return storage_key
