"""Access decisions: may this principal read this product, fully or through a share view?

One function, ``decide``, answers from the policy and the product manifest, with the rule that
decided; the IO manager, the landing zone, the CLI (``dataops access check``) and the dataset
API all ask it. A decision is a few dictionary lookups (well under a millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.governance.policy import Grant, Policy
from platform_core.governance.products import Product

SHARES = "shares"


class AccessDenied(PermissionError):
    """A principal tried to read or write what the policy does not grant."""


@dataclass(frozen=True)
class Decision:
    """Allowed or not, how (``owner``, ``default``, ``full``, ``masked``), and the deciding rule."""

    allowed: bool
    mode: str
    rule: str
    share_view: str | None = None
    grant: Grant | None = None


def share_view_key(product: str, consumer: str) -> str:
    """The key of the share view that serves ``product`` to ``consumer`` (``owner/shares/...``)."""
    owner, _, name = product.partition("/")
    return f"{owner}/{SHARES}/{consumer}/{name}"


def share_views(policy: Policy, manifest: Mapping[str, Product]) -> dict[str, tuple[str, Grant]]:
    """Every share view the policy implies: view key -> (product it masks, grant)."""
    views = {}
    for grant in policy.grants:
        if grant.access != "masked":
            continue
        for product in sorted(manifest):
            if grant.covers(product):
                views[share_view_key(product, grant.principal)] = (product, grant)
    return views


def decide(
    policy: Policy, manifest: Mapping[str, Product], principal: str, product: str
) -> Decision:
    """Whether ``principal`` may read ``product`` (a data product or a share view key)."""
    owner = product.split("/")[0]
    if principal not in policy.principals:
        return Decision(False, "deny", f"'{principal}' is not a principal of the policy")
    if principal == owner:
        return Decision(True, "owner", "owners read and write their own products")
    parts = product.split("/")
    if len(parts) >= 4 and parts[1] == SHARES:
        views = share_views(policy, manifest)
        if product in views and parts[2] == principal:
            source, grant = views[product]
            return Decision(True, "masked", f"grant '{grant.id}' (masked {source})", product, grant)
        return Decision(False, "deny", f"share view {product} is not granted to '{principal}'")
    info = manifest.get(product)
    if info is None:
        return Decision(False, "deny", f"{product} is not a known data product")
    for grant in policy.grants:
        if grant.principal == principal and grant.covers(product):
            if grant.access == "full":
                return Decision(True, "full", f"grant '{grant.id}'", grant=grant)
            view = share_view_key(product, principal)
            return Decision(
                False,
                "masked",
                f"grant '{grant.id}' is masked: '{principal}' reads the share view {view}, "
                "never the raw product",
                view,
                grant,
            )
    if info.classification == "public":
        return Decision(True, "default", "public products are readable by every principal")
    if info.classification == "internal" and principal in policy.teams:
        return Decision(True, "default", "internal products are readable by every team")
    return Decision(
        False,
        "deny",
        f"{product} is {info.classification} and no grant gives '{principal}' read access",
    )


def denial(principal: str, product: str, decision: Decision, classification: str) -> str:
    """The message of an ``AccessDenied``: who, what, why, and the grant to add."""
    fix = (
        f"Read {decision.share_view} instead."
        if decision.share_view
        else f"Add a grant to policy/access.yaml: {{principal: {principal}, products: "
        f"[{product}], access: full}} (or masked), reviewed by the owner '{product.split('/')[0]}'."
    )
    return (
        f"Access denied: '{principal}' may not read {product} ({classification}): "
        f"{decision.rule}. {fix}"
    )
