"""Container images of the platform: one per team code location, from ``deploy/Dockerfile``.

A team is a package ``assets/<team>/`` with a ``definitions.py``. A team that needs libraries of
its own declares them in ``pyproject.toml`` as the dependency group ``team-<team>`` (then
``uv lock``); its image, and only its image, installs that group.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "deploy/Dockerfile"
DEFAULT_REGISTRY = "registry.example.com/dataops"
DEFAULT_TAG = "0.1.0"


def discover_teams(root: Path = REPO_ROOT) -> list[str]:
    """Every team package under ``assets/``, sorted."""
    return sorted(path.parent.name for path in (root / "assets").glob("*/definitions.py"))


def discover_tools(root: Path = REPO_ROOT) -> list[tuple[str, str, Path]]:
    """Every Pipes tool with its own runtime: ``assets/<team>/<tool>_job/Dockerfile``, sorted.

    Returns ``(team, tool, folder)``; the folder is the tool image's build context.
    """
    return sorted(
        (path.parent.parent.name, path.parent.name.removesuffix("_job"), path.parent)
        for path in (root / "assets").glob("*/*_job/Dockerfile")
    )


def image_name(team: str, registry: str = DEFAULT_REGISTRY, tag: str = DEFAULT_TAG) -> str:
    """``<registry>/dataops-<team>:<tag>``; a tool's is ``dataops-<team>-<tool>``."""
    return f"{registry.rstrip('/')}/dataops-{team}:{tag}"


def _dependency_groups(root: Path) -> set[str]:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    return set(pyproject.get("dependency-groups", {}))


def image_commands(
    registry: str = DEFAULT_REGISTRY,
    tag: str = DEFAULT_TAG,
    push: bool = True,
    root: Path = REPO_ROOT,
) -> list[str]:
    """The shell commands that build (and push) every team's image, run from the repo root."""
    groups = _dependency_groups(root)
    commands = []
    for team in discover_teams(root):
        image = image_name(team, registry, tag)
        build = ["docker", "build", "--file", DOCKERFILE, "--build-arg", f"TEAM={team}"]
        if f"team-{team}" in groups:
            build += ["--build-arg", f"TEAM_DEPENDENCY_GROUP=team-{team}"]
        commands.append(shlex.join([*build, "--tag", image, "."]))
        if push:
            commands.append(shlex.join(["docker", "push", image]))
    for team, tool, folder in discover_tools(root):
        image = image_name(f"{team}-{tool}", registry, tag)
        commands.append(
            shlex.join(["docker", "build", "--tag", image, str(folder.relative_to(root))])
        )
        if push:
            commands.append(shlex.join(["docker", "push", image]))
    return commands
