"""The house's shape: layers point one way, and importing a code location does nothing heavy.

``assets -> platform_core -> adapters -> config``: checked on the source (every import statement
of every module), and on a fresh interpreter that imports, then loads, both team locations.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "adapters", "platform_core", "assets")
MAY_IMPORT = {
    "config": set(),
    "adapters": {"config"},
    "platform_core": {"config", "adapters"},
    "assets": {"platform_core"},
}
HEAVY = ("boto3", "botocore", "azure", "google.cloud", "kubernetes", "dagster_k8s")
TEAM_MODULES = ("assets.sales.definitions", "assets.analytics.definitions")


def imports(path: Path) -> set[str]:
    """Every module a source file imports, absolute names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_point_one_way(package: str) -> None:
    forbidden = set(PACKAGES) - MAY_IMPORT[package] - {package}
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imports(path)
        if name.split(".")[0] in forbidden
    }
    assert not wrong, sorted(wrong)


def test_no_module_imports_a_private_dagster_module() -> None:
    private = {
        f"{path.relative_to(ROOT)} imports {name}"
        for package in PACKAGES
        for path in sources(package)
        for name in imports(path)
        if name.startswith("dagster._") or ".".join(name.split(".")[:2]).startswith("dagster_k8s._")
    }
    assert not private, sorted(private)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PROBE = """
import importlib, json, sys
for name in {modules!r}:
    module = importlib.import_module(name)
    if {load!r}:
        module.defs()
heavy = sorted({{m.split(".")[0] if not m.startswith("google.cloud") else "google.cloud"
                for m in sys.modules if m.startswith({heavy!r})}})
print(json.dumps(heavy))
"""


@pytest.mark.parametrize("load", [False, True], ids=["import", "load"])
def test_team_locations_on_local_import_no_cloud_sdk(tmp_path: Path, load: bool) -> None:
    root = tmp_path / "storage"
    result = _python(
        PROBE.format(modules=TEAM_MODULES, load=load, heavy=HEAVY),
        {"DATAOPS_TARGET": "local", "DATAOPS_LOCAL_ROOT": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
    assert root.exists() is load, "only loading a location may touch storage"


def test_importing_a_location_touches_no_storage_even_when_unreachable(tmp_path: Path) -> None:
    unreachable = {
        "DAGSTER_HOME": str(tmp_path),
        "DATAOPS_TARGET": "onprem",
        "DATAOPS_BUCKET": "lake",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    imported = _python(PROBE.format(modules=TEAM_MODULES, load=False, heavy=HEAVY), unreachable)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout.splitlines()[-1]) == []

    validate = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"]
        + ["-m", "assets.sales.definitions"],
        cwd=ROOT,
        env={**os.environ, **unreachable},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert validate.returncode != 0
    output = validate.stdout + validate.stderr
    assert "Storage for target 'onprem' (environment 'dev') is not usable" in output
    assert "Cannot reach S3" in output


def test_a_cloud_target_without_a_cluster_fails_once_and_says_how_to_run_here(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dataops"), "materialize", "--all"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATAOPS_TARGET": "onprem",
            "HOME": str(tmp_path),
            "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "DATAOPS__COMPUTE__EXECUTOR=multiprocess" in result.stderr
    assert result.stderr.count("no cluster is configured") == 1
    assert "Traceback" not in result.stderr
