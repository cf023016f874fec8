"""A run's OpenLineage events, rebuilt from its Dagster event-log records.

One Dagster run gives a run-level OpenLineage run (START, then COMPLETE, FAIL or ABORT) and one
child run per step (``uuid5(run_id, step_key)``, linked by the parent facet). Times, versions and
inputs come only from records stored in the event log (an input is the upstream product's latest
materialisation before the step started), so building the same run twice gives the same events:
a receiver, or the outbox, can deduplicate them by (``runId``, ``eventType``, ``eventTime``).

Job names come from asset keys: a step that materialises ``sales/orders`` is job
``sales.orders``; a check step is ``sales.orders.<check>``; a run of the implicit asset job is
``materialize.<its asset keys joined by +>`` (a named job keeps its name). Jobs live in the
namespace ``dataops.<environment>.<team>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from platform_core.lineage import facets as f
from platform_core.lineage.naming import DatasetId, job_namespace, product_dataset

ASSET_JOB_PREFIX = "__ASSET_JOB"
RUN_TAGS = {
    "dagster/partition": "partition",
    "dagster/sensor_name": "sensor",
    "dagster/schedule_name": "schedule",
    "dagster/backfill": "backfill",
}
RUN_ENDS = {
    dg.DagsterEventType.RUN_SUCCESS: RunState.COMPLETE,
    dg.DagsterEventType.RUN_FAILURE: RunState.FAIL,
    dg.DagsterEventType.RUN_CANCELED: RunState.ABORT,
}
STEP_ENDS = {
    dg.DagsterEventType.STEP_SUCCESS: RunState.COMPLETE,
    dg.DagsterEventType.STEP_FAILURE: RunState.FAIL,
}


@dataclass(frozen=True)
class LineageContext:
    """What the event log does not hold: the deployment and the products' specs."""

    environment: str
    residency: f.Residency
    specs: Mapping[dg.AssetKey, dg.AssetSpec]


@dataclass
class _Step:
    key: str
    assets: list[dg.AssetKey] = field(default_factory=list)
    checks: list[dg.AssetCheckKey] = field(default_factory=list)
    start: dg.EventLogRecord | None = None
    end: dg.EventLogRecord | None = None
    materializations: list[dg.EventLogRecord] = field(default_factory=list)
    evaluations: list[dg.AssetCheckEvaluation] = field(default_factory=list)


@dataclass
class _RunLog:
    run: dg.DagsterRun
    start: dg.EventLogRecord | None = None
    end: dg.EventLogRecord | None = None
    steps: dict[str, _Step] = field(default_factory=dict)

    def step(self, key: str) -> _Step:
        return self.steps.setdefault(key, _Step(key))


def _read(instance: dg.DagsterInstance, run: dg.DagsterRun) -> _RunLog:
    log = _RunLog(run)
    for record in instance.get_records_for_run(run.run_id, ascending=True).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        kind, data = event.event_type, event.event_specific_data
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            log.step(event.step_key).assets.append(data.asset_key)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            log.step(event.step_key).checks.append(data.asset_check_key)
        elif kind == dg.DagsterEventType.RUN_START:
            log.start = record
        elif kind in RUN_ENDS:
            log.end = record
        elif kind == dg.DagsterEventType.STEP_START:
            step = log.step(event.step_key)
            step.start = step.start or record
        elif kind in STEP_ENDS:
            log.step(event.step_key).end = record
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            log.step(event.step_key).materializations.append(record)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            log.step(event.step_key).evaluations.append(data)
    return log


def _time(record: dg.EventLogRecord) -> str:
    return datetime.fromtimestamp(record.event_log_entry.timestamp, UTC).isoformat()


def _kind(record: dg.EventLogRecord) -> dg.DagsterEventType:
    return record.event_log_entry.dagster_event.event_type


def _dotted(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _error(record: dg.EventLogRecord) -> tuple[str, str | None]:
    """The innermost error message and the whole chain, as Dagster recorded them."""
    error = getattr(record.event_log_entry.dagster_event.event_specific_data, "error", None)
    if error is None:
        return (record.event_log_entry.message or "failed").strip(), None
    innermost = error
    while innermost.cause is not None:
        innermost = innermost.cause
    return innermost.message.strip(), error.to_string()


def step_run_id(run_id: str, step_key: str) -> str:
    """A step's OpenLineage run id: the same for the same step of the same run, always."""
    return str(uuid.uuid5(uuid.UUID(run_id), step_key))


class _RunEvents:
    """Builds the events of one run; caches dataset lookups in the event log."""

    def __init__(self, instance: dg.DagsterInstance, log: _RunLog, context: LineageContext):
        self.instance, self.log, self.context = instance, log, context
        self.assets = sorted(
            {key for step in log.steps.values() for key in step.assets}
            | set(log.run.asset_selection or ()),
            key=lambda key: key.path,
        )
        team = self.assets[0].path[0] if self.assets else None
        self.namespace = job_namespace(context.environment, team)
        self._upstream: dict[tuple[dg.AssetKey, float], dg.EventLogRecord | None] = {}

    def job_name(self) -> str:
        run = self.log.run
        if not run.job_name.startswith(ASSET_JOB_PREFIX) or not self.assets:
            return run.job_name
        return "materialize." + "+".join(map(_dotted, self.assets))

    def step_job_name(self, step: _Step) -> str:
        if step.assets:
            return "+".join(map(_dotted, step.assets))
        if step.checks:
            return "+".join(f"{_dotted(c.asset_key)}.{c.name}" for c in step.checks)
        return step.key

    def _spec(self, key: dg.AssetKey) -> dg.AssetSpec | None:
        return self.context.specs.get(key)

    def _materialized_before(self, key: dg.AssetKey, step: _Step) -> dg.EventLogRecord | None:
        """The upstream materialisation a step read: the latest one before the step started.

        By time, not storage id: SQLite instances number each run's records on their own.
        """
        started = step.start.event_log_entry.timestamp
        if (key, started) not in self._upstream:
            found = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, before_timestamp=started), limit=1
            ).records
            self._upstream[key, started] = found[0] if found else None
        return self._upstream[key, started]

    def _dataset(self, key: dg.AssetKey, record: dg.EventLogRecord) -> DatasetId:
        materialization = record.asset_materialization
        uri = materialization.metadata.get("dagster/uri")
        if uri is None:
            return DatasetId(
                job_namespace(self.context.environment, key.path[0]), "/".join(key.path)
            )
        return product_dataset(str(uri.value), materialization.partition)

    def _upstream_keys(self, step: _Step) -> list[dg.AssetKey]:
        own = set(step.assets)
        parents = [
            dep.asset_key
            for key in step.assets
            if (spec := self._spec(key)) is not None
            for dep in spec.deps
        ]
        parents += [check.asset_key for check in step.checks]
        return [key for key in dict.fromkeys(parents) if key not in own]

    def _inputs(self, step: _Step) -> tuple[list[InputDataset], dict[dg.AssetKey, DatasetId]]:
        if step.start is None:
            return [], {}
        inputs, named = [], {}
        for key in self._upstream_keys(step):
            record = self._materialized_before(key, step)
            if record is None:
                continue
            dataset = named[key] = self._dataset(key, record)
            checked = [e for e in step.evaluations if e.asset_key == key]
            inputs.append(
                InputDataset(
                    namespace=dataset.namespace,
                    name=dataset.name,
                    facets=f.without_empty(
                        {
                            "version": f.version_facet(record.run_id),
                            "dataSource": f.datasource_facet(dataset),
                        }
                    ),
                    inputFacets=f.without_empty(
                        {"dataQualityAssertions": f.assertions_facet(checked)}
                    ),
                )
            )
        return inputs, named

    def _column_inputs(
        self, step: _Step, lineage: dg.TableColumnLineage, named: dict[dg.AssetKey, DatasetId]
    ) -> dict[dg.AssetKey, DatasetId]:
        known = dict(named)
        for deps in lineage.deps_by_column.values():
            for dep in deps:
                if dep.asset_key in known or step.start is None:
                    continue
                record = self._materialized_before(dep.asset_key, step)
                if record is not None:
                    known[dep.asset_key] = self._dataset(dep.asset_key, record)
        return known

    def _output(
        self,
        step: _Step,
        record: dg.EventLogRecord,
        named: dict[dg.AssetKey, DatasetId],
        evaluations: Iterable[dg.AssetCheckEvaluation],
    ) -> OutputDataset:
        materialization = record.asset_materialization
        key = materialization.asset_key
        dataset = self._dataset(key, record)
        spec = self._spec(key)
        recorded = materialization.metadata
        declared = spec.metadata if spec else {}
        tags = f.column_tags(recorded, declared)
        lineage = f.metadata_value(recorded, f.COLUMN_LINEAGE) or f.metadata_value(
            declared, f.COLUMN_LINEAGE
        )
        column_lineage = (
            f.column_lineage_facet(lineage, self._column_inputs(step, lineage, named), tags)
            if isinstance(lineage, dg.TableColumnLineage)
            else None
        )
        facets = {
            "schema": f.schema_facet(recorded, declared),
            "dataSource": f.datasource_facet(dataset),
            "version": f.version_facet(record.run_id),
            "ownership": f.ownership_facet(spec.owners if spec else ()),
            "tags": f.tags_facet(spec.tags if spec else {}, tags),
            "documentation": f.documentation_facet(spec.description if spec else None),
            "columnLineage": column_lineage,
            "dataQualityAssertions": f.assertions_facet(
                [e for e in evaluations if e.asset_key == key]
            ),
            f.RESIDENCY_FACET: f.residency_facet(self.context.residency),
        }
        output_facets = {
            "outputStatistics": f.output_statistics_facet(recorded),
            "subset": f.partition_facet(materialization.partition)
            if materialization.partition
            else None,
        }
        return OutputDataset(
            namespace=dataset.namespace,
            name=dataset.name,
            facets=f.without_empty(facets),
            outputFacets=f.without_empty(output_facets),
        )

    def _run_facets(self) -> dict[str, Any]:
        tags = {
            "environment": self.context.environment,
            "target": self.context.residency.target,
        }
        tags |= {
            name: self.log.run.tags[tag]
            for tag, name in RUN_TAGS.items()
            if tag in self.log.run.tags
        }
        return f.without_empty({"tags": f.run_tags_facet(tags)})

    def _owners(self, keys: Iterable[dg.AssetKey]) -> list[str]:
        owners = [owner for key in keys if (spec := self._spec(key)) for owner in spec.owners]
        return list(dict.fromkeys(owners))

    def _step_job(self, step: _Step) -> Job:
        only = self._spec(step.assets[0]) if len(step.assets) == 1 else None
        facets = {
            "jobType": f.job_type_facet("ASSET" if step.assets else "ASSET_CHECK"),
            "ownership": f.job_ownership_facet(self._owners(step.assets)),
            "documentation": f.job_documentation_facet(only.description if only else None),
        }
        return Job(
            namespace=self.namespace, name=self.step_job_name(step), facets=f.without_empty(facets)
        )

    def _event(
        self,
        state: RunState,
        record: dg.EventLogRecord,
        run: Run,
        job: Job,
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
    ) -> RunEvent:
        return RunEvent(
            eventType=state,
            eventTime=_time(record),
            run=run,
            job=job,
            inputs=inputs or [],
            outputs=outputs or [],
            producer=f.PRODUCER,
        )

    def build(self) -> list[tuple[tuple[int, int], RunEvent]]:
        log, run_id = self.log, self.log.run.run_id
        job_name = self.job_name()
        run_job = Job(
            namespace=self.namespace,
            name=job_name,
            facets=f.without_empty(
                {
                    "jobType": f.job_type_facet("JOB"),
                    "ownership": f.job_ownership_facet(self._owners(self.assets)),
                }
            ),
        )
        run_facets = self._run_facets()
        events: list[tuple[tuple[int, int], RunEvent]] = []
        opening = log.start or log.end
        if opening is not None:
            run = Run(runId=run_id, facets=run_facets)
            events.append(
                ((opening.storage_id, 0), self._event(RunState.START, opening, run, run_job))
            )
        all_evaluations = [e for step in log.steps.values() for e in step.evaluations]
        run_inputs: dict[DatasetId, InputDataset] = {}
        run_outputs: list[OutputDataset] = []
        for step in sorted(log.steps.values(), key=lambda s: s.start.storage_id if s.start else 0):
            if step.start is None:
                continue
            inputs, named = self._inputs(step)
            step_run_facets = f.without_empty(
                {**run_facets, "parent": f.parent_facet(run_id, self.namespace, job_name)}
            )
            step_run = Run(runId=step_run_id(run_id, step.key), facets=step_run_facets)
            step_job = self._step_job(step)
            events.append(
                (
                    (step.start.storage_id, 0),
                    self._event(RunState.START, step.start, step_run, step_job, inputs),
                )
            )
            for input_ in inputs:
                run_inputs.setdefault(DatasetId(input_.namespace, input_.name), input_)
            outputs = [
                self._output(step, m, named, step.evaluations) for m in step.materializations
            ]
            run_outputs += [
                self._output(step, m, named, all_evaluations) for m in step.materializations
            ]
            ending = self._step_end(step)
            if ending is None:
                continue
            state, record, order = ending
            if state == RunState.FAIL:
                step_run = Run(
                    runId=step_run.runId,
                    facets={**step_run_facets, "errorMessage": f.error_facet(*_error(record))},
                )
            events.append(
                (
                    (record.storage_id, order),
                    self._event(state, record, step_run, step_job, inputs, outputs),
                )
            )
        if log.end is not None:
            state = RUN_ENDS[_kind(log.end)]
            facets = dict(run_facets)
            if state == RunState.FAIL:
                facets["errorMessage"] = f.error_facet(*_error(log.end))
            produced = {DatasetId(o.namespace, o.name) for o in run_outputs}
            inputs = [i for key, i in run_inputs.items() if key not in produced]
            events.append(
                (
                    (log.end.storage_id, 2),
                    self._event(
                        state,
                        log.end,
                        Run(runId=run_id, facets=facets),
                        run_job,
                        inputs,
                        run_outputs,
                    ),
                )
            )
        return events

    def _step_end(self, step: _Step) -> tuple[RunState, dg.EventLogRecord, int] | None:
        if step.end is not None:
            return STEP_ENDS[_kind(step.end)], step.end, 0
        if self.log.end is None:
            return None
        run_state = RUN_ENDS[_kind(self.log.end)]
        state = RunState.ABORT if run_state == RunState.ABORT else RunState.FAIL
        return state, self.log.end, 1


def build_run_events(
    instance: dg.DagsterInstance, run_id: str, context: LineageContext
) -> list[dict[str, Any]]:
    """Every OpenLineage event of one run so far, in the order they happened, as JSON objects."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"No run {run_id} on this Dagster instance.")
    built = _RunEvents(instance, _read(instance, run), context).build()
    return [Serde.to_dict(event) for _, event in sorted(built, key=lambda item: item[0])]


def specs_by_key(specs: Iterable[dg.AssetSpec]) -> dict[dg.AssetKey, dg.AssetSpec]:
    """Product specs by key; a product's own spec wins over another location's external one."""
    chosen: dict[dg.AssetKey, dg.AssetSpec] = {}
    for spec in specs:
        if spec.key not in chosen or (spec.owners and not chosen[spec.key].owners):
            chosen[spec.key] = spec
    return chosen
