"""A code location whose only data product fails, to prove failures reach the exit code."""

import dagster as dg
import pandas as pd

from platform_core.data_product import data_product
from platform_core.definitions import Team


@data_product(team="broken", classification="internal")
def explodes() -> pd.DataFrame:
    raise RuntimeError("upstream system is down")


team = Team(name="broken", assets=[explodes])


@dg.definitions
def defs() -> dg.Definitions:
    return team.definitions()
