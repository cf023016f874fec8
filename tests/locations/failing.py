"""A code location where one data product fails: the failure must reach the exit code, what
depends on it must be skipped, and what does not must still run."""

import dagster as dg
import pandas as pd

from platform_core.data_product import data_product
from platform_core.definitions import Team

REGIONS = ("north", "south")


@data_product(team="broken", classification="internal")
def explodes() -> pd.DataFrame:
    raise RuntimeError("upstream system is down")


@data_product(team="broken", classification="internal")
def after_explodes(explodes: pd.DataFrame) -> pd.DataFrame:
    return explodes


@data_product(
    team="broken",
    classification="internal",
    partitions_def=dg.StaticPartitionsDefinition(list(REGIONS)),
)
def fine(context) -> pd.DataFrame:
    return pd.DataFrame({"region": [context.partition_key] * 3})


@data_product(team="broken", classification="internal")
def fine_total(fine: pd.DataFrame) -> pd.DataFrame:
    return fine.groupby("region", as_index=False).size()


team = Team(name="broken", assets=[explodes, after_explodes, fine, fine_total])


@dg.definitions
def defs() -> dg.Definitions:
    return team.definitions()
