"""Materialise every data product of every code location, in dependency order, from one command.

What ``dataops materialize --all`` (everything) and ``--missing`` (only what was never
materialised) run, for CI and for enterprise schedulers that can only call a command. Locations
are ordered by the asset keys they read from each other; within a location, assets run in
topological order, one run per known partition of partitioned assets, on the Dagster instance
given (so every run shows in the UI's history). Files in a location's landing zones (seeded with
the feed's sample files when empty) are found by its landing sensors first, and their runs carry
the sensor's run keys, so the sensor's daemon does not ingest them again. A failed run does not
stop the job: what depends on it is skipped, the rest runs, and the summary lists every failure.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from graphlib import TopologicalSorter
from pathlib import Path

import dagster as dg
import yaml

from config import ConfigError, load_deployment
from platform_core.compute_factory import compute_for
from platform_core.definitions import Team
from platform_core.feeds import deleted_landing_files, land_samples, register_landed_files
from platform_core.governance.compliance import refuse_left_out
from platform_core.lineage.emit import emit_run_lineage
from platform_core.materialized import MaterializedIndex
from platform_core.run_log import RunLog
from platform_core.run_report import (
    MATERIALIZED,
    MainJobReport,
    RunOutcome,
    outcome_of_run,
    skipped_assets,
)

WORKSPACE_FILE = Path(__file__).resolve().parent.parent / "workspace.yaml"


@dataclass(frozen=True)
class CodeLocation:
    """One entry of ``workspace.yaml``: a team module, its ``team`` and its definitions."""

    name: str
    module: str

    def team(self) -> Team:
        """The ``Team`` the module declares (its feeds, products and checks)."""
        team = getattr(importlib.import_module(self.module), "team", None)
        if not isinstance(team, Team):
            raise ConfigError(
                f"Code location '{self.name}' ({self.module}) declares no `team`: a team module "
                "holds `team = Team(...)` and `defs` built from it with @dg.definitions."
            )
        return team

    def load(self) -> dg.Definitions:
        """The location's definitions, built for the current environment variables."""
        return self.team().definitions()


@dataclass(frozen=True)
class Step:
    """One run: assets that share a partitioning, for one partition (or none)."""

    location: str
    asset_keys: tuple[dg.AssetKey, ...]
    partition_key: str | None


def workspace_locations(workspace: Path = WORKSPACE_FILE) -> list[CodeLocation]:
    """The code locations ``workspace.yaml`` lists (python_module entries)."""
    entries = (yaml.safe_load(workspace.read_text()) or {}).get("load_from", [])
    locations = []
    for entry in entries:
        module = entry.get("python_module")
        if not isinstance(module, dict) or "module_name" not in module:
            raise ConfigError(
                f"{workspace}: each load_from entry must be a python_module with module_name."
            )
        name = module.get("location_name", module["module_name"])
        locations.append(CodeLocation(name=name, module=module["module_name"]))
    return locations


def _location_order(definitions: dict[str, dg.Definitions]) -> list[str]:
    owner = {
        key: name
        for name, defs in definitions.items()
        for key in defs.resolve_asset_graph().materializable_asset_keys
    }
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name, defs in definitions.items():
        graph = defs.resolve_asset_graph()
        upstream = {owner[key] for key in graph.external_asset_keys if key in owner} - {name}
        sorter.add(name, *upstream)
    return list(sorter.static_order())


def _selected(definitions: dict[str, dg.Definitions], select: Sequence[str]) -> set[dg.AssetKey]:
    """The selected keys, each defined by a location; ResidencyError for one left out."""
    wanted = [dg.AssetKey(product.split("/")) for product in select]
    for defs in definitions.values():
        refuse_left_out(defs, wanted)
    known = {
        key
        for defs in definitions.values()
        for key in defs.resolve_asset_graph().materializable_asset_keys
    }
    unknown = [key.to_user_string() for key in wanted if key not in known]
    if unknown:
        raise ConfigError(f"--select names no data product of any location: {', '.join(unknown)}.")
    return set(wanted)


def plan(location: str, defs: dg.Definitions, instance: dg.DagsterInstance) -> Iterator[Step]:
    """The runs that materialise every asset of one location, upstream first.

    Assets of one topological level that share a partitioning run together, once per partition.
    """
    graph = defs.resolve_asset_graph()
    for level in graph.toposorted_asset_keys_by_level:
        groups: list[tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]] = []
        for key in sorted(k for k in level if k in graph.materializable_asset_keys):
            partitions_def = graph.get(key).partitions_def
            group = next((keys for pd, keys in groups if pd == partitions_def), None)
            if group is None:
                groups.append((partitions_def, [key]))
            else:
                group.append(key)
        for partitions_def, keys in groups:
            if partitions_def is None:
                yield Step(location, tuple(keys), None)
                continue
            for partition in partitions_def.get_partition_keys(dynamic_partitions_store=instance):
                yield Step(location, tuple(keys), partition)


def materialize_all(
    instance: dg.DagsterInstance,
    workspace: Path = WORKSPACE_FILE,
    echo: Callable[[str], None] = print,
    *,
    only_missing: bool = False,
    with_samples: bool = False,
    run_log: RunLog | None = None,
    select: Sequence[str] | None = None,
) -> bool:
    """Materialise what every location defines; True when no run failed.

    Every run is attempted: an asset whose unpartitioned upstream did not materialise (failed or
    skipped) is skipped and said so; independent assets still run. ``only_missing`` runs only
    assets and partitions the instance has never materialised. The closing summary lists every
    failure. With ``run_log``, Dagster's event stream goes to its file, not the console.
    ``select`` (``team/name`` keys) runs only those products; one that residency left out of
    this deployment, or that no location defines, is a ConfigError before anything runs.

    A partitioned upstream never blocks a downstream asset, since the IO manager loads the
    healthy partitions (and fails by its own policy when too many are missing). Sample files
    land only in ``dev`` and ``test`` (or with ``with_samples``). A landing file deleted after it
    was registered is not ingested again: its stored partition stays the source.
    """
    compute_for(load_deployment()).check()
    teams = {location.name: location.team() for location in workspace_locations(workspace)}
    definitions = {name: team.definitions() for name, team in teams.items()}
    wanted = _selected(definitions, select) if select else None
    report = MainJobReport()
    index = MaterializedIndex(instance) if only_missing else None
    unavailable: set[dg.AssetKey] = set()
    for name in _location_order(definitions):
        defs = definitions[name]
        feeds, landing = teams[name].feeds, defs.resources["landing"]
        for info in land_samples(feeds, landing, with_samples):
            echo(f"{name}: landed sample {info.key}")
        landed = register_landed_files(feeds, landing, instance)
        gone = deleted_landing_files(feeds, landing, instance)
        job = defs.resolve_implicit_global_asset_job_def()
        graph = defs.resolve_asset_graph()
        for step in plan(name, defs, instance):
            keys = index.missing(step.asset_keys, step.partition_key) if index else step.asset_keys
            keys = tuple(key for key in keys if wanted is None or key in wanted)
            if not keys:
                continue
            partition = f" [{step.partition_key}]" if step.partition_key else ""
            if step.partition_key in gone:
                echo(f"{name}: {step.partition_key} skipped: its landing file was deleted")
                continue
            title = f"{name}: {', '.join(key.to_user_string() for key in keys)}{partition}"
            echo(title)
            blocked = {key: graph.get(key).parent_keys & unavailable for key in keys}
            runnable = [key for key in keys if not blocked[key]]
            skipped = skipped_assets([key for key in keys if blocked[key]], blocked)
            outcome = RunOutcome(skipped)
            if runnable:
                result = job.execute_in_process(
                    instance=instance,
                    asset_selection=runnable,
                    partition_key=step.partition_key,
                    tags=landed.get(step.partition_key or ""),
                    run_config=run_log.run_config(job) if run_log else None,
                    raise_on_error=False,
                )
                if run_log:
                    run_log.append_run(instance, result.run_id, title)
                emit_run_lineage(instance, result.run_id, defs.resolve_all_asset_specs())
                ran = outcome_of_run(name, step.partition_key, defs, result, instance, runnable)
                outcome = replace(ran, assets=ran.assets + skipped)
            report.add(outcome, echo)
            if step.partition_key is None:
                unavailable |= {a.asset_key for a in outcome.assets if a.status != MATERIALIZED}
    for line in report.summary():
        echo(line)
    return report.ok
