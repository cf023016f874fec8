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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "storage:\n  backend: local\n  rooot: x\n",
            "unknown setting 'storage.rooot'. Did you mean 'root'?",
        ),
        (
            "compute:\n  executr: k8s_job\n",
            "unknown setting 'compute.executr'. Did you mean 'executor'?",
        ),
        ("storage:\n  backend: local\n  123: x\n", "unknown setting 'storage.123'"),
        (
            "storage:\n  backend: local\n  root: 12345\n",
            "storage.root must be a string, not int 12345",
        ),
        ("compute:\n  image_tag: 1.10\n", "compute.image_tag must be a string, not float 1.1"),
        ("compute:\n  max_concurrent: '8'\n", "compute.max_concurrent must be a whole number"),
        ("storge:\n  root: x\n", "unknown section 'storge'. Did you mean 'storage'?"),
    ],
)
def test_unknown_keys_and_wrong_types_in_files_are_refused(
    config_dir: Path, text: str, expected: str
) -> None:
    (config_dir / "local.yaml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_deployment({}, config_dir=config_dir)
    assert expected in str(error.value)
    assert "local.yaml" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_non_utf8_settings_file_is_one_clear_error(config_dir: Path) -> None:
    (config_dir / "local.yaml").write_bytes(b"storage:\n  backend: local\n  root: caf\xe9\n")
    with pytest.raises(
        ConfigError, match=r"local\.yaml is not UTF-8 text.*Save that file as UTF-8"
    ):
        load_deployment({}, config_dir=config_dir)


@pytest.mark.parametrize(
    ("variable", "value", "section", "key", "expected"),
    [
        ("DATAOPS__COMPUTE__IMAGE_TAG", "1.10", "compute", "image_tag", "1.10"),
        ("DATAOPS__COMPUTE__IMAGE_TAG", "0755", "compute", "image_tag", "0755"),
        ("DATAOPS__COMPUTE__IMAGE_TAG", "yes", "compute", "image_tag", "yes"),
        ("DATAOPS_STORAGE_PREFIX", "no", "storage", "prefix", "no"),
        ("DATAOPS__COMPUTE__MAX_CONCURRENT", "8", "compute", "max_concurrent", 8),
        ("DATAOPS__STORAGE__PATH_STYLE", "false", "storage", "path_style", False),
        ("DATAOPS__COMPUTE__FORWARD_ENV", "[AWS_REGION]", "compute", "forward_env", ["AWS_REGION"]),
    ],
)
def test_environment_values_are_parsed_by_the_declared_type_never_as_yaml(
    variable: str, value: str, section: str, key: str, expected: object
) -> None:
    deployment = load_deployment({variable: value})
    assert getattr(deployment, section).get(key) == expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATAOPS__COMPUTE__EXECUTR", "k8s_job", "Did you mean 'executor'?"),
        ("DATAOPS__COMPUTE__MAX_CONCURRENT", "eight", "compute.max_concurrent must be a whole"),
        ("DATAOPS__STORAGE__PATH_STYLE", "yes", "storage.path_style must be true or false"),
        ("DATAOPS__COMPUTE__FORWARD_ENV", "[1.10]", "compute.forward_env must be a list of"),
    ],
)
def test_bad_environment_values_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_deployment({variable: value})
    assert expected in str(error.value)
    assert variable in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("db_passwd", "x"),
        ("apikey", "x"),
        ("credentials", "x"),
        ("client_secret", "x"),
        ("endpoint_url", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0"),
        ("endpoint_url", "https://admin:hunter2@minio.example:9000"),
        ("account_url", "https://acct.blob.core.windows.net/?sv=2024&sig=c2lnbmF0dXJl"),
    ],
)
def test_secrets_in_files_are_refused_by_name_or_value(
    config_dir: Path, key: str, value: str
) -> None:
    (config_dir / "local.yaml").write_text(f"storage:\n  backend: local\n  {key}: '{value}'\n")
    with pytest.raises(ConfigError) as error:
        load_deployment({}, config_dir=config_dir)
    assert f"storage.{key}" in str(error.value) and "looks like a secret" in str(error.value)
    assert value not in str(error.value)


def test_a_secret_setting_from_the_environment_is_refused_without_showing_it() -> None:
    secret = "wJalrXUtnFEMI-example-secret"
    with pytest.raises(ConfigError) as error:
        load_deployment({"DATAOPS__STORAGE__SECRET_ACCESS_KEY": secret})
    assert "DATAOPS__STORAGE__SECRET_ACCESS_KEY" in str(error.value)
    assert secret not in str(error.value)
