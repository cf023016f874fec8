"""The CI pipelines: valid for real validators, and shaped as build once, promote everywhere.

``actionlint`` (with ShellCheck on ``PATH`` it also checks every ``run:`` script) and
``check-jsonschema`` with its vendored GitHub workflow and GitLab CI schemas, offline. Each
validator is also shown a broken copy, to prove it is looking. The promotion script the jobs run
is run here too, on a copy of the Helm values: dev from the recorded images, prod from preprod
(the steps between are the same call, made in process to keep the test short).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform_core.images import discover_teams, image_commands
from platform_core.promote import HELM_DIR, deployed_images, promote

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
GITLAB = ROOT / ".gitlab-ci.yml"
SCRIPTS = ROOT / "deploy" / "ci"
CHAIN = ["dev", "test", "preprod", "prod"]


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_actionlint_and_shellcheck_find_nothing_in_the_workflows() -> None:
    assert shutil.which("shellcheck"), "shellcheck is missing: tests/install-servers.sh installs it"
    result = run(BIN / "actionlint", "-no-color", *sorted(WORKFLOWS.glob("*.yml")))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, broken)
    delivery = broken / "delivery.yml"
    text = delivery.read_text().replace("needs: deploy-preprod", "needs: deploy-pre")
    delivery.write_text(text.replace("previous: test", "prevous: test"))
    promote = broken / "promote.yml"
    promote.write_text(promote.read_text().replace('"$ENVIRONMENT" images.txt', "$ENVIRONMENT"))
    assert run("git", "init", "--quiet", cwd=tmp_path).returncode == 0
    result = run(BIN / "actionlint", "-no-color", cwd=tmp_path)
    assert result.returncode == 1
    assert 'job "deploy-prod" needs job "deploy-pre" which does not exist' in result.stdout
    assert 'input "prevous" is not defined in "./.github/workflows/promote.yml"' in result.stdout
    assert "SC2086" in result.stdout


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", sorted(WORKFLOWS.glob("*.yml"))),
        ("vendor.gitlab-ci", [GITLAB]),
    ],
    ids=["github", "gitlab"],
)
def test_the_vendored_schemas_accept_the_pipelines(schema: str, files: list[Path]) -> None:
    result = run(BIN / "check-jsonschema", "--builtin-schema", schema, *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "source", "old", "new", "complaint"),
    [
        ("vendor.github-workflows", WORKFLOWS / "delivery.yml", "runs-on:", "run-on:", "run-on"),
        ("vendor.gitlab-ci", GITLAB, "when: manual", "when: sometimes", "sometimes"),
    ],
    ids=["github", "gitlab"],
)
def test_the_vendored_schemas_reject_a_broken_pipeline(
    tmp_path: Path, schema: str, source: Path, old: str, new: str, complaint: str
) -> None:
    broken = tmp_path / source.name
    broken.write_text(source.read_text().replace(old, new, 1))
    result = run(BIN / "check-jsonschema", "--builtin-schema", schema, broken)
    assert result.returncode == 1
    assert complaint in result.stdout


def test_github_builds_once_and_promotes_the_digest_through_every_environment() -> None:
    delivery = load(WORKFLOWS / "delivery.yml")
    jobs = delivery["jobs"]
    assert jobs["test"]["steps"][-1]["run"] == "make test"
    assert jobs["build"]["needs"] == "test"
    builds = [name for name, job in jobs.items() if "build-images.sh" in str(job)]
    assert builds == ["build"]
    previous, needed = None, "build"
    for environment in CHAIN:
        job = jobs[f"deploy-{environment}"]
        assert job["uses"] == "./.github/workflows/promote.yml"
        assert job["needs"] == needed
        assert job["with"] == {
            "environment": environment,
            **({"previous": previous} if previous else {}),
        }
        assert job["secrets"] == "inherit"
        previous, needed = environment, f"deploy-{environment}"

    deploy = load(WORKFLOWS / "promote.yml")["jobs"]["deploy"]
    assert deploy["environment"] == "${{ inputs.environment }}"
    runs = [step.get("run", "") for step in deploy["steps"]]
    assert any('deploy/ci/promote.sh "$ENVIRONMENT"' in script for script in runs)
    assert any('deploy/ci/deploy.sh "$ENVIRONMENT"' in script for script in runs)
    assert not any("docker" in script for script in runs)


def test_gitlab_builds_once_and_waits_for_a_person_before_prod() -> None:
    pipeline = load(GITLAB)
    assert pipeline["stages"] == ["verify", "build", *(f"deploy-{e}" for e in CHAIN)]
    assert pipeline["test"]["script"] == ["make test"]
    builds = [name for name, job in pipeline.items() if "build-images.sh" in str(job)]
    assert builds == ["build-images"]
    template = pipeline[".deploy"]
    assert template["script"] == [
        'uv run --no-sync bash deploy/ci/promote.sh "$CI_ENVIRONMENT_NAME" images.txt',
        'uv run --no-sync bash deploy/ci/deploy.sh "$CI_ENVIRONMENT_NAME"',
    ]
    assert template["artifacts"]["paths"] == ["deploy/helm/"]
    needed = "build-images"
    for environment in CHAIN:
        job = pipeline[f"deploy-{environment}"]
        assert job["extends"] == ".deploy"
        assert job["environment"] == {"name": environment}
        assert job["needs"] == [{"job": needed, "artifacts": True}]
        needed = f"deploy-{environment}"
    [prod_rule] = pipeline["deploy-prod"]["rules"]
    assert (prod_rule["when"], prod_rule["allow_failure"]) == ("manual", False)
    assert all("when" not in rule for rule in template["rules"])


def test_no_environment_value_goes_into_an_image() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert set(re.findall(r"^ARG (\w+)", dockerfile, re.MULTILINE)) == {
        "TEAM",
        "TEAM_DEPENDENCY_GROUP",
    }
    build_args = {
        arg.split("=")[0]
        for command in image_commands(registry="registry.example.com/dataops", tag="1")
        for arg in re.findall(r"--build-arg (\S+)", command)
    }
    assert build_args <= {"TEAM", "TEAM_DEPENDENCY_GROUP"}
    assert not re.search(r"DATAOPS_(ENV|TARGET|BUCKET)", dockerfile)


def test_shellcheck_finds_nothing_in_the_pipeline_scripts() -> None:
    result = run("shellcheck", *sorted(SCRIPTS.glob("*.sh")))
    assert (result.returncode, result.stdout) == (0, "")


def test_the_pipeline_promotion_steps_carry_the_built_digest_to_prod(tmp_path: Path) -> None:
    helm = tmp_path / "helm"
    shutil.copytree(HELM_DIR, helm)
    built = {
        team: f"registry.example.com/dataops/dataops-{team}:0.1.0-3f2c1d9a0b7e@sha256:"
        + hashlib.sha256(team.encode()).hexdigest()
        for team in discover_teams()
    }
    images = tmp_path / "images.txt"
    images.write_text("".join(f"{team}={ref}\n" for team, ref in built.items()))
    env = {"HELM_DIR": str(helm), "DATAOPS_TARGET": "azure"}
    result = run("bash", SCRIPTS / "promote.sh", "dev", images, env=env)
    assert result.returncode == 0, result.stderr
    for source, to in (("dev", "test"), ("test", "preprod")):
        promote(helm, to=to, targets=["azure"], source=source)
    result = run("bash", SCRIPTS / "promote.sh", "prod", env=env)
    assert result.returncode == 0, result.stderr
    for environment in CHAIN:
        deployed = deployed_images(helm, "azure", environment)
        assert {team: str(ref) for team, ref in deployed.items()} == built
    assert deployed_images(helm, "aws", "prod") == deployed_images(HELM_DIR, "aws", "prod")
    result = run("bash", SCRIPTS / "promote.sh", "staging", env=env)
    assert result.returncode == 2
    assert "staging is not one of dev, test, preprod, prod" in result.stderr
