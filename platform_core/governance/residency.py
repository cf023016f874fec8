"""Residency and sovereignty: may this product live on this deployment's storage?

A deployment's placement is its storage's region, jurisdiction and legal exposure. Where the
store can say where it is (S3 ``GetBucketLocation`` on AWS, the GCS bucket's location), its
answer is the region and decides the jurisdiction (a region it cannot place has none, so a rule
naming jurisdictions keeps products off it: fail closed). Otherwise (local, on-premises, Azure,
a GCS emulator, which reports US-CENTRAL1 for every bucket) the declared ``storage.region`` and
``storage.jurisdiction`` are trusted. ``storage.sovereign`` is always declared: only the
operator knows whether the provider is subject to extraterritorial access laws. A product a
rule keeps off the deployment is left out of the location (with what depends on it), selecting
it fails with ``ResidencyError``, and the IO manager refuses its write as a last line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config import ConfigError, Deployment
from platform_core.governance.compliance_policy import ResidencyRule

LEFT_OUT = "dataops/left_out_by_residency"
JURISDICTION_PREFIXES = (("eu-", "eu"), ("europe-", "eu"), ("us-", "us"), ("ca-", "ca"))
NAMED_REGIONS = {
    "eu": "eu",
    "us": "us",
    "eu-west-2": "uk",
    "europe-west2": "uk",
    "uksouth": "uk",
    "ukwest": "uk",
    "eu-central-2": "ch",
    "europe-west6": "ch",
    "switzerlandnorth": "ch",
    "westeurope": "eu",
    "northeurope": "eu",
    "francecentral": "eu",
    "germanywestcentral": "eu",
    "swedencentral": "eu",
    "eur4": "eu",
    "nam4": "us",
}


class ResidencyError(ConfigError):
    """A product may not live on this deployment's storage."""


@dataclass(frozen=True)
class Placement:
    """Where a deployment's storage keeps data, and who said so."""

    region: str | None
    jurisdiction: str | None
    sovereign: bool
    source: str

    def describe(self) -> str:
        sovereignty = "sovereign" if self.sovereign else "not sovereign"
        return (
            f"region {self.region or 'undeclared'}, jurisdiction "
            f"{self.jurisdiction or 'undeclared'}, {sovereignty} ({self.source})"
        )


def jurisdiction_of(region: str | None) -> str | None:
    """The jurisdiction of a provider region name, when its name says it (eu-west-1 -> eu;
    London and Zurich regions are uk and ch, not eu); None for a region it cannot place."""
    if not region:
        return None
    region = region.lower()
    if region in NAMED_REGIONS:
        return NAMED_REGIONS[region]
    return next((j for prefix, j in JURISDICTION_PREFIXES if region.startswith(prefix)), None)


def placement_of(deployment: Deployment, reported_region: str | None) -> Placement:
    """The deployment's placement: the store's reported region if any, else the declaration."""
    storage = deployment.storage
    declared_region = storage.get("region")
    declared = storage.get("jurisdiction")
    sovereign = bool(storage.get("sovereign", False))
    if reported_region:
        return Placement(
            reported_region, jurisdiction_of(reported_region), sovereign, "as the bucket reports it"
        )
    return Placement(
        declared_region,
        declared or jurisdiction_of(declared_region),
        sovereign,
        "as declared in storage settings",
    )


def violation(
    product: str, rules: Iterable[ResidencyRule], placement: Placement, environment: str
) -> str | None:
    """Why ``product`` may not live at ``placement``, naming product, rule and region; or None."""
    for rule in rules:
        if not rule.applies_in(environment):
            continue
        if rule.jurisdictions and placement.jurisdiction not in rule.jurisdictions:
            return (
                f"{product} may live only in jurisdictions {list(rule.jurisdictions)} "
                f"(residency rule '{rule.id}'), and this deployment's storage is in "
                f"{placement.describe()}"
            )
        if rule.sovereign_only and not placement.sovereign:
            return (
                f"{product} may live only on sovereign storage (residency rule '{rule.id}'), "
                f"and this deployment's storage is {placement.describe()}"
            )
    return None


def left_out(
    products: Mapping[str, Iterable[ResidencyRule]],
    parents: Mapping[str, Iterable[str]],
    placement: Placement,
    environment: str,
) -> dict[str, str]:
    """Every product kept off the deployment, with why: by a rule, or by needing such a product.

    ``parents`` maps each product of the location to the products it reads (any team's).
    """
    reasons = {
        product: reason
        for product, rules in products.items()
        if (reason := violation(product, rules, placement, environment)) is not None
    }
    changed = True
    while changed:
        changed = False
        for product, reads in parents.items():
            if product in reasons:
                continue
            blocked = next((parent for parent in sorted(reads) if parent in reasons), None)
            if blocked is not None:
                reasons[product] = (
                    f"{product} reads {blocked}, which is left out: " + (reasons[blocked])
                )
                changed = True
    return reasons


def refusal(reason: str) -> ResidencyError:
    return ResidencyError(
        f"Residency: {reason}. The product is left out of this deployment; run it on a "
        "deployment whose storage the rule allows, or change the rule in policy/compliance.yaml."
    )
