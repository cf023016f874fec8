"""Share views: masked grants realised as products the owner's location materialises.

A consumer's step runs the consumer's code, so masking there would hand it the raw data. Instead
the owner's location gets, per masked grant and product, a data product keyed
``<owner>/shares/<consumer>/<name>``: the source with the grant's rows filtered, columns dropped
and columns pseudonymised, owned and classified by the owner, materialised after the source by
the platform (eagerly, by Dagster's automation; and by ``dataops materialize``) with no code from
the consumer. The consumer is granted the view, never the source. A view streams its source
batch by batch (``RecordBatchReader`` in and out), so it works for products larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import dagster as dg
import pandas as pd
import pyarrow as pa

from platform_core.governance.access import share_views
from platform_core.governance.ownership import CLASSIFICATION_TAG, team_owner
from platform_core.governance.policy import Grant, Mask, Policy
from platform_core.governance.products import Product
from platform_core.governance.pseudonym import Pseudonymiser

SHARE_OF_TAG = "dataops/share_of"
GRANTED_TO_TAG = "dataops/granted_to"


def masked_schema(schema: pa.Schema, mask: Mask) -> pa.Schema:
    """The columns a masked grant shows: dropped ones gone, pseudonymised ones text.

    The source's pandas metadata is not kept (it describes columns the view does not have).
    """
    _check_columns(schema.names, mask)
    return pa.schema(
        [
            pa.field(field.name, pa.string()) if field.name in mask.pseudonymise else field
            for field in schema
            if field.name not in mask.drop
        ]
    )


def masked(
    source: pa.RecordBatchReader, mask: Mask, pseudonymiser: Pseudonymiser | None
) -> pa.RecordBatchReader:
    """The source as the grant shows it, batch by batch: a view never holds the whole product."""
    schema = masked_schema(source.schema, mask)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in source:
            kept = apply_mask(batch.to_pandas(), mask, pseudonymiser)
            yield pa.RecordBatch.from_pandas(kept, schema=schema, preserve_index=False)

    return pa.RecordBatchReader.from_batches(schema, batches())


def apply_mask(
    frame: pd.DataFrame, mask: Mask, pseudonymiser: Pseudonymiser | None
) -> pd.DataFrame:
    """The frame a masked grant shows: rows filtered, columns dropped and pseudonymised."""
    _check_columns(frame.columns, mask)
    kept = frame
    for column, values in mask.rows.items():
        kept = kept[kept[column].isin(list(values))]
    kept = kept.drop(columns=list(mask.drop)).reset_index(drop=True)
    if mask.pseudonymise and pseudonymiser is None:
        raise ValueError("A mask that pseudonymises needs a Pseudonymiser.")
    for column in mask.pseudonymise:
        kept[column] = pseudonymiser.series(kept[column])
    return kept


def _check_columns(columns: Iterable[str], mask: Mask) -> None:
    named = {*mask.pseudonymise, *mask.drop, *mask.rows}
    missing = sorted(named - set(columns))
    if missing:
        raise dg.Failure(
            description=f"The mask names columns the product does not have: {missing}. "
            "Fix the grant in policy/access.yaml.",
            allow_retries=False,
        )


def _view(team: str, key: str, product: str, grant: Grant, key_env: str) -> dg.AssetsDefinition:
    consumer = key.split("/")[2]
    mask = grant.mask or Mask()

    @dg.asset(
        key=dg.AssetKey(key.split("/")),
        ins={"source": dg.AssetIn(key=dg.AssetKey(product.split("/")))},
        owners=[team_owner(team)],
        group_name=team,
        tags={CLASSIFICATION_TAG: grant.classification},
        metadata={
            SHARE_OF_TAG: product,
            GRANTED_TO_TAG: consumer,
            "dataops/grant": grant.id,
            **({"dataops/key_env": key_env} if mask.pseudonymise else {}),
        },
        automation_condition=dg.AutomationCondition.eager(),
        description=f"{product} as grant '{grant.id}' shows it to '{consumer}': "
        f"pseudonymised {list(mask.pseudonymise)}, dropped {list(mask.drop)}, "
        f"rows where {dict(mask.rows) or 'all'}.",
    )
    def share_view(source: pa.RecordBatchReader) -> dg.Output[pa.RecordBatchReader]:
        pseudonymiser = Pseudonymiser(key_env) if mask.pseudonymise else None
        metadata = {
            SHARE_OF_TAG: product,
            GRANTED_TO_TAG: consumer,
            "dataops/masked_columns": list(mask.pseudonymise),
            "dataops/dropped_columns": list(mask.drop),
        }
        if pseudonymiser is not None:
            metadata["dataops/pseudonym_key_id"] = pseudonymiser.key_id
        return dg.Output(masked(source, mask, pseudonymiser), metadata=metadata)

    return share_view


def share_view_assets(
    team: str, policy: Policy, manifest: Mapping[str, Product]
) -> list[dg.AssetsDefinition]:
    """The share views ``team`` owns under ``policy``."""
    return [
        _view(team, key, product, grant, policy.key_variable(grant.domain))
        for key, (product, grant) in share_views(policy, manifest).items()
        if product.split("/")[0] == team
    ]
