"""Local compute: steps run in this process or in child processes, tools as subprocesses."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from adapters.compute.base import ComputeAdapter, Tool, ToolRunner, max_concurrent
from platform_core.compute_hints import hints_for
from platform_core.settings import Deployment

EXECUTORS = ("in_process", "multiprocess")


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
    """``compute.executor`` ``in_process`` or ``multiprocess`` (``compute.max_concurrent``).

    Tools run with ``compute.tool_python`` (default: this interpreter), e.g. another venv's python.
    """

    kind: str
    max_concurrent: int
    tool_python: str

    @classmethod
    def from_settings(cls, deployment: Deployment) -> LocalCompute:
        kind = deployment.compute.get("executor")
        if kind not in EXECUTORS:
            raise deployment.compute.error(
                "executor", f"is {kind!r}, not a local executor", f"Use one of: {EXECUTORS}."
            )
        return cls(
            kind=kind,
            max_concurrent=max_concurrent(deployment),
            tool_python=deployment.compute.get("tool_python") or sys.executable,
        )

    def executor(self, team: str, assets: Iterable[object]) -> dg.ExecutorDefinition:
        """Hints are checked (a typo fails here as on every target) and otherwise ignored."""
        list(hints_for(assets))
        if self.kind == "in_process":
            return dg.in_process_executor
        return dg.multiprocess_executor.configured(
            {"max_concurrent": self.max_concurrent}, name=f"dataops_{team}_multiprocess"
        )

    def pipes_resource(self, team: str) -> ToolRunner:
        return LocalToolRunner(python=self.tool_python)
