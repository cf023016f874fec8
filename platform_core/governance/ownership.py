"""Ownership and classification every data product must declare, checked when a location loads.

A data product names its owning team as a Dagster owner (``team:<team>``) and its
classification as the ``dataops/classification`` tag. Later governance rules (access policies,
residency, pseudonymisation) read these two facts, so a product without them is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import dagster as dg

from config import ConfigError
from platform_core.layout import RESERVED

CLASSIFICATION_TAG = "dataops/classification"
PERSONAL_DATA_TAG = "dataops/personal_data"  # column tag: the column holds personal data
MASKING_TAG = "dataops/masking"  # column tag: how the column was masked (e.g. pseudonymised)


class Classification(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    PII = "pii"


def team_owner(team: str) -> str:
    return f"team:{team}"


def require_ownership(team: str, assets: Iterable[dg.AssetsDefinition]) -> None:
    """Every asset of the team's location is keyed, owned and classified the platform's way."""
    allowed = ", ".join(c.value for c in Classification)
    if team in RESERVED:
        raise ConfigError(
            f"Team name '{team}' is reserved: '<environment>/{team}/' holds the platform's "
            f"{team} records. Name the team (its package under assets/) differently."
        )
    for assets_def in assets:
        for spec in assets_def.specs:
            name = spec.key.to_user_string()
            if spec.key.path[0] != team:
                raise ConfigError(
                    f"Data product {name} is defined in team '{team}' but its key does not start "
                    f"with '{team}'. Declare it with key_prefix='{team}' (data_product does this)."
                )
            if team_owner(team) not in spec.owners:
                raise ConfigError(
                    f"Data product {name} declares no owner team. "
                    f"Add owners=['{team_owner(team)}'] (data_product does this)."
                )
            classification = spec.tags.get(CLASSIFICATION_TAG)
            if classification not in {c.value for c in Classification}:
                raise ConfigError(
                    f"Data product {name} has classification {classification!r}. "
                    f"Set the tag '{CLASSIFICATION_TAG}' to one of: {allowed}."
                )
