"""``dataops``: the platform's command line, a thin shell over what the code locations use."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from platform_core.images import DEFAULT_REGISTRY, DEFAULT_TAG, image_commands
from platform_core.landing import LandingZone
from platform_core.materialize import WORKSPACE_FILE, materialize_all, workspace_locations
from platform_core.promote import add_promote_commands
from platform_core.remote.commands import add_remote_commands
from platform_core.sensors import landing_feeds
from platform_core.settings import ConfigError, load_deployment
from platform_core.targets import storage_for

DEFAULT_DAGSTER_HOME = ".dagster_home"


def dagster_instance() -> dg.DagsterInstance:
    """The persistent instance under ``DAGSTER_HOME``; a project-local one when it is unset."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).absolute())))
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def _materialize(args: argparse.Namespace) -> int:
    if not args.all:
        print("dataops materialize: say --all to materialise every data product.", file=sys.stderr)
        return 2
    with dagster_instance() as instance:
        ok = materialize_all(instance, workspace=Path(args.workspace))
    print("all data products materialized" if ok else "materialization failed")
    return 0 if ok else 1


def _land(args: argparse.Namespace) -> int:
    landed = 0
    for location in workspace_locations(Path(args.workspace)):
        defs = location.load()
        landing: LandingZone = defs.resources["landing"]
        for feed in landing_feeds(defs):
            if feed.sample is None:
                continue
            info = feed.land_sample(landing, datetime.now(UTC))
            print(f"{location.name}: landed {landing.storage.uri(info.key)} for {feed.sensor.name}")
            landed += 1
    if not landed:
        print("dataops land: no landing sensor with a sample in the workspace.", file=sys.stderr)
    return 0 if landed else 1


def _config(_: argparse.Namespace) -> int:
    deployment = load_deployment()
    storage = storage_for(deployment)
    print(f"target:      {deployment.target}")
    print(f"environment: {deployment.environment}")
    print(f"storage:     {type(storage).__name__} at {storage.uri('<key>')}")
    for section in (deployment.storage, deployment.compute):
        for key in sorted(section.values):
            print(f"  {section.name}.{key} = {section.values[key]!r}  ({section.source(key)})")
    return 0


def _images(args: argparse.Namespace) -> int:
    for command in image_commands(registry=args.registry, tag=args.tag, push=args.push):
        print(command)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    materialize = commands.add_parser(
        "materialize", help="materialise data products of every code location in dependency order"
    )
    materialize.add_argument("--all", action="store_true", help="every asset, every partition")
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
    add_remote_commands(commands)
    add_promote_commands(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"dataops: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
