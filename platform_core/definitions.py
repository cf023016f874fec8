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

import dagster as dg

from config import ConfigError, Deployment, load_deployment
from platform_core.compute_factory import compute_for
from platform_core.feeds import LandingFeed
from platform_core.governance import require_ownership
from platform_core.io_manager import DataProductIOManager
from platform_core.landing import LandingZone
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

    def definitions(self, deployment: Deployment | None = None) -> dg.Definitions:
        """The team's ``Definitions`` for ``deployment`` (by default, the environment's).

        Everything is resolved and validated here: a bad setting, an unreachable bucket, an
        unowned data product or a feed without its product stops the load with one clear
        message, so no run can start on a broken configuration. Teams get no raw storage: asset
        code reaches data only through the IO manager, the landing zone and ``pipes``.
        """
        deployment = deployment or load_deployment()
        require_ownership(self.name, self.assets)
        self._check_feeds()
        storage = storage_for(deployment)
        compute = compute_for(deployment)
        return dg.Definitions(
            assets=[*self.assets, *(dg.AssetSpec(key) for key in self.upstream)],
            asset_checks=[*self.asset_checks, *(feed.quarantine_check() for feed in self.feeds)],
            sensors=[*(feed.sensor() for feed in self.feeds), *self.sensors],
            schedules=self.schedules,
            resources={
                "io_manager": DataProductIOManager(
                    storage=storage, environment=deployment.environment
                ),
                "landing": LandingZone(storage=storage, environment=deployment.environment),
                "pipes": compute.pipes_resource(self.name),
            },
            executor=compute.executor(self.name, self.assets),
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
