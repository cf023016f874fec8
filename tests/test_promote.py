"""``dataops promote`` on copies of the repository's own Helm values, dev to prod."""

from __future__ import annotations

import hashlib
import shutil
from itertools import product
from pathlib import Path

import pytest
from k8s_offline import CHART_SCHEMA, USER_DEPLOYMENTS_SCHEMA, helm_merge, load_yaml, values_errors

from config import ENVIRONMENTS
from platform_core.cli import main
from platform_core.images import discover_teams
from platform_core.promote import HELM_DIR, KUBERNETES_TARGETS, deployed_images, values_files

TEAMS = discover_teams()
REGISTRY = "registry.example.com/dataops"
BUILT = {
    team: f"{REGISTRY}/dataops-{team}:0.2.0@sha256:{hashlib.sha256(team.encode()).hexdigest()}"
    for team in TEAMS
}


@pytest.fixture
def helm(tmp_path: Path) -> Path:
    copy = tmp_path / "helm"
    shutil.copytree(HELM_DIR, copy)
    return copy


@pytest.fixture
def dataops(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_one_build_travels_dev_test_preprod_prod_and_only_tags_change(helm: Path, dataops) -> None:
    before = snapshot(helm)
    images = [arg for team, ref in BUILT.items() for arg in ("--image", f"{team}={ref}")]
    code, out, err = dataops("promote", "--helm-dir", str(helm), "--to", "dev", *images)
    assert code == 0, err
    assert f"aws/dev sales: {BUILT['sales']} (was {REGISTRY}/dataops-sales:0.1.0)" in out
    for source, to in zip(ENVIRONMENTS, ENVIRONMENTS[1:], strict=False):
        code, out, err = dataops("promote", "--helm-dir", str(helm), "--from", source, "--to", to)
        assert code == 0, err
        assert len(out.splitlines()) == len(KUBERNETES_TARGETS) * len(TEAMS)

    for target, environment in product(KUBERNETES_TARGETS, ENVIRONMENTS):
        deployed = deployed_images(helm, target, environment)
        assert {team: str(ref) for team, ref in deployed.items()} == BUILT
    after = snapshot(helm)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {
        str(path.relative_to(helm))
        for target, environment in product(KUBERNETES_TARGETS, ENVIRONMENTS)
        for path in values_files(helm, target, environment)
    }
    for name in changed:
        old, new = before[name].splitlines(), after[name].splitlines()
        assert len(old) == len(new), name
        differing = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
        assert [a.strip() for a, _ in differing] == ['tag: "0.1.0"'] * len(differing), name
        assert {b.strip().split("@")[0] for _, b in differing} == {'tag: "0.2.0'}, name


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_promoted_values_still_validate_against_the_chart_schemas(
    helm: Path, dataops, environment: str
) -> None:
    images = [arg for team, ref in BUILT.items() for arg in ("--image", f"{team}={ref}")]
    code, _, err = dataops("promote", "--helm-dir", str(helm), "--to", environment, *images)
    assert code == 0, err
    for target in KUBERNETES_TARGETS:
        chart = helm / "dagster"
        layers = [chart / "values.yaml", chart / f"values-{target}-{environment}.yaml"]
        values = helm_merge(*(load_yaml(path) for path in layers))
        assert values_errors(values, CHART_SCHEMA) == []
        for deployment in values["dagster-user-deployments"]["deployments"]:
            image = deployment["image"]
            assert f"{image['repository']}:{image['tag']}" == BUILT[deployment["name"]]
        for team in TEAMS:
            path = helm / "user-deployments" / target / environment / f"{team}.yaml"
            assert values_errors(load_yaml(path), USER_DEPLOYMENTS_SCHEMA) == []


@pytest.mark.parametrize("to", ["preprod", "prod"])
def test_a_tag_only_reference_is_refused_in_preprod_and_prod(helm: Path, dataops, to: str) -> None:
    before = snapshot(helm)
    source = ENVIRONMENTS[ENVIRONMENTS.index(to) - 1]
    code, out, err = dataops("promote", "--helm-dir", str(helm), "--from", source, "--to", to)
    assert (code, out) == (2, "")
    assert f"refusing tag-only image {REGISTRY}/dataops-" in err
    assert f"{to} takes digests only" in err
    tagged = f"sales={REGISTRY}/dataops-sales:0.2.0"
    code, _, err = dataops("promote", "--helm-dir", str(helm), "--to", to, "--image", tagged)
    assert code == 2
    assert f"refusing tag-only image {REGISTRY}/dataops-sales:0.2.0 for sales" in err
    assert snapshot(helm) == before


def test_a_tag_only_reference_is_accepted_in_dev_and_test(helm: Path, dataops) -> None:
    tagged = f"sales={REGISTRY}/dataops-sales:0.3.0"
    code, _, err = dataops("promote", "--helm-dir", str(helm), "--to", "dev", "--image", tagged)
    assert code == 0, err
    code, _, err = dataops("promote", "--helm-dir", str(helm), "--from", "dev", "--to", "test")
    assert code == 0, err
    assert str(deployed_images(helm, "gcp", "test")["sales"]) == f"{REGISTRY}/dataops-sales:0.3.0"


def test_a_refusal_in_one_target_writes_nothing_in_any(helm: Path, dataops) -> None:
    images = [arg for team, ref in BUILT.items() for arg in ("--image", f"{team}={ref}")]
    assert dataops("promote", "--helm-dir", str(helm), "--to", "test", *images)[0] == 0
    gcp = helm / "user-deployments" / "gcp" / "test" / "analytics.yaml"
    gcp.write_text(gcp.read_text().replace(BUILT["analytics"].split(":", 1)[1], "0.1.9"))
    before = snapshot(helm)
    code, _, err = dataops(
        "promote", "--helm-dir", str(helm), "--from", "test", "--to", "preprod",
        "--target", "aws", "--target", "gcp",
    )  # fmt: skip
    assert code == 2
    assert "gcp/test deploys two images of analytics" in err
    assert snapshot(helm) == before


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (f"sales={REGISTRY}/dataops-sales@sha256:{'a' * 64}", "a version is needed"),
        (f"sales={REGISTRY}/dataops-sales:0.2.0@sha256:abc", "is not <version> or"),
        (f"sales={REGISTRY}/dataops-sales:0.2\n    pullPolicy: Always", "not an image repository"),
        (f'sales={REGISTRY}/Bad"Repo:0.2.0@sha256:{"a" * 64}', "is not an image repository"),
        (f"billing={REGISTRY}/dataops-billing:0.2.0@sha256:{'a' * 64}", "deploys no billing"),
        (f"{REGISTRY}/dataops-sales:0.2.0@sha256:{'a' * 64}", "is not TEAM="),
    ],
)
def test_hostile_image_references_are_refused(helm: Path, dataops, image: str, reason: str) -> None:
    before = snapshot(helm)
    code, _, err = dataops("promote", "--helm-dir", str(helm), "--to", "dev", "--image", image)
    assert code == 2
    assert reason in err
    assert err.count("\n") == 1
    assert snapshot(helm) == before


def test_the_repository_ships_tag_only_placeholders_everywhere() -> None:
    for target, environment in product(KUBERNETES_TARGETS, ENVIRONMENTS):
        deployed = deployed_images(HELM_DIR, target, environment)
        assert {team: str(ref) for team, ref in deployed.items()} == {
            team: f"{REGISTRY}/dataops-{team}:0.1.0" for team in TEAMS
        }
