"""``dataops``: the platform's command line, a thin shell over what the code locations use."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import dagster as dg

from config import ConfigError, load_deployment
from config.secrets import masked
from platform_core.api.commands import add_api_commands
from platform_core.audit.commands import add_audit_commands
from platform_core.compute_factory import compute_for
from platform_core.dagster_home import prepare_dagster_home
from platform_core.governance.commands import add_commands as add_governance_commands
from platform_core.governance.storage_policy_commands import add_storage_policy_commands
from platform_core.images import DEFAULT_REGISTRY, DEFAULT_TAG, image_commands
from platform_core.landing import LandingZone
from platform_core.lineage.export import export_lineage, since_time
from platform_core.materialize import WORKSPACE_FILE, materialize_all, workspace_locations
from platform_core.promote import add_promote_commands
from platform_core.remote.commands import add_remote_commands
from platform_core.run_log import RunLog
from platform_core.storage_factory import storage_for


def _materialize(args: argparse.Namespace) -> int:
    home = prepare_dagster_home()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_log = RunLog(home / "logs" / f"materialize-{stamp}.log", verbose=args.verbose)
    with dg.DagsterInstance.get() as instance, run_log.capturing_warnings():
        ok = materialize_all(
            instance,
            Path(args.workspace),
            only_missing=args.missing,
            with_samples=args.with_samples,
            run_log=run_log,
            select=args.select,
        )
    if run_log.path.exists():
        print(f"Dagster's event log of these runs: {run_log.path}")
    print("all data products materialized" if ok else "materialization failed")
    return 0 if ok else 1


def _land(args: argparse.Namespace) -> int:
    """Land each feed's sample, audited as the writer ``cli-land`` of each team."""
    landed = 0
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        for location in workspace_locations(Path(args.workspace)):
            team = location.team()
            landing: LandingZone = team.definitions().resources["landing"]
            if landing.audit is not None:
                landing.audit.bind_writer("cli-land", instance)
            for feed in team.feeds:
                if feed.sample is None:
                    continue
                info = feed.land_sample(landing, datetime.now(UTC))
                uri = landing.storage.uri(info.key)
                print(f"{location.name}: landed {uri} for {feed.sensor_name}")
                landed += 1
            if landing.audit is not None:
                landing.audit.flush()
    if not landed:
        print("dataops land: no landing sensor with a sample in the workspace.", file=sys.stderr)
    return 0 if landed else 1


def _config(_: argparse.Namespace) -> int:
    """Validate first (adapters built, bucket checked), then print, secret-shaped values masked."""
    deployment = load_deployment()
    storage = storage_for(deployment)
    compute_for(deployment)
    print(f"target:      {deployment.target}")
    print(f"environment: {deployment.environment}")
    template = unquote(storage.uri(f"{deployment.environment}/<team>/<product>.parquet"))
    print(f"storage:     {type(storage).__name__} at {template}")
    for section in (deployment.storage, deployment.compute):
        for key in sorted(section.values):
            value = masked(key, section.values[key])
            print(f"  {section.name}.{key} = {value!r}  ({section.source(key)})")
    return 0


def _images(args: argparse.Namespace) -> int:
    for command in image_commands(registry=args.registry, tag=args.tag, push=args.push):
        print(command)
    return 0


def _lineage_export(args: argparse.Namespace) -> int:
    locations = workspace_locations(Path(args.workspace))
    specs = [spec for loc in locations for spec in loc.load().resolve_all_asset_specs()]
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        done = export_lineage(instance, specs, load_deployment(), args.since, args.output)
    print(done.summary(args.output))
    return 1 if done.delivery is not None and done.delivery.pending else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    materialize = commands.add_parser(
        "materialize", help="materialise data products of every code location in dependency order"
    )
    which = materialize.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every asset, every partition")
    which.add_argument(
        "--missing",
        action="store_true",
        help="only assets and partitions that have never been materialised",
    )
    which.add_argument(
        "--select", action="append", metavar="TEAM/NAME", help="only these data products"
    )
    materialize.add_argument(
        "--verbose", action="store_true", help="also print Dagster's event stream to stderr"
    )
    materialize.add_argument(
        "--with-samples",
        action="store_true",
        help="land the feeds' sample files even outside dev and test (never done otherwise)",
    )
    materialize.add_argument("--workspace", default=str(WORKSPACE_FILE), help="workspace.yaml")
    materialize.set_defaults(run=_materialize)
    land = commands.add_parser(
        "land", help="drop a new synthetic file into each landing zone, for the sensors to ingest"
    )
    land.add_argument("--workspace", default=str(WORKSPACE_FILE), help="workspace.yaml")
    land.set_defaults(run=_land)
    config = commands.add_parser("config", help="show the resolved deployment and check storage")
    config.set_defaults(run=_config)
    images = commands.add_parser("images", help="print the docker commands for every team image")
    images.add_argument("--registry", default=DEFAULT_REGISTRY)
    images.add_argument("--tag", default=DEFAULT_TAG)
    images.add_argument("--no-push", dest="push", action="store_false")
    images.set_defaults(run=_images)
    add_governance_commands(commands)
    add_storage_policy_commands(commands)
    lineage = commands.add_parser("lineage", help="OpenLineage events of past runs")
    export = lineage.add_subparsers(dest="action", required=True).add_parser(
        "export", help="rebuild past runs' events: to DIR/<run_id>.jsonl, or send them"
    )
    export.add_argument("--since", type=since_time, help="runs created at or after T (ISO 8601)")
    export.add_argument("--output", type=Path, help="write DIR/<run_id>.jsonl instead of sending")
    export.add_argument("--workspace", default=str(WORKSPACE_FILE), help="workspace.yaml")
    export.set_defaults(run=_lineage_export)
    add_remote_commands(commands)
    add_promote_commands(commands)
    add_api_commands(commands)
    add_audit_commands(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"dataops: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
