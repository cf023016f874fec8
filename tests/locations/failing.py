"""A code location whose only data product fails, to prove failures reach the exit code."""

import pandas as pd

from platform_core.data_product import data_product
from platform_core.definitions import build_team_definitions


@data_product(team="broken", classification="internal")
def explodes() -> pd.DataFrame:
    raise RuntimeError("upstream system is down")


defs = build_team_definitions(team="broken", assets=[explodes])
