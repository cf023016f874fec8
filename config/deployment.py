"""The deployment a code location runs in: one target, one environment, validated settings.

Settings come in layers, each overriding the one before:

1. ``config/deployments/base.yaml``
2. ``config/deployments/<target>.yaml``
3. ``config/deployments/<target>/<environment>.yaml``
4. environment variables: ``DATAOPS_BUCKET``, ``DATAOPS_STORAGE_PREFIX``, ``DATAOPS_LOCAL_ROOT``,
   and ``DATAOPS__<SECTION>__<KEY>`` for any other setting (``DATAOPS__COMPUTE__MAX_CONCURRENT=8``).

Every leaf remembers where it came from (a ``Provenance``: the kind of source and its name), so
an error can name the file or variable to fix and a pod can be given the same variables.
Secrets are never read from files: a YAML key that looks like a credential is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from config.environment import snapshot
from config.errors import ConfigError
from config.schema import SCHEMA, SECTIONS, check_type, did_you_mean, parse_env
from config.secrets import secret_in_value, secret_reason

TARGETS = ("local", "onprem", "aws", "azure", "gcp")
ENVIRONMENTS = ("dev", "test", "preprod", "prod")

DEFAULT_CONFIG_DIR = Path(__file__).parent / "deployments"

ENV_ALIASES: Mapping[str, tuple[str, str]] = {
    "DATAOPS_BUCKET": ("storage", "bucket"),
    "DATAOPS_STORAGE_PREFIX": ("storage", "prefix"),
    "DATAOPS_LOCAL_ROOT": ("storage", "root"),
}
GENERIC_ENV_PREFIX = "DATAOPS__"


@dataclass(frozen=True)
class Provenance:
    """Where one setting came from: a settings file, an environment variable, or the default."""

    kind: Literal["file", "env", "default"]
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "file":
            return f"settings file {self.name}"
        if self.kind == "env":
            return f"environment variable {self.name}"
        return "the default"


DEFAULT = Provenance("default")


@dataclass(frozen=True)
class Section:
    """One settings section (``storage``, ``compute``): values plus where each came from."""

    name: str
    values: Mapping[str, Any]
    sources: Mapping[str, Provenance]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def source(self, key: str) -> Provenance:
        return self.sources.get(key, DEFAULT)

    def require(self, key: str, fix: str) -> Any:
        """The value of ``key``, or a ConfigError that says how to set it."""
        value = self.values.get(key)
        if value in (None, ""):
            raise ConfigError(f"{self.name}.{key} is not set. {fix}")
        return value

    def error(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.name}.{key} {problem} (from {self.source(key)}). {fix}")


@dataclass(frozen=True)
class Deployment:
    """Where data products run: the target, the environment and their validated settings."""

    target: str
    environment: str
    storage: Section
    compute: Section
    config_dir: Path = field(default=DEFAULT_CONFIG_DIR)
    lineage: Section = field(default_factory=lambda: Section("lineage", {}, {}))
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def as_env(self) -> dict[str, str]:
        """The variables that make another process (a step pod) resolve this same deployment."""
        return {"DATAOPS_TARGET": self.target, "DATAOPS_ENV": self.environment}

    def variable(self, name: str) -> str | None:
        """A variable of the environment snapshot this deployment was resolved from."""
        return self.environ.get(name) or None


def _read_layer(path: Path) -> dict[str, Any]:
    """One settings file, checked key by key: known setting, declared type, no secret."""
    if not path.exists():
        return {}
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is not UTF-8 text (byte {exc.start} cannot be decoded). "
            "Save that file as UTF-8."
        ) from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(
            f"Settings file {path} is not valid YAML ({problem}{where}). "
            "Fix the syntax of that file."
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"Settings file {path} must hold a mapping of sections (storage:, compute:), "
            f"not a {type(data).__name__}. Fix the top level of that file."
        )
    where = f"settings file {path}"
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"Settings file {path} has an unknown section '{section}'."
                f"{did_you_mean(str(section), SECTIONS)} Known sections: {', '.join(SECTIONS)}."
            )
        if not isinstance(values, dict):
            raise ConfigError(
                f"Settings file {path}: section '{section}' must be a mapping of keys to values."
            )
        for key, value in values.items():
            if _secret(section, key, value):
                raise ConfigError(
                    f"Settings file {path} holds '{section}.{key}', which looks like a secret. "
                    "Secrets are read only from environment variables: remove it from the file "
                    "and set the SDK's credential variable instead."
                )
            check_type(section, key, value, where)
    return data


def _secret(section: str, key: Any, value: Any) -> bool:
    """A declared setting is never a credential by its name, but its value may carry one."""
    if key in SCHEMA[section]:
        return isinstance(value, str) and secret_in_value(value) is not None
    return secret_reason(str(key), value) is not None


def _merge(
    layers: list[tuple[Provenance, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Provenance]]]:
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    sources: dict[str, dict[str, Provenance]] = {section: {} for section in SECTIONS}
    for origin, layer in layers:
        for section, entries in layer.items():
            for key, value in entries.items():
                values[section][key] = value
                sources[section][key] = origin
    return values, sources


def _env_layer(environ: Mapping[str, str]) -> list[tuple[Provenance, dict[str, Any]]]:
    """Settings from ``DATAOPS_*`` variables, parsed by each setting's declared type."""
    layers: list[tuple[Provenance, dict[str, Any]]] = []
    for name in sorted(environ):
        if name in ENV_ALIASES:
            section, key = ENV_ALIASES[name]
        elif name.startswith(GENERIC_ENV_PREFIX):
            parts = name[len(GENERIC_ENV_PREFIX) :].lower().split("__")
            if len(parts) != 2 or parts[0] not in SECTIONS:
                raise ConfigError(
                    f"Environment variable {name} does not name a setting. "
                    "Use DATAOPS__<SECTION>__<KEY> with a section of: " + ", ".join(SECTIONS) + "."
                )
            section, key = parts
        else:
            continue
        if _secret(section, key, environ[name]):
            raise ConfigError(
                f"Environment variable {name} would put a secret into the settings "
                f"({section}.{key}); its value is not shown. Unset it: credentials are read "
                "only from the SDKs' own variables, never as platform settings."
            )
        value = parse_env(section, key, environ[name], f"environment variable {name}")
        layers.append((Provenance("env", name), {section: {key: value}}))
    return layers


def _choose(
    environ: Mapping[str, str], variable: str, label: str, default: str, allowed: tuple[str, ...]
) -> str:
    value = environ.get(variable, "").strip() or default
    if value not in allowed:
        raise ConfigError(
            f"{variable}={value!r} is not a known {label}. "
            f"Set {variable} to one of: {', '.join(allowed)}."
        )
    return value


def load_deployment(
    environ: Mapping[str, str] | None = None, config_dir: Path | None = None
) -> Deployment:
    """Read and merge every settings layer for the chosen target and environment.

    Raises ConfigError, with one message naming the setting, its source and the fix, on an
    unknown target or environment or a malformed file. What each backend needs (a bucket, a
    credential variable) is checked when its adapter is built from these settings.
    """
    environ = snapshot(environ)
    config_dir = Path(environ.get("DATAOPS_CONFIG_DIR") or config_dir or DEFAULT_CONFIG_DIR)
    target = _choose(environ, "DATAOPS_TARGET", "target", "local", TARGETS)
    environment = _choose(environ, "DATAOPS_ENV", "environment", "dev", ENVIRONMENTS)
    files = [
        config_dir / "base.yaml",
        config_dir / f"{target}.yaml",
        config_dir / target / f"{environment}.yaml",
    ]
    layers = [(Provenance("file", str(path)), _read_layer(path)) for path in files]
    values, sources = _merge(layers + _env_layer(environ))
    if "backend" not in values["storage"]:
        raise ConfigError(
            f"storage.backend is not set for target '{target}'. "
            f"Add 'storage: {{backend: ...}}' to {config_dir / f'{target}.yaml'}."
        )
    return Deployment(
        target=target,
        environment=environment,
        storage=Section("storage", values["storage"], sources["storage"]),
        compute=Section("compute", values["compute"], sources["compute"]),
        config_dir=config_dir,
        lineage=Section("lineage", values["lineage"], sources["lineage"]),
        environ=environ,
    )
