"""``dataops storage-policy``: each identity's storage permissions, generated from the grants.

With ``--team`` one document (for S3 and MinIO one IAM policy); without it a JSON object keyed
by identity (every team and ``dataset-api``). ``--format shell`` prints the commands an operator
runs instead (``aws iam``/``mc admin policy``, ``az role assignment create``, ``gcloud``).
``--write`` regenerates the committed files under ``deploy/storage-policies/<target>/<env>/``,
``--check`` compares them (every target and environment unless named). Exit codes: 0 done or up
to date, 1 drift, 2 a configuration error or ``--target local`` (nothing to generate).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from config import ENVIRONMENTS, TARGETS, ConfigError
from platform_core.governance.policy import POLICY_DIR, POLICY_DIR_VARIABLE, load_policy
from platform_core.governance.products import load_manifest
from platform_core.governance.storage_policy import (
    BUCKET_PLACEHOLDER,
    document,
    identities,
    render,
)
from platform_core.governance.storage_policy import (
    TARGETS as POLICY_TARGETS,
)

COMMITTED = Path(__file__).resolve().parents[2] / "deploy" / "storage-policies"


def _documents(args: argparse.Namespace, target: str, environment: str) -> dict[str, Any]:
    policy_dir = Path(args.policy_dir)
    manifest = load_manifest(policy_dir)
    teams = sorted({product.owner for product in manifest.values()})
    policy = load_policy(environment, teams, list(manifest), policy_dir)
    names = identities(policy)
    if args.team is not None:
        if args.team not in names:
            raise ConfigError(f"--team {args.team!r} is not one of: {', '.join(names)}.")
        names = (args.team,)
    return {
        name: document(target, policy, manifest, name, args.prefix, args.bucket) for name in names
    }


def _shell(target: str, environment: str, name: str, doc: Any) -> list[str]:
    identity = f"dataops-{name}-{environment}"
    path = f"deploy/storage-policies/{target}/{environment}/{name}.json"
    if target == "onprem":
        return [
            f'mc admin policy create "$MINIO_ALIAS" {identity} {path}',
            f'mc admin policy attach "$MINIO_ALIAS" {identity} --user {identity}',
        ]
    if target == "aws":
        return [
            f"aws iam put-role-policy --role-name {identity} --policy-name dataops-storage "
            f"--policy-document file://{path}"
        ]
    if target == "azure":
        return [
            "az role assignment create --assignee-object-id "
            f'"$(az identity show -g "$AZURE_RESOURCE_GROUP" -n {a["identity"]} '
            '--query principalId -o tsv)" --assignee-principal-type ServicePrincipal '
            f'--role {shlex.quote(a["role"])} --scope "{a["scope"]}" '
            f"--condition-version 2.0 --condition {shlex.quote(a['condition'])}"
            for a in doc
        ]
    return [
        f'gcloud storage buckets add-iam-policy-binding "gs://{BUCKET_PLACEHOLDER}" '
        f"--member={shlex.quote(b['members'][0])} --role={b['role']} --condition="
        + shlex.quote(f"title={b['condition']['title']},expression={b['condition']['expression']}")
        for b in doc
    ]


def _files(target: str, environment: str, documents: dict[str, Any]) -> dict[Path, str]:
    folder = COMMITTED / target / environment
    return {folder / f"{name}.json": render(doc) for name, doc in documents.items()}


def _check(args: argparse.Namespace) -> int:
    targets = [args.target] if args.target else list(POLICY_TARGETS)
    environments = [args.env] if args.env else list(ENVIRONMENTS)
    stale = []
    for target in targets:
        for environment in environments:
            for path, text in _files(
                target, environment, _documents(args, target, environment)
            ).items():
                current = path.read_text(encoding="utf-8") if path.exists() else None
                if current != text:
                    stale.append(path)
                if args.write and current != text:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    if args.write:
        print(f"wrote {len(stale)} file(s) under {COMMITTED}")
        return 0
    for path in stale:
        print(
            f"{path} is out of date with the grants: run dataops storage-policy --write "
            "and apply it",
            file=sys.stderr,
        )
    if stale:
        return 1
    print(f"storage policies under {COMMITTED} match the grants")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.target == "local":
        print(
            "dataops storage-policy: target 'local' has no storage identities: nothing to "
            "generate.",
            file=sys.stderr,
        )
        return 2
    if args.check or args.write:
        return _check(args)
    if args.target is None:
        raise ConfigError("--target is required (one of: " + ", ".join(POLICY_TARGETS) + ").")
    environment = args.env or os.environ.get("DATAOPS_ENV") or "dev"
    documents = _documents(args, args.target, environment)
    if args.format == "shell":
        for name, doc in documents.items():
            print("\n".join(_shell(args.target, environment, name, doc)))
        return 0
    shown = documents[args.team] if args.team else documents
    print(json.dumps(shown, indent=2))
    return 0


def add_storage_policy_commands(commands: Any) -> None:
    """Register ``storage-policy`` on the ``dataops`` parser."""
    parser = commands.add_parser(
        "storage-policy", help="per-team storage permissions generated from the grants"
    )
    parser.add_argument("--target", choices=TARGETS)
    parser.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: DATAOPS_ENV)")
    parser.add_argument("--team", help="one identity: a team or dataset-api")
    parser.add_argument("--format", choices=("json", "shell"), default="json")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--check", action="store_true", help="exit 1 if deploy/ is out of date")
    which.add_argument("--write", action="store_true", help="regenerate deploy/storage-policies")
    parser.add_argument(
        "--bucket", default=BUCKET_PLACEHOLDER, help="bucket or container (default: a placeholder)"
    )
    parser.add_argument("--prefix", default="dataops", help="storage.prefix (default: dataops)")
    parser.add_argument(
        "--policy-dir",
        default=os.environ.get(POLICY_DIR_VARIABLE) or str(POLICY_DIR),
        help=argparse.SUPPRESS,
    )
    parser.set_defaults(run=_run)
