"""Customer scores, computed by the scoring tool that ships with its own runtime (Dagster Pipes)."""

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.analytics.assets import TEAM
from platform_core.compute_hints import compute_hints
from platform_core.data_product import data_product
from platform_core.pipes import Tool, ToolRunner

SCORING = Tool(name="scoring", script=Path(__file__).parent / "scoring_job" / "score.py")
CUSTOMER_SCORES = dg.AssetKey([TEAM, "customer_scores"])


@data_product(
    team=TEAM,
    classification="confidential",
    ins={"customer_value": dg.AssetIn(key=[TEAM, "customer_value"])},
    check_specs=[dg.AssetCheckSpec("scores_in_range", asset=CUSTOMER_SCORES)],
    op_tags=compute_hints(cpu="500m", memory="512Mi"),
)
def customer_scores(
    context: dg.AssetExecutionContext,
    customer_value: pd.DataFrame,
    pipes: dg.ResourceParam[ToolRunner],
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    """Per customer: a 0-100 value score and its tier (gold, silver, bronze)."""
    customers = json.loads(customer_value.to_json(orient="records"))
    invocation = pipes.run(context, SCORING, extras={"customers": customers})
    (message,) = invocation.get_custom_messages()
    reported = invocation.get_materialize_result()
    yield dg.Output(pd.DataFrame(message["scores"]), metadata=reported.metadata)
    yield from reported.check_results
