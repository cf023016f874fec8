"""Who a bearer token belongs to: a platform token (``dsh_...``) or an enterprise SSO token."""

from __future__ import annotations

from platform_core.api.oidc import OidcVerifier
from platform_core.api.tokens import TOKEN_PREFIX, TokenStore


class Authenticator:
    """Platform tokens from the token store; anything else, if SSO is configured, as a JWT."""

    def __init__(self, tokens: TokenStore, sso: OidcVerifier | None = None) -> None:
        self.tokens = tokens
        self.sso = sso

    def principal_for(self, token: str) -> str | None:
        if not token:
            return None
        if token.startswith(TOKEN_PREFIX) or self.sso is None:
            return self.tokens.principal_for(token)
        return self.sso.principal_for(token)
