"""A test identity provider: an RSA key pair made here, its public JWKS file, and signed JWTs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

SSO_ISSUER = "https://login.example.test/tenant"
SSO_AUDIENCE = "dataops-dataset-api"
KEY_ID = "test-key-1"


class IdentityProvider:
    """Signs OIDC access tokens with a fresh RSA key whose public half is in ``jwks``."""

    def __init__(self, jwks: Path) -> None:
        self.jwks = jwks
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update(kid=KEY_ID, use="sig", alg="RS256")
        jwks.write_text(json.dumps({"keys": [public]}))

    def token(self, principal: str | None, lifetime: float = 300, **changes: Any) -> str:
        """A token naming ``principal`` in ``dataops_principal``; ``changes`` override claims
        (``key=...`` signs with another key, ``kid=...`` names another key id)."""
        key = changes.pop("key", self.key)
        kid = changes.pop("kid", KEY_ID)
        now = time.time()
        claims = {
            "iss": SSO_ISSUER,
            "aud": SSO_AUDIENCE,
            "sub": "user-42",
            "iat": int(now),
            "exp": int(now + lifetime),
            "dataops_principal": principal,
            **changes,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
