"""One call that turns a team's business logic into a code location wired for the current target."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from platform_core.governance import require_ownership
from platform_core.io_manager import DataProductIOManager
from platform_core.landing import LandingZone
from platform_core.lineage.sensor import lineage_sensor
from platform_core.settings import Deployment, load_deployment
from platform_core.targets import compute_for, storage_for


def build_team_definitions(
    team: str,
    assets: Sequence[dg.AssetsDefinition],
    upstream: Sequence[dg.AssetKey] = (),
    asset_checks: Sequence[dg.AssetChecksDefinition] = (),
    sensors: Sequence[dg.SensorDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
    deployment: Deployment | None = None,
) -> dg.Definitions:
    """The team's ``Definitions``: its assets plus the target's storage, IO manager and executor.

    ``upstream`` names other teams' data products this team reads; they appear in this location
    as external assets, so lineage crosses locations and the IO manager loads them by key.

    Everything is resolved and validated here, when the code location loads: a bad setting, an
    unreachable bucket or an unowned data product stops the load with one clear message, so no
    run can start on a broken configuration.
    """
    deployment = deployment or load_deployment()
    require_ownership(team, assets)
    storage = storage_for(deployment)
    compute = compute_for(deployment)
    return dg.Definitions(
        assets=[*assets, *(dg.AssetSpec(key) for key in upstream)],
        asset_checks=asset_checks,
        sensors=[*sensors, lineage_sensor(team, assets, upstream, deployment)],
        schedules=schedules,
        resources={
            "storage": storage,
            "io_manager": DataProductIOManager(storage=storage, environment=deployment.environment),
            "landing": LandingZone(storage=storage, environment=deployment.environment),
            "pipes": compute.pipes_resource(team),
        },
        executor=compute.executor(team, assets),
    )
