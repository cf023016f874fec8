"""Deployment settings: layering, overrides, and one clear message for each kind of mistake."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEFAULT_CONFIG_DIR, ConfigError, Provenance, load_deployment
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "deployments"
    shutil.copytree(DEFAULT_CONFIG_DIR, copy)
    return copy


def test_defaults_are_local_dev() -> None:
    deployment = load_deployment({})
    assert (deployment.target, deployment.environment) == ("local", "dev")
    assert deployment.storage.get("backend") == "local"
    assert deployment.as_env() == {"DATAOPS_TARGET": "local", "DATAOPS_ENV": "dev"}


def test_layers_override_in_order_and_remember_their_source(config_dir: Path) -> None:
    (config_dir / "local").mkdir(exist_ok=True)
    (config_dir / "local" / "preprod.yaml").write_text("compute:\n  max_concurrent: 2\n")
    deployment = load_deployment({"DATAOPS_ENV": "preprod"}, config_dir=config_dir)
    assert deployment.compute.get("max_concurrent") == 2
    assert deployment.compute.source("max_concurrent").kind == "file"
    assert deployment.compute.source("max_concurrent").name.endswith("local/preprod.yaml")
    assert deployment.compute.source("executor").name.endswith("base.yaml")

    overridden = load_deployment(
        {
            "DATAOPS_ENV": "preprod",
            "DATAOPS__COMPUTE__MAX_CONCURRENT": "8",
            "DATAOPS_LOCAL_ROOT": "/x",
        },
        config_dir=config_dir,
    )
    assert overridden.compute.get("max_concurrent") == 8
    source = overridden.compute.source("max_concurrent")
    assert source == Provenance("env", "DATAOPS__COMPUTE__MAX_CONCURRENT")
    assert str(source) == "environment variable DATAOPS__COMPUTE__MAX_CONCURRENT"
    assert overridden.storage.get("root") == "/x"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DATAOPS_TARGET": "mars"},
            "DATAOPS_TARGET='mars' is not a known target. "
            "Set DATAOPS_TARGET to one of: local, onprem, aws, azure, gcp.",
        ),
        (
            {"DATAOPS_ENV": "staging"},
            "DATAOPS_ENV='staging' is not a known environment. "
            "Set DATAOPS_ENV to one of: dev, test, preprod, prod.",
        ),
        (
            {"DATAOPS__NETWORK__PROXY": "x"},
            "Environment variable DATAOPS__NETWORK__PROXY does not name a setting.",
        ),
    ],
)
def test_bad_choices_name_the_variable_and_the_fix(environ: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_deployment(environ)
    assert message in str(error.value)


def test_malformed_file_names_the_file(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text("storage:\n  backend: local\n   root: [oops\n")
    with pytest.raises(ConfigError, match=r"local\.yaml is not valid YAML.*Fix the syntax"):
        load_deployment({}, config_dir=config_dir)


def test_unknown_section_is_refused(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text("storage:\n  backend: local\nstorge:\n  root: x\n")
    with pytest.raises(ConfigError, match="unknown section 'storge'"):
        load_deployment({}, config_dir=config_dir)


def test_secrets_in_files_are_refused(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text(
        "storage:\n  backend: local\n  root: x\n  secret_access_key: abc\n"
    )
    with pytest.raises(ConfigError) as error:
        load_deployment({}, config_dir=config_dir)
    assert "storage.secret_access_key" in str(error.value)
    assert "read only from environment variables" in str(error.value)
    assert "abc" not in str(error.value)


def test_missing_backend_names_the_target_file(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text("storage:\n  root: x\n")
    with pytest.raises(ConfigError, match=r"storage.backend is not set for target 'local'"):
        load_deployment({}, config_dir=config_dir)


def test_unknown_backend_names_its_source(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text("storage:\n  backend: floppy\n")
    with pytest.raises(ConfigError, match=r"storage.backend is 'floppy'.*local\.yaml.*Use one of"):
        storage_for(load_deployment({}, config_dir=config_dir))


def test_missing_local_root(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_text("storage:\n  backend: local\n")
    with pytest.raises(ConfigError, match="storage.root is not set. Set DATAOPS_LOCAL_ROOT"):
        storage_for(load_deployment({}, config_dir=config_dir))


def test_unwritable_local_root_fails_at_load(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot be created.*DATAOPS_LOCAL_ROOT"):
        storage_for(load_deployment({"DATAOPS_LOCAL_ROOT": str(blocker / "storage")}))


def test_a_code_location_refuses_to_load_on_bad_configuration(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATAOPS_TARGET": "mars",
        "DAGSTER_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "assets.sales.definitions",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DATAOPS_TARGET='mars' is not a known target" in result.stdout + result.stderr
