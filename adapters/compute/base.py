"""The compute contract: where a team's steps run and how its external tools are launched.

A compute adapter is built from typed fields (``platform_core.compute_factory`` fills them from
the deployment's ``compute`` settings). When a code location loads it gives the team's executor
(with every asset's compute hints checked and applied) and the ``pipes`` resource through which
assets run tools that ship with their own runtime.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class Tool:
    """An external program with its own dependencies, run through Dagster Pipes.

    Locally ``script`` runs in a subprocess; on Kubernetes the team's tool image
    ``<image_registry>/dataops-<team>-<name>:<image_tag>`` runs with ``script`` as its entrypoint.
    """

    name: str
    script: Path


class ToolRunner(ABC):
    """The ``pipes`` resource: runs a tool for the current asset and returns what it reported."""

    @abstractmethod
    def run(
        self, context: dg.AssetExecutionContext, tool: Tool, extras: Mapping[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        """Run ``tool`` with ``extras`` as Pipes extras; raise if it fails."""


class ComputeAdapter(ABC):
    """One kind of compute (local processes, Kubernetes pods) configured for a deployment."""

    @abstractmethod
    def executor(self, team: str, assets: Iterable[object]) -> dg.ExecutorDefinition:
        """The configured executor for the team's runs; ConfigError on an invalid compute hint."""

    @abstractmethod
    def pipes_resource(self, team: str) -> ToolRunner:
        """The team's ``pipes`` resource."""

    @abstractmethod
    def check(self) -> None:
        """Raise ConfigError, once and clearly, if steps and tools cannot run from here."""
