"""Governance: who owns and may read what, enforced where the data is.

- ``ownership``: every data product is keyed under, owned by and classified for its team.
- ``policy``: the access policy file (grants, consumers, pseudonymisation), validated at load.
- ``products``: the committed manifest of every team's products, which the policy is checked
  against without importing another team's code.
- ``access``: one decision per (principal, product): allow full, allow through a share view, or
  deny, with the rule that decided.
- ``share_views``, ``pseudonym``: masked grants realised as products the owner materialises.
"""

from platform_core.governance.ownership import (
    CLASSIFICATION_TAG,
    MASKING_TAG,
    PERSONAL_DATA_TAG,
    Classification,
    require_ownership,
    team_owner,
)

__all__ = [
    "CLASSIFICATION_TAG",
    "MASKING_TAG",
    "PERSONAL_DATA_TAG",
    "Classification",
    "require_ownership",
    "team_owner",
]
