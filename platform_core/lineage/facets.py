"""OpenLineage facets from what Dagster records: specs, materialisations and check evaluations.

Every standard facet is the OpenLineage client's own class; the platform's residency facet is the
one custom facet, a plain mapping that follows ``schemas/DataopsResidencyDatasetFacet.json``.
Builders return ``None`` when Dagster recorded nothing to describe, so no empty facet is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from openlineage.client.generated import (
    base_subset_dataset,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    ownership_dataset,
    ownership_job,
    parent_run,
    schema_dataset,
    tags_dataset,
    tags_run,
)

from platform_core.governance import CLASSIFICATION_TAG, MASKING_TAG
from platform_core.lineage.naming import DatasetId

SCHEMAS_DIR = Path(__file__).parent / "schemas"
RESIDENCY_FACET = "dataopsResidency"
RESIDENCY_SCHEMA_URL = (
    json.loads((SCHEMAS_DIR / "DataopsResidencyDatasetFacet.json").read_text())["$id"]
    + "#/$defs/DataopsResidencyDatasetFacet"
)
PRODUCER = "https://github.com/dataops-paas/dataops-paas/tree/main/platform_core/lineage"
TAG_SOURCE = "DAGSTER"
INTEGRATION = "DAGSTER"
COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
ROW_COUNT = "dagster/row_count"
BYTE_SIZE = "dataops/byte_size"
OWNER_TYPES = {"team": "team"}


@dataclass(frozen=True)
class Residency:
    """Where a deployment keeps its data: what the residency facet says about every dataset."""

    target: str
    environment: str
    storage_backend: str
    region: str | None = None
    jurisdiction: str | None = None
    sovereign: bool | None = None


def residency_facet(residency: Residency) -> dict[str, Any]:
    """The platform's residency and sovereignty facet; undeclared values are left out."""
    facet: dict[str, Any] = {
        "_producer": PRODUCER,
        "_schemaURL": RESIDENCY_SCHEMA_URL,
        "target": residency.target,
        "environment": residency.environment,
        "storageBackend": residency.storage_backend,
    }
    optional = {
        "region": residency.region,
        "jurisdiction": residency.jurisdiction,
        "sovereign": residency.sovereign,
    }
    facet.update({key: value for key, value in optional.items() if value is not None})
    return facet


def metadata_value(metadata: Mapping[str, Any], key: str) -> Any:
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def _columns(metadata: Mapping[str, Any]) -> list[dg.TableColumn]:
    schema = metadata_value(metadata, COLUMN_SCHEMA)
    return list(schema.columns) if isinstance(schema, dg.TableSchema) else []


def column_tags(
    recorded: Mapping[str, Any], declared: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Tags per column: those the product declares in its spec, then any recorded at runtime."""
    tags: dict[str, dict[str, str]] = {}
    for column in [*_columns(declared), *_columns(recorded)]:
        tags.setdefault(column.name, {}).update(column.tags)
    return tags


def schema_facet(
    recorded: Mapping[str, Any], declared: Mapping[str, Any]
) -> schema_dataset.SchemaDatasetFacet | None:
    """Columns as written (the runtime column schema), or as declared when none was recorded."""
    columns = _columns(recorded) or _columns(declared)
    if not columns:
        return None
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=column.name,
                type=column.type,
                description=column.description,
                ordinal_position=position,
            )
            for position, column in enumerate(columns, start=1)
        ],
        producer=PRODUCER,
    )


def tags_facet(
    spec_tags: Mapping[str, str], columns: Mapping[str, Mapping[str, str]]
) -> tags_dataset.TagsDatasetFacet | None:
    """The product's tags (its classification first) and every column-level tag."""
    ordered = sorted(spec_tags.items(), key=lambda item: (item[0] != CLASSIFICATION_TAG, item[0]))
    fields = [
        tags_dataset.TagsDatasetFacetFields(key=key, value=value, source=TAG_SOURCE)
        for key, value in ordered
    ]
    fields += [
        tags_dataset.TagsDatasetFacetFields(key=key, value=value, source=TAG_SOURCE, field=column)
        for column, column_tags_ in columns.items()
        for key, value in sorted(column_tags_.items())
    ]
    return tags_dataset.TagsDatasetFacet(tags=fields, producer=PRODUCER) if fields else None


def _owner(owner: str) -> tuple[str, str | None]:
    kind, _, _ = owner.partition(":")
    return owner, OWNER_TYPES.get(kind, "user" if "@" in owner else None)


def ownership_facet(owners: Iterable[str]) -> ownership_dataset.OwnershipDatasetFacet | None:
    entries = [ownership_dataset.Owner(name=n, type=t) for n, t in map(_owner, owners)]
    return (
        ownership_dataset.OwnershipDatasetFacet(owners=entries, producer=PRODUCER)
        if entries
        else None
    )


def job_ownership_facet(owners: Iterable[str]) -> ownership_job.OwnershipJobFacet | None:
    entries = [ownership_job.Owner(name=n, type=t) for n, t in map(_owner, owners)]
    return ownership_job.OwnershipJobFacet(owners=entries, producer=PRODUCER) if entries else None


def documentation_facet(
    description: str | None,
) -> documentation_dataset.DocumentationDatasetFacet | None:
    if not description:
        return None
    return documentation_dataset.DocumentationDatasetFacet(
        description=description, contentType="text/markdown", producer=PRODUCER
    )


def job_documentation_facet(
    description: str | None,
) -> documentation_job.DocumentationJobFacet | None:
    if not description:
        return None
    return documentation_job.DocumentationJobFacet(
        description=description, contentType="text/markdown", producer=PRODUCER
    )


def version_facet(run_id: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    """The dataset version: the run that materialised it (one write per product per run)."""
    return dataset_version_dataset.DatasetVersionDatasetFacet(
        datasetVersion=run_id, producer=PRODUCER
    )


def datasource_facet(dataset: DatasetId) -> datasource_dataset.DatasourceDatasetFacet:
    return datasource_dataset.DatasourceDatasetFacet(
        name=dataset.namespace, uri=dataset.namespace, producer=PRODUCER
    )


def output_statistics_facet(
    recorded: Mapping[str, Any],
) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet | None:
    rows, size = metadata_value(recorded, ROW_COUNT), metadata_value(recorded, BYTE_SIZE)
    if rows is None:
        return None
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=int(rows), size=None if size is None else int(size), fileCount=1, producer=PRODUCER
    )


def partition_facet(partition_key: str) -> base_subset_dataset.OutputSubsetOutputDatasetFacet:
    """The partition written, as the spec's subset facet: one partition of the product's path."""
    return base_subset_dataset.OutputSubsetOutputDatasetFacet(
        outputCondition=base_subset_dataset.PartitionSubsetCondition(
            partitions=[
                base_subset_dataset.Partition(
                    dimensions={"partition": partition_key}, identifier=partition_key
                )
            ]
        ),
        producer=PRODUCER,
    )


def column_lineage_facet(
    lineage: dg.TableColumnLineage,
    inputs: Mapping[dg.AssetKey, DatasetId],
    output_tags: Mapping[str, Mapping[str, str]],
) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
    """Column lineage as declared; a column tagged with ``dataops/masking`` is marked masking.

    Dependencies on products whose dataset is unknown (never materialised) are left out.
    """
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for column, deps in sorted(lineage.deps_by_column.items()):
        masking = output_tags.get(column, {}).get(MASKING_TAG)
        transformations = (
            [
                column_lineage_dataset.Transformation(
                    type="DIRECT", subtype="TRANSFORMATION", description=masking, masking=True
                )
            ]
            if masking
            else None
        )
        input_fields = [
            column_lineage_dataset.InputField(
                namespace=inputs[dep.asset_key].namespace,
                name=inputs[dep.asset_key].name,
                field=dep.column_name,
                transformations=transformations,
            )
            for dep in deps
            if dep.asset_key in inputs
        ]
        if input_fields:
            fields[column] = column_lineage_dataset.Fields(inputFields=input_fields)
    if not fields:
        return None
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def assertions_facet(
    evaluations: Iterable[dg.AssetCheckEvaluation],
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet | None:
    """One assertion per asset check evaluation: its name, verdict, severity and description."""
    assertions = [
        data_quality_assertions_dataset.Assertion(
            assertion=evaluation.check_name,
            success=evaluation.passed,
            severity=evaluation.severity.value.lower(),
            description=evaluation.description,
        )
        for evaluation in evaluations
    ]
    if not assertions:
        return None
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=assertions, producer=PRODUCER
    )


def error_facet(message: str, stack_trace: str | None) -> error_message_run.ErrorMessageRunFacet:
    return error_message_run.ErrorMessageRunFacet(
        message=message, programmingLanguage="python", stackTrace=stack_trace, producer=PRODUCER
    )


def job_type_facet(job_type: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration=INTEGRATION, jobType=job_type, producer=PRODUCER
    )


def run_tags_facet(tags: Mapping[str, str]) -> tags_run.TagsRunFacet | None:
    fields = [
        tags_run.TagsRunFacetFields(key=key, value=value, source=TAG_SOURCE)
        for key, value in sorted(tags.items())
    ]
    return tags_run.TagsRunFacet(tags=fields, producer=PRODUCER) if fields else None


def parent_facet(run_id: str, namespace: str, name: str) -> parent_run.ParentRunFacet:
    """Links a step to the Dagster run it belongs to (which is also the root)."""
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=run_id),
        job=parent_run.Job(namespace=namespace, name=name),
        root=parent_run.Root(
            run=parent_run.RootRun(runId=run_id),
            job=parent_run.RootJob(namespace=namespace, name=name),
        ),
        producer=PRODUCER,
    )


def without_empty(facets: Mapping[str, Any]) -> dict[str, Any]:
    return {key: facet for key, facet in facets.items() if facet is not None}
