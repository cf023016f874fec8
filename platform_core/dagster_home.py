"""The Dagster instance directory the CLI and ``make run`` use, with deliberate local settings.

``DAGSTER_HOME`` is honoured when set; otherwise it is ``.dagster_home`` in the current directory.
A home without a ``dagster.yaml`` gets ``local_instance.yaml`` (SQLite under the home, a run queue
with a concurrency limit, telemetry off), so Dagster never falls back to unstated defaults.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from importlib import resources
from pathlib import Path

DEFAULT_DAGSTER_HOME = ".dagster_home"
INSTANCE_FILE = "dagster.yaml"


def local_instance_settings() -> str:
    """The ``dagster.yaml`` written into a home that has none."""
    return resources.files("platform_core").joinpath("local_instance.yaml").read_text()


def prepare_dagster_home() -> Path:
    """The instance directory, created with its ``dagster.yaml`` when missing; sets DAGSTER_HOME."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path(DEFAULT_DAGSTER_HOME).absolute())
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / INSTANCE_FILE
    if not config.exists():
        fd, temp = tempfile.mkstemp(prefix=f".{INSTANCE_FILE}.", dir=home)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(local_instance_settings())
            with contextlib.suppress(FileExistsError):
                os.link(temp, config)
        finally:
            os.unlink(temp)
    return home
