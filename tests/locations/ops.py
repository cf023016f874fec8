"""A code location for the scheduler tests: one product that runs until the test opens its gate,
one that always fails.

The gate of a run is the file ``<$GATES_DIRECTORY>/<run id>``; its text becomes the product.
"""

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from platform_core.data_product import data_product
from platform_core.definitions import Team

GATES_VARIABLE = "GATES_DIRECTORY"
LONGEST_WAIT_SECONDS = 120


@data_product(team="ops", classification="internal")
def gated_report(context: dg.AssetExecutionContext) -> pd.DataFrame:
    gate = Path(os.environ[GATES_VARIABLE]) / context.run_id
    deadline = time.monotonic() + LONGEST_WAIT_SECONDS
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody opened {gate}")
        time.sleep(0.2)
    return pd.DataFrame({"released_by": [gate.read_text()]})


@data_product(team="ops", classification="internal")
def broken_report() -> pd.DataFrame:
    raise RuntimeError("upstream system is down")


team = Team(name="ops", assets=[gated_report, broken_report])


@dg.definitions
def defs() -> dg.Definitions:
    return team.definitions()
