"""Every data product must be keyed under, owned by, and classified for its team."""

import dagster as dg
import pandas as pd
import pytest

from config import ConfigError
from platform_core.data_product import data_product
from platform_core.governance import CLASSIFICATION_TAG, require_ownership


def test_data_product_declares_everything_required() -> None:
    @data_product(team="sales", classification="pii")
    def leads() -> pd.DataFrame:
        return pd.DataFrame()

    spec = next(iter(leads.specs))
    assert spec.key == dg.AssetKey(["sales", "leads"])
    assert spec.owners == ["team:sales"]
    assert spec.tags[CLASSIFICATION_TAG] == "pii"
    assert spec.group_name == "sales"
    require_ownership("sales", [leads])


def test_unknown_classification_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match="'secretish' is not a valid Classification"):
        data_product(team="sales", classification="secretish")


@pytest.mark.parametrize(
    ("asset_kwargs", "message"),
    [
        (
            {"key_prefix": "sales", "tags": {CLASSIFICATION_TAG: "public"}},
            "Data product sales/plain declares no owner team. Add owners=['team:sales']",
        ),
        (
            {"key_prefix": "sales", "owners": ["team:sales"]},
            "Data product sales/plain has classification None. "
            "Set the tag 'dataops/classification'",
        ),
        (
            {"key_prefix": "sales", "owners": ["team:sales"], "tags": {CLASSIFICATION_TAG: "top"}},
            "has classification 'top'",
        ),
        (
            {"owners": ["team:sales"], "tags": {CLASSIFICATION_TAG: "public"}},
            "Data product plain is defined in team 'sales' but its key does not start with 'sales'",
        ),
    ],
)
def test_ungoverned_assets_fail_the_load(asset_kwargs: dict, message: str) -> None:
    @dg.asset(name="plain", **asset_kwargs)
    def plain() -> pd.DataFrame:
        return pd.DataFrame()

    with pytest.raises(ConfigError) as error:
        require_ownership("sales", [plain])
    assert message in str(error.value)


def test_the_landing_zone_name_is_reserved() -> None:
    @data_product(team="landing", classification="internal")
    def files() -> pd.DataFrame:
        return pd.DataFrame()

    with pytest.raises(ConfigError, match="Team name 'landing' is reserved"):
        require_ownership("landing", [files])
