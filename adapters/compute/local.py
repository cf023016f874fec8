"""Local compute: steps run in this process or in child processes, tools as subprocesses."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from adapters.compute.base import ComputeAdapter, Tool, ToolRunner
from adapters.compute.hints import hints_for


@dataclass(frozen=True)
class LocalToolRunner(ToolRunner):
    """Runs a tool's script with ``python`` in a subprocess (PipesSubprocessClient)."""

    python: str = sys.executable

    def run(
        self, context: dg.AssetExecutionContext, tool: Tool, extras: Mapping[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        return dg.PipesSubprocessClient().run(
            context=context, command=[self.python, str(tool.script)], extras=dict(extras)
        )


@dataclass(frozen=True)
class LocalCompute(ComputeAdapter):
    """``kind`` ``in_process`` or ``multiprocess`` (at most ``max_concurrent`` steps at once).

    Tools run with ``tool_python`` (default: this interpreter), e.g. another venv's python.
    """

    kind: str
    max_concurrent: int = 4
    tool_python: str = sys.executable

    def executor(self, team: str, assets: Iterable[object]) -> dg.ExecutorDefinition:
        """Hints are checked (a typo fails here as on every target) and otherwise ignored."""
        list(hints_for(assets))
        if self.kind == "in_process":
            return dg.in_process_executor
        return dg.multiprocess_executor.configured(
            {"max_concurrent": self.max_concurrent}, name=f"dataops_{team}_multiprocess"
        )

    def check(self) -> None:
        """Local processes always can."""

    def pipes_resource(self, team: str) -> ToolRunner:
        return LocalToolRunner(python=self.tool_python)
