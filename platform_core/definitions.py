"""A team's code location: its business logic, wired for the current target when it loads.

A team module declares one ``Team`` (data products, checks, landing feeds, what it reads of
other teams) and exposes ``defs`` through ``@dg.definitions``, so importing the module touches no
storage and no network; the settings are read, the adapters built and the bucket checked only
when Dagster (or ``dataops``) loads the location::

    team = Team(name="sales", assets=[...], feeds=[ORDERS_FEED])

    @dg.definitions
    def defs() -> dg.Definitions:
        return team.definitions()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from config import ConfigError, Deployment, load_deployment
from config.environment import variable
from platform_core.audit.trail import AuditTrail
from platform_core.compute_factory import compute_for
from platform_core.feeds import LandingFeed
from platform_core.governance import require_ownership
from platform_core.governance.access import AccessDenied
from platform_core.governance.compliance import left_out_metadata, location_compliance
from platform_core.governance.compliance_policy import load_compliance
from platform_core.governance.guard import AccessGuard
from platform_core.governance.policy import POLICY_DIR, POLICY_DIR_VARIABLE
from platform_core.governance.products import check_own_products
from platform_core.governance.share_views import share_view_assets
from platform_core.io_manager import DataProductIOManager
from platform_core.landing import LandingZone
from platform_core.lineage.sensor import lineage_sensor
from platform_core.storage_factory import storage_for


@dataclass(frozen=True)
class Team:
    """Everything a team declares; ``definitions()`` turns it into its code location.

    ``upstream`` names other teams' data products this team reads; they appear in this location
    as external assets, so lineage crosses locations and the IO manager loads them by key.
    """

    name: str
    assets: Sequence[dg.AssetsDefinition]
    upstream: Sequence[dg.AssetKey] = ()
    asset_checks: Sequence[dg.AssetChecksDefinition] = ()
    feeds: Sequence[LandingFeed] = ()
    sensors: Sequence[dg.SensorDefinition] = ()
    schedules: Sequence[dg.ScheduleDefinition] = ()

    def definitions(
        self, deployment: Deployment | None = None, policy_dir: Path | None = None
    ) -> dg.Definitions:
        """The team's ``Definitions`` for ``deployment`` (by default, the environment's).

        Everything is resolved and validated here: a bad setting, an unreachable bucket, an
        unowned data product, a feed without its product, a policy that does not hold, an
        upstream the team may not read or a missing pseudonymisation key stops the load with
        one clear message, so no run can start on a broken configuration. Teams get no raw
        storage: asset code reaches data only through the IO manager, the landing zone and
        ``pipes``, each enforcing the access policy for this team.
        """
        deployment = deployment or load_deployment()
        policy_dir = policy_dir or Path(deployment.variable(POLICY_DIR_VARIABLE) or POLICY_DIR)
        require_ownership(self.name, self.assets)
        self._check_feeds()
        guard = AccessGuard(
            team=self.name, environment=deployment.environment, policy_dir=str(policy_dir)
        )
        policy, manifest = guard.loaded()
        check_own_products(
            self.name, self.assets, manifest, load_compliance(list(manifest), policy_dir)
        )
        for key in self.upstream:
            try:
                guard.check_read(key.to_user_string())
            except AccessDenied as exc:
                raise ConfigError(
                    f"Team '{self.name}' declares an upstream it may not read. {exc}"
                ) from exc
        views = share_view_assets(self.name, policy, manifest)
        for view in views:
            for key_env in _key_variables(view):
                if not variable(key_env):
                    raise ConfigError(
                        f"{key_env} is not set: team '{self.name}' pseudonymises the share view "
                        f"{view.key.to_user_string()} with it. Set it to a random secret of at "
                        "least 32 bytes in this location's environment only (from the secret "
                        "store), never in a file."
                    )
        storage = storage_for(deployment)
        compute = compute_for(deployment)
        compliance = location_compliance(
            self.name, self.assets, views, policy, manifest, policy_dir, deployment, storage
        )
        assets = [a for a in self.assets if all(map(compliance.keeps, a.keys))]
        views = [view for view in views if all(map(compliance.keeps, view.keys))]
        feeds = [feed for feed in self.feeds if compliance.keeps(feed.product_key)]
        checks = [
            c for c in self.asset_checks if all(compliance.keeps(k.asset_key) for k in c.check_keys)
        ]
        audit = AuditTrail(storage=storage, environment=deployment.environment, principal=self.name)
        guard = AccessGuard(
            team=self.name,
            environment=deployment.environment,
            policy_dir=guard.policy_dir,
            audit=audit,
        )
        return dg.Definitions(
            assets=[*assets, *views, *(dg.AssetSpec(key) for key in self.upstream)],
            asset_checks=[
                *checks,
                *(feed.quarantine_check() for feed in feeds),
                *compliance.checks,
            ],
            sensors=[
                *(feed.sensor() for feed in feeds),
                *self.sensors,
                lineage_sensor(self.name, [*assets, *views], self.upstream, deployment),
                *_share_view_automation(self.name, views),
            ],
            schedules=self.schedules,
            resources={
                "io_manager": DataProductIOManager(
                    storage=storage,
                    environment=deployment.environment,
                    guard=guard,
                    compliance=compliance.guard,
                    audit=audit,
                ),
                "landing": LandingZone(
                    storage=storage, environment=deployment.environment, guard=guard, audit=audit
                ),
                "pipes": compute.pipes_resource(self.name),
            },
            executor=compute.executor(self.name, assets),
            metadata=left_out_metadata(compliance),
        )

    def _check_feeds(self) -> None:
        partitions = {
            key: assets_def.partitions_def for assets_def in self.assets for key in assets_def.keys
        }
        for feed in self.feeds:
            where = f"Landing feed {feed.team}/{feed.name}"
            if feed.team != self.name:
                raise ConfigError(f"{where} belongs to team '{feed.team}', not '{self.name}'.")
            if feed.product_key not in partitions:
                raise ConfigError(
                    f"{where} is ingested by {feed.product_key.to_user_string()}, which team "
                    f"'{self.name}' does not define. Add the data product to the team's assets."
                )
            if partitions[feed.product_key] != feed.partitions:
                raise ConfigError(
                    f"{where}: {feed.product_key.to_user_string()} must be partitioned by the "
                    "feed's files. Declare it with partitions_def=<feed>.partitions."
                )


def _key_variables(view: dg.AssetsDefinition) -> list[str]:
    """The pseudonymisation key variables a share view needs (none if it only drops or filters)."""
    spec = next(iter(view.specs))
    return [spec.metadata["dataops/key_env"]] if "dataops/key_env" in spec.metadata else []


def _share_view_automation(
    team: str, views: Sequence[dg.AssetsDefinition]
) -> list[dg.AutomationConditionSensorDefinition]:
    """A running sensor that materialises the team's share views after their sources change."""
    if not views:
        return []
    return [
        dg.AutomationConditionSensorDefinition(
            f"{team}_share_views",
            target=dg.AssetSelection.assets(*views),
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Keeps the team's share views in step with the products they mask.",
        )
    ]
