"""The compliance policy: where products may live, and the minimum group size of public aggregates.

``policy/compliance.yaml`` (optional; without it no residency rule applies and k is 5)::

    k_anonymity:
      min_group_size: 5
    residency:
      - id: sales-personal-data-in-eu
        products: [sales/raw_orders, sales/customers]   # keys, or team/* for a whole team
        jurisdictions: [eu]                             # allowed jurisdictions
      - id: customers-sovereign-in-prod
        products: [sales/customers]
        sovereign_only: true                            # only on storage declared sovereign
        environments: [prod]                            # default: every environment

Validated like the access policy: unknown keys, products matching nothing, empty rules and bad
values stop the load with one message naming the rule and the fix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config import ENVIRONMENTS, ConfigError
from platform_core.governance.policy import GRANT_ID, POLICY_DIR, PRODUCT

COMPLIANCE_FILE = "compliance.yaml"
DEFAULT_MIN_GROUP_SIZE = 5
JURISDICTION = re.compile(r"^[a-z]{2,8}$")
RULE_KEYS = {"id", "products", "jurisdictions", "sovereign_only", "environments"}


@dataclass(frozen=True)
class ResidencyRule:
    """Products matching ``products`` may live only in ``jurisdictions`` (any when empty) and,
    with ``sovereign_only``, only on sovereign storage, in ``environments`` (all when empty)."""

    id: str
    products: tuple[str, ...]
    jurisdictions: tuple[str, ...] = ()
    sovereign_only: bool = False
    environments: tuple[str, ...] = ()

    def covers(self, product: str) -> bool:
        return any(fnmatch.fnmatchcase(product, pattern) for pattern in self.products)

    def applies_in(self, environment: str) -> bool:
        return not self.environments or environment in self.environments

    def as_manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rule": self.id}
        if self.jurisdictions:
            entry["jurisdictions"] = list(self.jurisdictions)
        if self.sovereign_only:
            entry["sovereign_only"] = True
        if self.environments:
            entry["environments"] = list(self.environments)
        return entry


@dataclass(frozen=True)
class CompliancePolicy:
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE
    residency: tuple[ResidencyRule, ...] = ()

    def rules_for(self, product: str) -> tuple[ResidencyRule, ...]:
        return tuple(rule for rule in self.residency if rule.covers(product))


def _strings(value: Any, where: str, what: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.match(v) for v in value
    ):
        raise ConfigError(f"{where}: {what} must be a list of {pattern.pattern} names.")
    return tuple(value)


def _rule(entry: Any, index: int, path: Path, products: Sequence[str]) -> ResidencyRule:
    where = f"Compliance policy {path}, residency rule #{index + 1}"
    if not isinstance(entry, dict) or set(entry) - RULE_KEYS:
        raise ConfigError(f"{where} must be a mapping of {', '.join(sorted(RULE_KEYS))}.")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not GRANT_ID.match(rule_id):
        raise ConfigError(f"{where}: every rule needs an id (lowercase letters, digits, - _).")
    where = f"Compliance policy {path}, residency rule '{rule_id}'"
    patterns = _strings(entry.get("products"), where, "products", PRODUCT)
    if not patterns:
        raise ConfigError(f"{where}: products must name at least one product (team/name).")
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(p, pattern) for p in products):
            raise ConfigError(
                f"{where} names {pattern!r}, which matches no data product. Fix the key, or "
                "regenerate the manifest (dataops policy products --write) if it is new."
            )
    jurisdictions = _strings(entry.get("jurisdictions", []), where, "jurisdictions", JURISDICTION)
    sovereign_only = entry.get("sovereign_only", False)
    if not isinstance(sovereign_only, bool):
        raise ConfigError(f"{where}: sovereign_only must be true or false.")
    if not jurisdictions and not sovereign_only:
        raise ConfigError(f"{where} restricts nothing: give jurisdictions or sovereign_only.")
    environments = _strings(entry.get("environments", []), where, "environments", JURISDICTION)
    unknown = sorted(set(environments) - set(ENVIRONMENTS))
    if unknown:
        raise ConfigError(f"{where}: unknown environments {unknown}; use {list(ENVIRONMENTS)}.")
    return ResidencyRule(rule_id, patterns, jurisdictions, sovereign_only, environments)


def load_compliance(products: Sequence[str], policy_dir: Path = POLICY_DIR) -> CompliancePolicy:
    """The compliance policy of ``policy_dir``, checked against the product keys."""
    path = policy_dir / COMPLIANCE_FILE
    if not path.exists():
        return CompliancePolicy()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Compliance policy {path} is not valid YAML ({exc}).") from exc
    if not isinstance(data, dict) or set(data) - {"k_anonymity", "residency"}:
        raise ConfigError(f"Compliance policy {path} holds k_anonymity and residency only.")
    k_section = data.get("k_anonymity") or {}
    k = k_section.get("min_group_size", DEFAULT_MIN_GROUP_SIZE)
    if set(k_section) - {"min_group_size"} or isinstance(k, bool) or not isinstance(k, int):
        raise ConfigError(f"Compliance policy {path}: k_anonymity takes min_group_size (a number).")
    if k < 2:
        raise ConfigError(f"Compliance policy {path}: k_anonymity.min_group_size must be >= 2.")
    raw_rules = data.get("residency") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"Compliance policy {path}: residency must be a list of rules.")
    rules = tuple(_rule(entry, i, path, products) for i, entry in enumerate(raw_rules))
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"Compliance policy {path}: residency rule ids must be unique.")
    return CompliancePolicy(k, rules)
