"""Compliance of one code location, decided when it loads and enforced on every write.

``location_compliance`` checks that classification follows lineage (``classification``) and
that share views mask every pii column of their source, places the deployment's storage
(``residency``), leaves out what may not live there (with a warning naming product, rule and
region), and builds the asset checks the UI shows: ``no_undeclared_personal_data`` on every
non-pii product and ``minimum_group_size`` on every public aggregate. ``ComplianceGuard`` is
what the IO manager holds: a residency refusal at the start of each write, and the
personal-data scan of every table or record batch a non-pii product writes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from adapters.storage.base import StorageAdapter
from config import ConfigError, Deployment
from platform_core.governance.access import share_views
from platform_core.governance.classification import (
    Classified,
    check_lineage,
    declassification_of,
)
from platform_core.governance.compliance_policy import (
    CompliancePolicy,
    ResidencyRule,
    load_compliance,
)
from platform_core.governance.k_anonymity import smallest_group
from platform_core.governance.ownership import CLASSIFICATION_TAG, Classification
from platform_core.governance.personal_data import find_personal_data
from platform_core.governance.policy import Policy
from platform_core.governance.products import Product
from platform_core.governance.residency import (
    LEFT_OUT,
    left_out,
    placement_of,
    refusal,
)

PERSONAL_DATA_CHECK = "no_undeclared_personal_data"
GROUP_SIZE_CHECK = "minimum_group_size"
PERSONAL_DATA_TEXT = "No column of this non-pii product holds emails, phone numbers or IBANs."


class UndeclaredPersonalData(ValueError):
    """A product not classified pii was about to store personal data."""


class ComplianceGuard(dg.ConfigurableResource):
    """What one location's IO manager enforces: residency refusals and the personal-data scan.

    ``refused`` maps products this deployment may not store to the residency reason;
    ``pii_products`` are those allowed to hold personal data. Any other product is scanned.
    """

    pii_products: list[str] = []
    refused: dict[str, str] = {}

    def check_residency(self, product: str) -> None:
        """ResidencyError if ``product`` may not be written to this deployment's storage."""
        reason = self.refused.get(product)
        if reason is not None:
            raise refusal(reason)

    def scanner(self, product: str) -> Callable[[pa.Table | pa.RecordBatch], None] | None:
        """A check of each table or batch ``product`` writes; None when it may hold pii."""
        if product in self.pii_products:
            return None

        def scan(data: pa.Table | pa.RecordBatch) -> None:
            finding = find_personal_data(data)
            if finding is not None:
                raise UndeclaredPersonalData(
                    f"Refused to write {product}: it is not classified pii, yet its "
                    f"{finding.describe()}. Nothing was written. Drop or pseudonymise the "
                    "column, or classify the product pii and tag the column "
                    "(data_product(..., columns={...: 'pii'}))."
                )

        return scan


@dataclass(frozen=True)
class LocationCompliance:
    """The location's guard, the products it leaves out (with why) and its compliance checks."""

    guard: ComplianceGuard
    left_out: Mapping[str, str]
    checks: Sequence[dg.AssetChecksDefinition]

    def keeps(self, key: dg.AssetKey) -> bool:
        return key.to_user_string() not in self.left_out


def known_products(policy: Policy, manifest: Mapping[str, Product]) -> dict[str, Classified]:
    """Every product of the manifest, and every share view as its grant classifies it."""
    known = {
        key: Classified(product.classification, product.pii_columns)
        for key, product in manifest.items()
    }
    for view, (_, grant) in share_views(policy, manifest).items():
        known[view] = Classified(grant.classification, ())
    return known


def check_share_view_masks(team: str, policy: Policy, manifest: Mapping[str, Product]) -> None:
    """A share view of a pii product pseudonymises or drops every pii column, or is pii."""
    for view, (source, grant) in share_views(policy, manifest).items():
        product = manifest[source]
        if product.owner != team or product.classification != Classification.PII:
            continue
        if grant.classification == Classification.PII or grant.mask is None:
            continue
        masked = {*grant.mask.pseudonymise, *grant.mask.drop}
        missing = sorted(set(product.pii_columns) - masked)
        if missing:
            raise ConfigError(
                f"Share view {view} (grant '{grant.id}') is classified {grant.classification} "
                f"but its mask leaves the pii columns {missing} of {source}. Pseudonymise or "
                "drop them in the grant's mask, or classify the grant pii."
            )


def location_compliance(
    team: str,
    assets: Sequence[dg.AssetsDefinition],
    views: Sequence[dg.AssetsDefinition],
    policy: Policy,
    manifest: Mapping[str, Product],
    policy_dir: Path,
    deployment: Deployment,
    storage: StorageAdapter,
) -> LocationCompliance:
    """Check the location's classification and residency; ConfigError if lineage breaks a rule."""
    compliance = load_compliance(list(manifest), policy_dir)
    check_share_view_masks(team, policy, manifest)
    check_lineage(team, assets, known_products(policy, manifest), compliance.min_group_size)
    specs = [spec for assets_def in [*assets, *views] for spec in assets_def.specs]
    parents = {
        spec.key.to_user_string(): [dep.asset_key.to_user_string() for dep in spec.deps]
        for spec in specs
    }
    rules = residency_rules(
        {*parents, *(p for reads in parents.values() for p in reads)}, compliance, policy, manifest
    )
    placement = placement_of(deployment, storage.location())
    reasons = left_out(rules, parents, placement, deployment.environment)
    logger = dg.get_dagster_logger()
    kept = []
    for spec in specs:
        name = spec.key.to_user_string()
        if name in reasons:
            logger.warning(f"Residency: {reasons[name]}. Left out of this deployment.")
        else:
            kept.append(spec)
    guard = ComplianceGuard(
        pii_products=sorted(
            s.key.to_user_string() for s in specs if s.tags[CLASSIFICATION_TAG] == "pii"
        ),
        refused={name: reason for name, reason in reasons.items() if name in parents},
    )
    return LocationCompliance(guard, dict(sorted(guard.refused.items())), _checks(kept, compliance))


def residency_rules(
    products: set[str],
    compliance: CompliancePolicy,
    policy: Policy,
    manifest: Mapping[str, Product],
) -> dict[str, tuple[ResidencyRule, ...]]:
    """The rules of each product; a share view lives where its source may."""
    views = share_views(policy, manifest)
    return {
        product: compliance.rules_for(views[product][0] if product in views else product)
        for product in products
    }


def left_out_metadata(location: LocationCompliance) -> dict[str, object]:
    """Definitions metadata recording what residency left out, for selection errors."""
    return {LEFT_OUT: dg.MetadataValue.json(dict(location.left_out))}


def refuse_left_out(defs: dg.Definitions, keys: Sequence[dg.AssetKey]) -> None:
    """ResidencyError if any of ``keys`` was left out of ``defs`` by residency."""
    recorded = (defs.metadata or {}).get(LEFT_OUT)
    reasons = recorded.data if isinstance(recorded, dg.JsonMetadataValue) else {}
    for key in keys:
        reason = reasons.get(key.to_user_string())
        if reason is not None:
            raise refusal(reason)


def _checks(
    specs: Sequence[dg.AssetSpec], compliance: CompliancePolicy
) -> list[dg.AssetChecksDefinition]:
    checks = []
    for spec in specs:
        classification = spec.tags[CLASSIFICATION_TAG]
        if classification != Classification.PII:
            checks.append(
                _check(spec, PERSONAL_DATA_CHECK, PERSONAL_DATA_TEXT, _personal_data_result)
            )
        declared = declassification_of(spec.metadata)
        if classification == Classification.PUBLIC and declared and declared.how == "aggregated":
            k = max(declared.k or 0, compliance.min_group_size)
            count_column = str(declared.count_column)
            checks.append(
                _check(
                    spec,
                    GROUP_SIZE_CHECK,
                    f"Every group of this public aggregate holds at least {k} ({count_column}).",
                    partial(_group_result, count_column=count_column, k=k),
                )
            )
    return checks


def _check(
    spec: dg.AssetSpec,
    name: str,
    description: str,
    result: Callable[[pd.DataFrame], dg.AssetCheckResult],
) -> dg.AssetChecksDefinition:
    """An asset check of ``spec`` loading the stored product (one partition when partitioned)."""

    def evaluate(*args: pd.DataFrame, **kwargs: pd.DataFrame) -> dg.AssetCheckResult:
        (frame,) = [*args, *kwargs.values()]
        return result(frame)

    parameter = inspect.Parameter(spec.key.path[-1], inspect.Parameter.POSITIONAL_OR_KEYWORD)
    evaluate.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    return dg.asset_check(
        asset=spec.key,
        name=name,
        partitions_def=spec.partitions_def,
        description=description,
    )(evaluate)


def _personal_data_result(frame: pd.DataFrame) -> dg.AssetCheckResult:
    finding = find_personal_data(pa.Table.from_pandas(frame, preserve_index=False))
    return dg.AssetCheckResult(
        passed=finding is None,
        metadata={
            "rows": len(frame),
            "finding": finding.describe() if finding else "none",
        },
    )


def _group_result(frame: pd.DataFrame, count_column: str, k: int) -> dg.AssetCheckResult:
    smallest = smallest_group(frame, count_column)
    return dg.AssetCheckResult(
        passed=smallest is None or smallest >= k,
        metadata={"k": k, "smallest_group": -1 if smallest is None else smallest},
    )
