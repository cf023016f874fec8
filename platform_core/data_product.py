"""``@data_product``: a Dagster asset with the ownership and classification the platform needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from platform_core.governance import CLASSIFICATION_TAG, Classification, team_owner


def data_product(
    *,
    team: str,
    classification: Classification | str,
    tags: Mapping[str, str] | None = None,
    **asset_kwargs: Any,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``@dg.asset`` keyed under the team, owned by it, grouped by it and classified.

    Every other ``dg.asset`` argument (partitions, ins, deps, op_tags...) passes through.
    """
    return dg.asset(
        key_prefix=[team],
        group_name=team,
        owners=[team_owner(team)],
        tags={CLASSIFICATION_TAG: Classification(classification).value, **(tags or {})},
        **asset_kwargs,
    )
