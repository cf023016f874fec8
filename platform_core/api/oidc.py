"""Enterprise SSO: OIDC/JWT bearer tokens (RS256) checked against the identity provider's keys.

The keys come from a JWKS URL (fetched and cached by PyJWT's client) or a JWKS file (re-read when
it changes). Signature, issuer, audience and expiry are all required; the principal is the value
of one configured claim, and must be a principal of the access policy like any platform token.
Nothing about a refused token (nor the token) is logged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import jwt

ISSUER_VARIABLE = "DATAOPS_API_OIDC_ISSUER"
AUDIENCE_VARIABLE = "DATAOPS_API_OIDC_AUDIENCE"
JWKS_VARIABLE = "DATAOPS_API_OIDC_JWKS"
CLAIM_VARIABLE = "DATAOPS_API_OIDC_CLAIM"
DEFAULT_CLAIM = "dataops_principal"
ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class OidcSettings:
    """Issuer, audience, where the keys are (a URL or a file path) and the principal's claim."""

    issuer: str
    audience: str
    jwks: str
    claim: str = DEFAULT_CLAIM

    @classmethod
    def from_environment(cls) -> OidcSettings | None:
        """The settings from ``DATAOPS_API_OIDC_*``; None when SSO is not configured."""
        issuer, audience = os.environ.get(ISSUER_VARIABLE), os.environ.get(AUDIENCE_VARIABLE)
        jwks = os.environ.get(JWKS_VARIABLE)
        if not (issuer or audience or jwks):
            return None
        if not (issuer and audience and jwks):
            raise ValueError(
                f"SSO needs all of {ISSUER_VARIABLE}, {AUDIENCE_VARIABLE} and {JWKS_VARIABLE}."
            )
        return cls(issuer, audience, jwks, os.environ.get(CLAIM_VARIABLE) or DEFAULT_CLAIM)


class JwksFile:
    """Signing keys from a JWKS file, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._keys: jwt.PyJWKSet | None = None

    def signing_key(self, token: str) -> jwt.PyJWK:
        stamp = self.path.stat().st_mtime
        if self._keys is None or stamp != self._stamp:
            self._keys = jwt.PyJWKSet.from_json(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise jwt.PyJWKClientError("no key of the JWKS matches the token's kid")


class OidcVerifier:
    """Maps a valid SSO token to the principal its configured claim names; None otherwise."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        if settings.jwks.startswith(("https://", "http://")):
            self._keys: jwt.PyJWKClient | JwksFile = jwt.PyJWKClient(settings.jwks)
        else:
            self._keys = JwksFile(Path(settings.jwks))

    def principal_for(self, token: str) -> str | None:
        try:
            if isinstance(self._keys, jwt.PyJWKClient):
                key = self._keys.get_signing_key_from_jwt(token)
            else:
                key = self._keys.signing_key(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, OSError, ValueError, json.JSONDecodeError):
            return None
        principal = claims.get(self.settings.claim)
        return principal if isinstance(principal, str) and principal else None
