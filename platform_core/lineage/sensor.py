"""The lineage sensor every team location gets: the daemon emits OpenLineage for its runs.

Each tick reads new run status changes (start, success, failure, cancel) from the event log
through ``context.instance``, after a storage-id cursor, and rebuilds the events of this team's
runs among them, plus those of its runs still in progress (so step events flow while a run
lasts). The outbox drops events it already holds, so rebuilding is cheap and never duplicates;
then whatever waits in the outbox is delivered. A run belongs to the team whose asset keys it
materialises or checks, whichever launched it (UI, schedule, sensor, backfill or CLI).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import dagster as dg

from config import Deployment
from platform_core.lineage.config import lineage_config

STATUS_EVENTS = (
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}
RUNS_PER_TICK = 100


def _run_team(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    keys = set(run.asset_selection or ())
    keys |= {check.asset_key for check in run.asset_check_selection or ()}
    if not keys:
        planned = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        keys = {r.event_log_entry.dagster_event.event_specific_data.asset_key for r in planned}
    teams = {key.path[0] for key in keys}
    return teams.pop() if len(teams) == 1 else None


def _status_changes(
    instance: dg.DagsterInstance, after: int
) -> tuple[list[dg.EventLogRecord], int]:
    """Status-change records after ``after``, oldest first, at most RUNS_PER_TICK of them.

    Each type is fetched up to the limit; keeping the limit's worth of the smallest storage ids
    of all types never skips a record, so the cursor can move to the last one kept.
    """
    records = [
        record
        for event_type in STATUS_EVENTS
        for record in instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
            limit=RUNS_PER_TICK,
            ascending=True,
        ).records
    ]
    kept = sorted(records, key=lambda record: record.storage_id)[:RUNS_PER_TICK]
    return kept, kept[-1].storage_id if kept else after


def lineage_sensor(
    team: str,
    assets: Sequence[dg.AssetsDefinition],
    upstream: Sequence[dg.AssetKey],
    deployment: Deployment,
) -> dg.SensorDefinition:
    """The team's ``<team>_lineage`` sensor; the lineage settings are checked here, at load."""
    config = lineage_config(deployment)
    specs = [
        *(spec for assets_def in assets for spec in assets_def.specs),
        *(dg.AssetSpec(key) for key in upstream),
    ]

    @dg.sensor(
        name=f"{team}_lineage",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Emits OpenLineage events for this team's runs, from the event log.",
    )
    def lineage(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        from platform_core.lineage.emit import deliver, store_run

        if config.transport == "none":
            return dg.SkipReason("lineage.transport is none")
        state = json.loads(context.cursor) if context.cursor else {"after": 0, "running": []}
        records, after = _status_changes(context.instance, state["after"])
        run_ids = dict.fromkeys([*state["running"], *(r.event_log_entry.run_id for r in records)])
        running, emitted = [], 0
        for run_id in run_ids:
            run = context.instance.get_run_by_id(run_id)
            if run is None or _run_team(context.instance, run) != team:
                continue
            try:
                emitted += len(store_run(context.instance, run_id, specs, deployment))
            except Exception:
                context.log.exception(f"lineage: could not build the events of run {run_id}")
                continue
            if run.status not in FINISHED:
                running.append(run_id)
        delivery = deliver(context.instance, config)
        context.update_cursor(json.dumps({"after": after, "running": running}))
        return dg.SkipReason(
            f"{emitted} events of {len(run_ids)} runs rebuilt; {delivery.sent} sent, "
            f"{delivery.pending} pending"
        )

    return lineage
