"""Shared fixtures: every test reaches a target the way a user does, through environment variables.

``target_env`` is parametrised over every infrastructure target. Each target's fixture
(``<target>_target_env``) returns the variables that point the platform at a fresh, empty
bucket on that target's real local server; the servers start once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from postgres_server import postgres_server  # noqa: F401  (pytest fixture)
from servers import (  # noqa: F401  (pytest fixtures)
    aws_target_env,
    azure_target_env,
    azurite_server,
    gcp_target_env,
    gcs_server,
    onprem_target_env,
    s3_server,
)

from config import TARGETS

DATAOPS_VARIABLES = ("DATAOPS_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")


TEST_PSEUDONYM_KEY = "test-only-pseudonym-key-0123456789abcdef"
OWNER_SECRETS = {"DATAOPS_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees deployment variables from the shell that started pytest.

    Every test runs as an owner location does: with a pseudonymisation key in its environment.
    """
    for name in list(os.environ):
        if name.startswith(DATAOPS_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATAOPS_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)


@pytest.fixture
def local_target_env(tmp_path: Path) -> dict[str, str]:
    return {"DATAOPS_TARGET": "local", "DATAOPS_LOCAL_ROOT": str(tmp_path / "storage")}


@pytest.fixture(params=TARGETS)
def target_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.getfixturevalue(f"{request.param}_target_env")


@pytest.fixture
def use_target(
    target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Put ``target_env`` into the process environment, as a user's shell would."""
    for name, value in target_env.items():
        monkeypatch.setenv(name, value)
    yield target_env


def write_policy(
    folder: Path, teams: list, access: str = "grants: []\n", compliance: str | None = None
) -> Path:
    """A policy folder for test-only teams: their product manifest, ``access`` as the policy and
    ``compliance`` as the compliance policy (none by default)."""
    from platform_core.governance.compliance_policy import COMPLIANCE_FILE, load_compliance
    from platform_core.governance.products import products_of, render

    folder.mkdir(parents=True, exist_ok=True)
    if compliance is not None:
        (folder / COMPLIANCE_FILE).write_text(compliance)
    keys = [key.to_user_string() for team in teams for a in team.assets for key in a.keys]
    rules = load_compliance(keys, folder)
    products = {}
    for team in teams:
        products.update(products_of(team.assets, rules))
    (folder / "products.yaml").write_text(render(products))
    (folder / "access.yaml").write_text(access)
    return folder


def run_dataops(args: list, env: dict, home: Path) -> subprocess.CompletedProcess:
    """``dataops ARGS`` as a user runs it: its own process, this venv, ``env`` on top."""
    full_env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(Path(__file__).parent),
        **OWNER_SECRETS,
        **env,
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "dataops"), *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@contextmanager
def deployment_environment(env: dict) -> Iterator[None]:
    """The process environment of a module-scoped fixture: only ``env`` of the deployment's."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(DATAOPS_VARIABLES):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        yield
