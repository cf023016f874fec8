"""The team image: deploy/Dockerfile parsed (Docker cannot run here) and the build commands."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from platform_core.cli import main
from platform_core.images import (
    DEFAULT_REGISTRY,
    DEFAULT_TAG,
    discover_teams,
    discover_tools,
    image_commands,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
TEAMS = discover_teams()


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_final_stage_is_slim_python_311() -> None:
    keyword, base = final_stage()[0]
    assert base == "python:3.11-slim"


def test_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the image never switches away from root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_installs_only_from_the_lock_file() -> None:
    runs = " ".join(arguments for keyword, arguments in final_stage() if keyword == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    assert "pip install" not in runs


def test_serves_the_team_code_location_over_grpc() -> None:
    steps = final_stage()
    assert not [step for step in steps if step[0] == "ENTRYPOINT"], (
        "the charts pass the serve command as container args; an ENTRYPOINT would prefix them"
    )
    [command] = [json.loads(arguments) for keyword, arguments in steps if keyword == "CMD"]
    serve = shlex.split(command[-1])
    assert serve[:4] == ["exec", "dagster", "code-server", "start"]
    assert serve[serve.index("-h") + 1] == "0.0.0.0"
    assert serve[serve.index("-p") + 1] == "4000"
    assert serve[serve.index("-m") + 1] == "assets.${DATAOPS_TEAM}.definitions"
    env = " ".join(arguments for keyword, arguments in steps if keyword == "ENV")
    assert "DATAOPS_TEAM=${TEAM}" in env
    assert ("EXPOSE", "4000") in steps
    assert ("ARG", "TEAM") in steps


@pytest.mark.parametrize("team", TEAMS)
def test_every_copied_file_exists_and_is_not_ignored(team: str) -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [arguments for keyword, arguments in instructions() if keyword == "COPY"]
    local = [args.split() for args in copies if not args.startswith("--from=")]
    assert local
    for *sources, _destination in local:
        for source in sources:
            path = source.replace("${TEAM}", team)
            assert (REPO_ROOT / path).exists(), f"COPY source {path} does not exist"
            assert path.rstrip("/").split("/")[0] not in ignored, f"{path} is in .dockerignore"
    assert any(f"assets/{team}/" == args[0].replace("${TEAM}", team) for args in local)


def test_teams_are_the_asset_packages() -> None:
    assert sorted(path.parent.name for path in REPO_ROOT.glob("assets/*/definitions.py")) == TEAMS
    assert {"sales", "analytics"} <= set(TEAMS)


def test_build_and_push_commands_per_team() -> None:
    commands = [shlex.split(command) for command in image_commands()]
    assert len(commands) == 2 * (len(TEAMS) + len(discover_tools()))
    team_commands = commands[: 2 * len(TEAMS)]
    for team, build, push in zip(TEAMS, team_commands[::2], team_commands[1::2], strict=True):
        image = f"{DEFAULT_REGISTRY}/dataops-{team}:{DEFAULT_TAG}"
        assert build[:4] == ["docker", "build", "--file", "deploy/Dockerfile"]
        assert build[build.index("--build-arg") + 1] == f"TEAM={team}"
        assert build[build.index("--tag") + 1] == image
        assert build[-1] == "."
        assert push == ["docker", "push", image]
    assert image_commands(registry="r.example/x", tag="1.2.3", push=False)[0].endswith(
        f"--tag r.example/x/dataops-{TEAMS[0]}:1.2.3 ."
    )


def test_pipes_tools_get_their_own_image_from_their_own_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert ("analytics", "scoring", REPO_ROOT / "assets/analytics/scoring_job") in discover_tools()
    assert main(["images", "--registry", "r.example/x", "--tag", "2.0", "--no-push"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == (
        "docker build --tag r.example/x/dataops-analytics-scoring:2.0 assets/analytics/scoring_job"
    )
    assert not any(line.startswith("docker push") for line in printed)
    tool = (REPO_ROOT / "assets/analytics/scoring_job/Dockerfile").read_text()
    assert "\nUSER 10001\n" in tool


def test_a_team_dependency_group_reaches_only_that_team_image(tmp_path: Path) -> None:
    for team in ("alpha", "beta"):
        (tmp_path / "assets" / team).mkdir(parents=True)
        (tmp_path / "assets" / team / "definitions.py").write_text("defs = None\n")
    (tmp_path / "pyproject.toml").write_text('[dependency-groups]\nteam-beta = ["polars"]\n')
    alpha, beta = image_commands(push=False, root=tmp_path)
    assert "TEAM_DEPENDENCY_GROUP" not in alpha
    assert "--build-arg TEAM_DEPENDENCY_GROUP=team-beta" in beta
