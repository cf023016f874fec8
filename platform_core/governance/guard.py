"""The access guard: the policy enforced on every read and write through the platform.

Each code location's IO manager and landing zone hold a guard for their team. Reading another
team's product asks ``access.decide``; a write must land under the team's own products in the
deployment's own environment. Denials raise ``AccessDenied`` naming principal, product,
classification and the grant to add, before storage is touched.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from platform_core.governance.access import AccessDenied, Decision, decide, denial
from platform_core.governance.policy import POLICY_DIR, Policy, load_policy
from platform_core.governance.products import Product, load_manifest


class AccessGuard(dg.ConfigurableResource):
    """The policy as seen by one team in one environment."""

    team: str
    environment: str
    policy_dir: str = str(POLICY_DIR)

    _loaded: tuple[Policy, dict[str, Product]] | None = PrivateAttr(default=None)

    def loaded(self) -> tuple[Policy, dict[str, Product]]:
        if self._loaded is None:
            manifest = load_manifest(Path(self.policy_dir))
            teams = sorted({p.owner for p in manifest.values()} | {self.team})
            policy = load_policy(self.environment, teams, list(manifest), Path(self.policy_dir))
            self._loaded = (policy, manifest)
        return self._loaded

    def decide(self, product: str) -> Decision:
        policy, manifest = self.loaded()
        return decide(policy, manifest, self.team, product)

    def check_read(self, product: str) -> Decision:
        """The decision for reading ``product``; AccessDenied if it is not allowed."""
        decision = self.decide(product)
        if not decision.allowed:
            raise AccessDenied(denial(self.team, product, decision, self._classification(product)))
        return decision

    def check_write(self, product: str, key: str) -> None:
        """A write of ``product`` at storage ``key`` is the team's own, in its own environment."""
        if product.split("/")[0] != self.team:
            raise AccessDenied(
                f"Access denied: team '{self.team}' may not write {product}, a product of team "
                f"'{product.split('/')[0]}'. Teams write only their own products."
            )
        if not key.startswith(f"{self.environment}/{self.team}/"):
            raise AccessDenied(
                f"Access denied: team '{self.team}' in environment '{self.environment}' may not "
                f"write {key}: writes stay under '{self.environment}/{self.team}/'."
            )

    def check_feed(self, team: str, feed: str) -> None:
        """Only the team that owns a landing feed reads it."""
        if team != self.team:
            raise AccessDenied(
                f"Access denied: team '{self.team}' may not read the landing feed {team}/{feed}; "
                f"landing zones are read only by their team. Ask team '{team}' for a grant on "
                "the product that ingests it."
            )

    def _classification(self, product: str) -> str:
        info = self.loaded()[1].get(product)
        return info.classification if info else "unknown product"
