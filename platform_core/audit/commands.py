"""``dataops audit export`` and ``dataops audit verify``, for the deployment's environment.

``export`` prints JSON lines by default, or writes ``--format csv|parquet`` to ``--output``
(whole or not at all); Parquet is binary, so it needs ``--output``. ``verify`` exits 0 when every
chain is intact, 1 when a record was changed, removed, reordered or truncated (naming the first
bad record of each chain), 2 on a configuration error (settings, storage, Dagster instance).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import dagster as dg

from adapters.storage.base import StorageError
from config import load_deployment
from platform_core.audit.export import (
    FORMATS,
    audit_records,
    write_csv,
    write_jsonl,
    write_parquet,
)
from platform_core.audit.verify import verify
from platform_core.dagster_home import prepare_dagster_home
from platform_core.lineage.export import since_time
from platform_core.storage_factory import storage_for

TAMPERED = 1
CONFIGURATION = 2


def _export(args: argparse.Namespace) -> int:
    if args.format == "parquet" and args.output is None:
        print("dataops audit export: --format parquet needs --output FILE.", file=sys.stderr)
        return CONFIGURATION
    deployment = load_deployment()
    try:
        records, unreadable = audit_records(
            storage_for(deployment), deployment.environment, args.since
        )
    except StorageError as exc:
        print(f"dataops audit export: {exc}", file=sys.stderr)
        return CONFIGURATION
    if unreadable:
        print(
            f"dataops audit export: {unreadable} stored lines are not audit records and were "
            "left out; run `dataops audit verify`.",
            file=sys.stderr,
        )
    if args.output is None:
        (write_csv if args.format == "csv" else write_jsonl)(records, sys.stdout)
        return 0
    output = Path(args.output)
    fd, temp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent.absolute())
    os.close(fd)
    try:
        if args.format == "parquet":
            write_parquet(records, Path(temp))
        else:
            with open(temp, "w", newline="", encoding="utf-8") as out:
                (write_csv if args.format == "csv" else write_jsonl)(records, out)
        os.replace(temp, output)
    finally:
        Path(temp).unlink(missing_ok=True)
    print(f"{len(records)} audit records written to {output}", file=sys.stderr)
    return 0


def _verify(_: argparse.Namespace) -> int:
    deployment = load_deployment()
    storage = storage_for(deployment)
    prepare_dagster_home()
    try:
        with dg.DagsterInstance.get() as instance:
            verdict = verify(storage, deployment.environment, instance)
    except StorageError as exc:
        print(f"dataops audit verify: {exc}", file=sys.stderr)
        return CONFIGURATION
    where = f"environment '{deployment.environment}' on target '{deployment.target}'"
    if verdict.intact:
        print(f"audit trail intact: {verdict.chains} chains, {verdict.records} records ({where})")
        return 0
    for problem in verdict.problems:
        print(f"tampered: {problem.describe()}")
    print(f"audit trail of {where} is NOT intact: {len(verdict.problems)} chains broken")
    return TAMPERED


def add_audit_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``dataops audit export`` and ``dataops audit verify``."""
    audit = commands.add_parser("audit", help="the tamper-evident audit trail of data access")
    actions = audit.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="audit records, oldest first (JSON lines)")
    export.add_argument("--since", type=since_time, help="records at or after T (ISO 8601)")
    export.add_argument("--format", choices=FORMATS, default="jsonl")
    export.add_argument("--output", help="write to FILE instead of stdout (parquet needs it)")
    export.set_defaults(run=_export)
    check = actions.add_parser(
        "verify", help="check every chain against its anchors: 0 intact, 1 tampered, 2 config"
    )
    check.set_defaults(run=_verify)
