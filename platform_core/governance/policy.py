"""The access policy: one file in the repository, per-environment overrides, validated at load.

``policy/access.yaml`` holds the named external consumers (principals of the dataset API besides
the teams), the grants and how pseudonyms are keyed; ``policy/<environment>.yaml`` may add grants,
replace grants by ``id`` and ``remove`` grant ids. A grant gives one principal ``read`` on data
products (by key, or ``team/*``), either ``full`` or ``masked``: named columns pseudonymised or
dropped and/or a row filter ``column: [values]``. Masked grants are served as share views the
owner's location materialises (``share_views``). Defaults by classification (``access``) need no
grant: ``public`` for every principal, ``internal`` for every team; ``confidential`` and ``pii``
only with a grant. Owners always read and write their own products.

Every entry is checked against the teams and the product manifest (``products``): an unknown
principal or product, a bad pattern, a masked grant without a mask, or two grants of one
principal on one product that disagree each stop the load with one message naming the entry and
the fix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config import ConfigError

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
POLICY_DIR_VARIABLE = "DATAOPS_POLICY_DIR"
POLICY_FILE = "access.yaml"
DEFAULT_KEY_ENV = "DATAOPS_PSEUDONYM_KEY"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GRANT_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
PRODUCT = re.compile(r"^[a-z][a-z0-9_-]*/([a-z0-9_*][a-z0-9_/*-]*)$")
MODES = ("full", "masked")


@dataclass(frozen=True)
class Mask:
    """What a masked grant changes: pseudonymised and dropped columns, and a row filter."""

    pseudonymise: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    rows: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """``principal`` may read ``products`` (keys or ``team/*``), fully or through a mask."""

    id: str
    principal: str
    products: tuple[str, ...]
    access: str
    mask: Mask | None = None
    domain: str | None = None
    classification: str = "confidential"

    def covers(self, product: str) -> bool:
        return any(fnmatch.fnmatchcase(product, pattern) for pattern in self.products)


@dataclass(frozen=True)
class Policy:
    """The effective policy of one environment."""

    environment: str
    teams: tuple[str, ...]
    consumers: tuple[str, ...]
    grants: tuple[Grant, ...]
    key_env: str = DEFAULT_KEY_ENV

    @property
    def principals(self) -> tuple[str, ...]:
        return (*self.teams, *self.consumers)

    def key_variable(self, domain: str | None) -> str:
        """The environment variable holding the pseudonymisation key of ``domain``."""
        return f"{self.key_env}_{domain.upper()}" if domain else self.key_env


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Policy file {path} is not valid YAML ({exc}). Fix its syntax.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Policy file {path} must hold a mapping (consumers:, grants:).")
    unknown = set(data) - {"consumers", "grants", "remove", "pseudonymisation"}
    if unknown:
        raise ConfigError(
            f"Policy file {path} has unknown sections {sorted(unknown)}. "
            "Known: consumers, grants, remove, pseudonymisation."
        )
    return data


def _mask(entry: Mapping[str, Any], where: str) -> Mask | None:
    raw = entry.get("mask")
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"pseudonymise", "drop", "rows"}:
        raise ConfigError(f"{where}: mask takes pseudonymise, drop and rows only.")
    columns = {}
    for name in ("pseudonymise", "drop"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            raise ConfigError(f"{where}: mask.{name} must be a list of column names.")
        columns[name] = tuple(value)
    rows = raw.get("rows", {})
    if not isinstance(rows, dict) or not all(
        isinstance(column, str) and isinstance(values, list) and values
        for column, values in rows.items()
    ):
        raise ConfigError(f"{where}: mask.rows must map a column to a non-empty list of values.")
    if set(columns["pseudonymise"]) & set(columns["drop"]):
        raise ConfigError(f"{where}: a column cannot be both pseudonymised and dropped.")
    return Mask(
        pseudonymise=columns["pseudonymise"],
        drop=columns["drop"],
        rows={column: tuple(values) for column, values in rows.items()},
    )


def _grant(entry: Any, index: int, path: Path) -> Grant:
    where = f"Policy file {path}, grant #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping (id, principal, products, access).")
    unknown = set(entry) - {
        "id",
        "principal",
        "products",
        "access",
        "mask",
        "domain",
        "classification",
    }
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)}.")
    grant_id = entry.get("id")
    where = f"Policy file {path}, grant '{grant_id}'"
    if not isinstance(grant_id, str) or not GRANT_ID.match(grant_id):
        raise ConfigError(f"{where}: every grant needs an id (lowercase letters, digits, - _).")
    products = entry.get("products")
    if isinstance(products, str):
        products = [products]
    if not isinstance(products, list) or not products:
        raise ConfigError(f"{where}: products must name at least one product (team/name).")
    for pattern in products:
        if not isinstance(pattern, str) or not PRODUCT.match(pattern):
            raise ConfigError(
                f"{where}: product pattern {pattern!r} is not 'team/name' or 'team/*'."
            )
    access = entry.get("access")
    if access not in MODES:
        raise ConfigError(f"{where}: access is {access!r}; use full or masked.")
    mask = _mask(entry, where)
    if access == "masked" and (mask is None or mask == Mask()):
        raise ConfigError(f"{where}: a masked grant needs a mask (pseudonymise, drop or rows).")
    if access == "full" and mask is not None:
        raise ConfigError(f"{where}: a full grant has no mask; make it masked or drop the mask.")
    classification = entry.get("classification", "confidential")
    if classification not in ("public", "internal", "confidential", "pii"):
        raise ConfigError(f"{where}: classification {classification!r} is not a classification.")
    return Grant(
        id=grant_id,
        principal=str(entry.get("principal")),
        products=tuple(products),
        access=access,
        mask=mask,
        domain=entry.get("domain"),
        classification=classification,
    )


def load_policy(
    environment: str, teams: Sequence[str], products: Sequence[str], policy_dir: Path = POLICY_DIR
) -> Policy:
    """The policy of ``environment``, checked against the teams and the product manifest."""
    base_path, env_path = policy_dir / POLICY_FILE, policy_dir / f"{environment}.yaml"
    if not base_path.exists():
        raise ConfigError(f"No access policy at {base_path}. Create it (see README, Access).")
    base, override = _read(base_path), _read(env_path)
    consumers = override.get("consumers", base.get("consumers", []))
    if not isinstance(consumers, list) or not all(isinstance(c, str) for c in consumers):
        raise ConfigError(f"Policy: consumers must be a list of names ({base_path}).")
    for name in consumers:
        if not NAME.match(name) or name in teams:
            raise ConfigError(
                f"Policy consumer {name!r} must be a lowercase name that is not a team's."
            )
    grants: dict[str, Grant] = {}
    for path, data in ((base_path, base), (env_path, override)):
        for index, entry in enumerate(data.get("grants", []) or []):
            grant = _grant(entry, index, path)
            grants[grant.id] = grant
    for grant_id in override.get("remove", []) or []:
        if grants.pop(grant_id, None) is None:
            raise ConfigError(f"Policy file {env_path} removes unknown grant '{grant_id}'.")
    key_env = (base.get("pseudonymisation") or {}).get("key_env", DEFAULT_KEY_ENV)
    policy = Policy(
        environment=environment,
        teams=tuple(teams),
        consumers=tuple(consumers),
        grants=tuple(grants.values()),
        key_env=key_env,
    )
    _validate(policy, products)
    return policy


def _validate(policy: Policy, products: Sequence[str]) -> None:
    known = set(products)
    seen: dict[tuple[str, str], Grant] = {}
    for grant in policy.grants:
        where = f"Policy grant '{grant.id}'"
        if grant.principal not in policy.principals:
            raise ConfigError(
                f"{where} names unknown principal '{grant.principal}'. Use a team "
                f"({', '.join(policy.teams)}) or add it under consumers:."
            )
        for pattern in grant.products:
            matched = [p for p in products if fnmatch.fnmatchcase(p, pattern)]
            if not matched:
                raise ConfigError(
                    f"{where} names {pattern!r}, which matches no data product. Known: "
                    f"{', '.join(sorted(known))}. Fix the key, or regenerate the manifest "
                    "(dataops policy products --write) if the product is new."
                )
            for product in matched:
                if product.split("/")[0] == grant.principal:
                    raise ConfigError(
                        f"{where} grants team '{grant.principal}' its own product {product}; "
                        "owners always read their own products. Remove it."
                    )
                earlier = seen.get((grant.principal, product))
                if earlier and (earlier.access, earlier.mask) != (grant.access, grant.mask):
                    raise ConfigError(
                        f"{where} and grant '{earlier.id}' give '{grant.principal}' different "
                        f"access to {product}. Keep one of them."
                    )
                seen[(grant.principal, product)] = grant
