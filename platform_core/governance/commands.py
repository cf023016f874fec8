"""``dataops policy ...`` and ``dataops access check``: the policy as the platform reads it.

Exit codes of ``access check``: 0 allowed (full, or masked through a share view), 4 denied, 2
unknown principal or product or a configuration error. A product behind a masked grant is
answered "allow (masked)" with the share view the principal reads instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from config import ENVIRONMENTS, ConfigError
from platform_core.governance.access import decide, share_views
from platform_core.governance.compliance_policy import load_compliance
from platform_core.governance.policy import POLICY_DIR, POLICY_DIR_VARIABLE, Policy, load_policy
from platform_core.governance.products import MANIFEST, load_manifest, products_of, render

DENIED = 4


def _environment(args: argparse.Namespace) -> str:
    environment = args.env or os.environ.get("DATAOPS_ENV") or "dev"
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"--env {environment!r} is not one of: {', '.join(ENVIRONMENTS)}.")
    return environment


def _load(args: argparse.Namespace) -> tuple[Policy, dict[str, Any]]:
    policy_dir = Path(args.policy_dir)
    manifest = load_manifest(policy_dir)
    teams = sorted({product.owner for product in manifest.values()})
    return load_policy(_environment(args), teams, list(manifest), policy_dir), manifest


def _show(args: argparse.Namespace) -> int:
    policy, manifest = _load(args)
    print(f"environment: {policy.environment}")
    print(f"teams:       {', '.join(policy.teams)}")
    print(f"consumers:   {', '.join(policy.consumers) or '-'}")
    print(
        "defaults:    public -> every principal; internal -> every team; "
        "confidential, pii -> grant only; owners -> their own products"
    )
    print("grants:")
    for grant in policy.grants:
        print(f"  {grant.id}: {grant.principal} reads {', '.join(grant.products)} ({grant.access})")
    print("share views:")
    for view, (product, grant) in sorted(share_views(policy, manifest).items()):
        mask = grant.mask
        assert mask is not None
        print(
            f"  {view} <- {product} (grant {grant.id}; pseudonymised {list(mask.pseudonymise)}, "
            f"dropped {list(mask.drop)}, rows {dict(mask.rows) or 'all'}; "
            f"classified {grant.classification}; key {policy.key_variable(grant.domain)})"
        )
    print("products:")
    for key, product in sorted(manifest.items()):
        print(f"  {key} ({product.classification})")
    return 0


def _check(args: argparse.Namespace) -> int:
    policy, manifest = _load(args)
    if args.principal not in policy.principals:
        print(
            f"dataops access check: unknown principal '{args.principal}'. Known: "
            f"{', '.join(policy.principals)}.",
            file=sys.stderr,
        )
        return 2
    if args.product not in manifest and args.product not in share_views(policy, manifest):
        print(
            f"dataops access check: unknown product '{args.product}' (team/name). "
            "See dataops policy show.",
            file=sys.stderr,
        )
        return 2
    decision = decide(policy, manifest, args.principal, args.product)
    allowed = decision.allowed or decision.mode == "masked"
    how = decision.mode
    if decision.share_view:
        how = f"masked, through the share view {decision.share_view}"
    verdict = "allow" if allowed else "deny"
    print(f"{verdict} ({how}) {args.principal} -> {args.product} in {policy.environment}")
    print(f"rule: {decision.rule}")
    return 0 if allowed else DENIED


def _products(args: argparse.Namespace) -> int:
    from platform_core.materialize import workspace_locations

    teams = [location.team() for location in workspace_locations()]
    keys = [key.to_user_string() for team in teams for a in team.assets for key in a.keys]
    compliance = load_compliance(keys, Path(args.policy_dir))
    products: dict[str, Any] = {}
    for team in teams:
        products.update(products_of(team.assets, compliance))
    text = render(products)
    path = Path(args.policy_dir) / MANIFEST
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if args.write:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(products)} products)")
        return 0
    if args.check:
        if current != text:
            print(f"{path} is out of date: run dataops policy products --write", file=sys.stderr)
            return 1
        print(f"{path} is up to date ({len(products)} products)")
        return 0
    print(text, end="")
    return 0


def add_commands(commands: Any) -> None:
    """Register ``policy`` and ``access`` on the ``dataops`` parser."""
    policy = commands.add_parser("policy", help="the access policy and the product manifest")
    verbs = policy.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("show", help="the effective policy, with the share views it implies")
    show.add_argument("--env", help="environment (default: DATAOPS_ENV)")
    show.set_defaults(run=_show)
    products = verbs.add_parser("products", help="the product manifest generated from the teams")
    which = products.add_mutually_exclusive_group()
    which.add_argument("--write", action="store_true", help="write policy/products.yaml")
    which.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    products.set_defaults(run=_products)
    access = commands.add_parser("access", help="access decisions")
    access_verbs = access.add_subparsers(dest="verb", required=True)
    check = access_verbs.add_parser("check", help="may PRINCIPAL read PRODUCT? exit 0/4/2")
    check.add_argument("--principal", required=True)
    check.add_argument("--product", required=True, help="TEAM/NAME")
    check.add_argument("--env", help="environment (default: DATAOPS_ENV)")
    check.set_defaults(run=_check)
    for parser in (show, products, check):
        parser.add_argument(
            "--policy-dir",
            default=os.environ.get(POLICY_DIR_VARIABLE) or str(POLICY_DIR),
            help=argparse.SUPPRESS,
        )
