"""``dataops serve`` and ``dataops tokens create|revoke``: the dataset API from the command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from config import ConfigError, load_deployment
from platform_core.api.app import api_folder, create_app
from platform_core.api.asset_graph import DAGSTER_URL_VARIABLE
from platform_core.api.catalog import load_access
from platform_core.api.oidc import (
    AUDIENCE_VARIABLE,
    CLAIM_VARIABLE,
    ISSUER_VARIABLE,
    JWKS_VARIABLE,
)
from platform_core.api.sharing import BASE_PATH
from platform_core.api.tokens import TokenStore

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DURATION = re.compile(r"^(\d+)([dhm])$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def lifetime(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``45m`` or ``never``."""
    if text == "never":
        return None
    match = DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 45m or never")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


SERVE_SETTINGS = {
    "dagster_url": DAGSTER_URL_VARIABLE,
    "oidc_issuer": ISSUER_VARIABLE,
    "oidc_audience": AUDIENCE_VARIABLE,
    "oidc_jwks": JWKS_VARIABLE,
    "oidc_claim": CLAIM_VARIABLE,
}


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    for option, variable in SERVE_SETTINGS.items():
        if getattr(args, option):
            os.environ[variable] = getattr(args, option)
    try:
        app = create_app()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(
        f"Dataset API (Delta Sharing) on http://{args.host}:{args.port}{BASE_PATH}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def write_profile(path: Path, endpoint: str, token: str, expires: str | None) -> None:
    """A Delta Sharing profile file (mode 600) for ``token``."""
    profile: dict[str, Any] = {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint.rstrip("/") + BASE_PATH,
        "bearerToken": token,
    }
    if expires:
        profile["expirationTime"] = expires
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(profile, out, indent=2)
        out.write("\n")


def _create(args: argparse.Namespace) -> int:
    principals = load_access(load_deployment().environment)[0].principals
    if args.principal not in principals:
        raise ConfigError(
            f"'{args.principal}' is not a principal of the access policy. Use one of: "
            f"{', '.join(principals)} (teams, and consumers in policy/access.yaml)."
        )
    token, record = TokenStore(api_folder()).create(args.principal, args.expires)
    if args.profile:
        expiry = record.expiry()
        stamp = expiry.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if expiry else None
        write_profile(Path(args.profile), args.endpoint, token, stamp)
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoked = TokenStore(api_folder()).revoke(token=args.token, principal=args.principal)
    print(f"revoked {revoked} token(s)", file=sys.stderr)
    return 0 if revoked else 1


def add_api_commands(commands: Any) -> None:
    """Register ``serve`` and ``tokens`` on the ``dataops`` parser."""
    serve = commands.add_parser(
        "serve", help="serve the product catalog, direct reads and Delta Sharing"
    )
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--dagster-url", help=f"the Dagster webserver for lineage (or {DAGSTER_URL_VARIABLE})"
    )
    serve.add_argument("--oidc-issuer", help=f"SSO token issuer (or {ISSUER_VARIABLE})")
    serve.add_argument("--oidc-audience", help=f"SSO token audience (or {AUDIENCE_VARIABLE})")
    serve.add_argument("--oidc-jwks", help=f"SSO JWKS URL or file (or {JWKS_VARIABLE})")
    serve.add_argument("--oidc-claim", help=f"the claim naming the principal (or {CLAIM_VARIABLE})")
    serve.set_defaults(run=_serve)
    tokens = commands.add_parser("tokens", help="bearer tokens of the dataset API")
    verbs = tokens.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="a new token for PRINCIPAL, printed on stdout")
    create.add_argument("--principal", required=True, help="a team or a named consumer")
    create.add_argument(
        "--expires", type=lifetime, default=timedelta(days=30), help="30d, 12h, 45m or never"
    )
    create.add_argument("--profile", help="also write a Delta Sharing profile file here")
    create.add_argument(
        "--endpoint",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="the server's base URL for the profile",
    )
    create.set_defaults(run=_create)
    revoke = verbs.add_parser("revoke", help="revoke a token, or every token of a principal")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--token", help="the token to revoke")
    which.add_argument("--principal", help="revoke every token of this principal")
    revoke.set_defaults(run=_revoke)
