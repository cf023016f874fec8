"""The process environment, read in exactly one place.

A deployment takes one snapshot of the environment when it is resolved; adapters that need a
credential at the moment they build an SDK client look it up by name here, so no credential
value is ever copied into a resource's configuration, a manifest or metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType


def snapshot(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy of ``environ`` (the process environment by default)."""
    return MappingProxyType(dict(os.environ if environ is None else environ))


def variable(name: str) -> str | None:
    """The current value of one variable (a credential an SDK client needs), or None if unset."""
    return os.environ.get(name) or None
