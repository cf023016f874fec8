"""Tools that ship with their own runtime, run through Dagster Pipes by the ``pipes`` resource.

Asset code names a ``Tool`` and receives a ``ToolRunner``; the compute adapter of the target
decides whether the tool runs as a local subprocess or as a Kubernetes pod.
"""

from adapters.compute.base import Tool, ToolRunner

__all__ = ["Tool", "ToolRunner"]
