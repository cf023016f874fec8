"""Every setting the platform knows, with its type: unknown keys and wrong types are refused.

Values from settings files must already have the declared type (``image_tag: 1.10`` is a float
in YAML: quote it). Values from environment variables are parsed by the declared type, never as
YAML, so strings stay strings (``1.10``, ``0755``, ``no``); numbers must be whole numbers, booleans
``true`` or ``false``, lists and mappings JSON or YAML flow syntax whose items have the declared
type.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from config.errors import ConfigError

STRING, INTEGER, NUMBER, BOOLEAN = "a string", "a whole number", "a number", "true or false"
STRINGS, LABELS, TOLERATIONS = (
    "a list of strings",
    "a mapping of strings to strings",
    "a list of mappings of strings to strings",
)


@dataclass(frozen=True)
class Setting:
    """One setting: its kind (one of the phrases above, which error messages use)."""

    kind: str


SCHEMA: Mapping[str, Mapping[str, Setting]] = {
    "storage": {
        "backend": Setting(STRING),
        "root": Setting(STRING),
        "bucket": Setting(STRING),
        "prefix": Setting(STRING),
        "region": Setting(STRING),
        "endpoint_url": Setting(STRING),
        "path_style": Setting(BOOLEAN),
        "require_endpoint": Setting(BOOLEAN),
        "ca_bundle": Setting(STRING),
        "role_arn": Setting(STRING),
        "access_key_id_env": Setting(STRING),
        "secret_access_key_env": Setting(STRING),
        "account_url": Setting(STRING),
        "project": Setting(STRING),
        "chunk_mb": Setting(INTEGER),
        "jurisdiction": Setting(STRING),
        "sovereign": Setting(BOOLEAN),
    },
    "compute": {
        "executor": Setting(STRING),
        "max_concurrent": Setting(INTEGER),
        "tool_python": Setting(STRING),
        "image_registry": Setting(STRING),
        "image_tag": Setting(STRING),
        "image_pull_policy": Setting(STRING),
        "image_pull_refs": Setting(STRINGS),
        "pod_labels": Setting(LABELS),
        "forward_env": Setting(STRINGS),
        "storage_credentials_from": Setting(STRING),
        "gpu_resource": Setting(STRING),
        "gpu_node_selector": Setting(LABELS),
        "gpu_tolerations": Setting(TOLERATIONS),
        "spot_node_selector": Setting(LABELS),
        "spot_tolerations": Setting(TOLERATIONS),
    },
    "lineage": {
        "transport": Setting(STRING),
        "path": Setting(STRING),
        "url": Setting(STRING),
        "endpoint": Setting(STRING),
        "timeout": Setting(NUMBER),
        "api_key_env": Setting(STRING),
    },
}
SECTIONS = tuple(SCHEMA)


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def setting(section: str, key: str, where: str) -> Setting:
    """The declared setting, or ConfigError naming the unknown key, where it is, and a guess."""
    known = SCHEMA[section]
    if not isinstance(key, str) or key not in known:
        raise ConfigError(
            f"{where} sets unknown setting '{section}.{key}'.{did_you_mean(str(key), known)} "
            f"Known {section} settings: {', '.join(sorted(known))}."
        )
    return known[key]


def check_type(section: str, key: str, value: Any, where: str) -> Any:
    """``value`` if it has the declared type; ConfigError naming setting, source and fix if not."""
    kind = setting(section, key, where).kind
    if value is None or _conforms(kind, value):
        return value
    raise ConfigError(
        f"{section}.{key} must be {kind}, not {type(value).__name__} {value!r} (from {where}). "
        + ("Quote the value in YAML." if kind == STRING else f"Set it to {kind}.")
    )


def parse_env(section: str, key: str, text: str, where: str) -> Any:
    """The value of an environment override, parsed by the setting's declared type."""
    kind = setting(section, key, where).kind
    if kind == STRING:
        return text
    if kind == INTEGER:
        if not text.strip().lstrip("+").isdigit():
            raise ConfigError(f"{section}.{key} must be {kind}, not {text!r} (from {where}).")
        return int(text)
    if kind == NUMBER:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(
                f"{section}.{key} must be {kind}, not {text!r} (from {where})."
            ) from None
    if kind == BOOLEAN:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ConfigError(
                f"{section}.{key} must be true or false, not {text!r} (from {where})."
            )
        return lowered == "true"
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
    return check_type(section, key, value if value is not None else text, where)


def _conforms(kind: str, value: Any) -> bool:
    if kind == STRING:
        return isinstance(value, str)
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == LABELS:
        return _labels(value)
    return isinstance(value, list) and all(_labels(item) for item in value)


def _labels(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
