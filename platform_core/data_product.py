"""``@data_product``: a Dagster asset with the ownership and classification the platform needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from platform_core.governance import CLASSIFICATION_TAG, Classification, team_owner
from platform_core.governance.classification import Declassification, column_metadata


def data_product(
    *,
    team: str,
    classification: Classification | str,
    tags: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    declassified: Declassification | None = None,
    metadata: Mapping[str, Any] | None = None,
    **asset_kwargs: Any,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``@dg.asset`` keyed under the team, owned by it, grouped by it and classified.

    ``columns`` classifies personal or sensitive columns (``{"email": "pii"}``), shown as tags on
    the column schema; ``declassified`` says how a product reading pii no longer holds it
    (``platform_core.governance.classification.declassified``). Every other ``dg.asset``
    argument (partitions, ins, deps, op_tags...) passes through.
    """
    return dg.asset(
        key_prefix=[team],
        group_name=team,
        owners=[team_owner(team)],
        tags={CLASSIFICATION_TAG: Classification(classification).value, **(tags or {})},
        metadata={**(metadata or {}), **column_metadata(columns or {}, declassified)},
        **asset_kwargs,
    )
