"""Materialise every data product of every code location, in dependency order, from one command.

What ``dataops materialize --all`` runs, for CI and for enterprise schedulers that can only call
a command. Locations are ordered by the asset keys they read from each other; within a location,
assets run in topological order, one run per known partition of partitioned assets, on the
Dagster instance given (so every run shows in the UI's history). Files in a location's landing
zones (seeded with the feed's sample files when empty) are found by its landing sensors first, and
their runs carry the sensor's run keys, so the sensor's daemon does not ingest them again.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import dagster as dg
import yaml

from platform_core.lineage.emit import emit_run_lineage
from platform_core.sensors import land_samples, register_landed_files
from platform_core.settings import ConfigError

WORKSPACE_FILE = Path(__file__).resolve().parent.parent / "workspace.yaml"


@dataclass(frozen=True)
class CodeLocation:
    """One entry of ``workspace.yaml``: a team's module and the definitions it loads."""

    name: str
    module: str

    def load(self) -> dg.Definitions:
        """The location's definitions, built afresh for the current environment variables."""
        if self.module in sys.modules:
            return importlib.reload(sys.modules[self.module]).defs
        return importlib.import_module(self.module).defs


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


def _report(result: dg.ExecuteInProcessResult, echo: Callable[[str], None]) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        rows = materialization.metadata.get("dagster/row_count")
        uri = materialization.metadata.get("dagster/uri")
        partition = f" [{materialization.partition}]" if materialization.partition else ""
        echo(
            f"  materialized {materialization.asset_key.to_user_string()}{partition}: "
            f"{rows.value if rows else '?'} rows -> {uri.value if uri else '?'}"
        )
    for evaluation in result.get_asset_check_evaluations():
        verdict = "passed" if evaluation.passed else "FAILED"
        echo(f"  check {evaluation.asset_check_key.to_user_string()}: {verdict}")
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            echo(f"  FAILED step {event.step_key}: {error.message.strip()}")


def materialize_all(
    instance: dg.DagsterInstance,
    workspace: Path = WORKSPACE_FILE,
    echo: Callable[[str], None] = print,
) -> bool:
    """Materialise everything every location defines; False as soon as one run fails."""
    definitions = {location.name: location.load() for location in workspace_locations(workspace)}
    for name in _location_order(definitions):
        defs = definitions[name]
        for info in land_samples(defs):
            echo(f"{name}: landed sample {info.key}")
        landed = register_landed_files(defs, instance)
        job = defs.resolve_implicit_global_asset_job_def()
        for step in plan(name, defs, instance):
            keys = ", ".join(key.to_user_string() for key in step.asset_keys)
            partition = f" [{step.partition_key}]" if step.partition_key else ""
            echo(f"{name}: {keys}{partition}")
            result = job.execute_in_process(
                instance=instance,
                asset_selection=list(step.asset_keys),
                partition_key=step.partition_key,
                tags=landed.get(step.partition_key or ""),
                raise_on_error=False,
            )
            _report(result, echo)
            emit_run_lineage(instance, result.run_id, defs.resolve_all_asset_specs())
            if not result.success:
                echo(f"{name}: run {result.run_id} failed")
                return False
    return True
