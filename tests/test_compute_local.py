"""Local compute: the executor the settings choose, and the Pipes scoring tool really running."""

import io
import sys

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from adapters.compute.base import Tool
from adapters.compute.local import LocalCompute, LocalToolRunner
from assets.analytics.scoring import customer_scores
from assets.analytics.scoring_job.score import MODEL_VERSION
from config import ConfigError, load_deployment
from platform_core.compute_factory import compute_for
from platform_core.compute_hints import compute_hints
from platform_core.data_product import data_product
from platform_core.definitions import Team
from platform_core.storage_factory import storage_for

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c-001", "c-002", "c-003", "c-004"],
        "country": ["DE", "US", "JP", "FR"],
        "orders": [10, 2, 5, 1],
        "revenue": [1000.0, 50.0, 800.0, 0.0],
    }
)
EXPECTED_SCORES = pd.DataFrame(
    {
        "customer_id": ["c-001", "c-002", "c-003", "c-004"],
        "score": [100.0, 9.5, 71.0, 3.0],
        "tier": ["gold", "bronze", "gold", "bronze"],
    }
)


@data_product(team="analytics", classification="confidential")
def customer_value() -> pd.DataFrame:
    """Stands in for the analytics customer_value product: the frame the scoring tool reads."""
    return CUSTOMERS


@data_product(
    team="analytics",
    classification="internal",
    op_tags=compute_hints(cpu="4", memory="16Gi", gpu=2, spot=True),
)
def embeddings() -> pd.DataFrame:
    return pd.DataFrame({"x": [1]})


def test_default_is_multiprocess_with_the_configured_limit(local_target_env: dict) -> None:
    adapter = compute_for(load_deployment(local_target_env))
    executor = adapter.executor("analytics", [customer_value, customer_scores, embeddings])
    assert executor.name == "dataops_analytics_multiprocess"
    assert executor.config_schema.resolve_config({}).value["config"]["max_concurrent"] == 4


def test_in_process_executor_by_setting(local_target_env: dict) -> None:
    env = {**local_target_env, "DATAOPS__COMPUTE__EXECUTOR": "in_process"}
    adapter = compute_for(load_deployment(env))
    assert adapter.executor("analytics", [embeddings]) is dg.in_process_executor


def test_unknown_executor_names_the_setting(local_target_env: dict) -> None:
    env = {**local_target_env, "DATAOPS__COMPUTE__EXECUTOR": "threads"}
    with pytest.raises(ConfigError, match="executor is 'threads'.*DATAOPS__COMPUTE__EXECUTOR"):
        compute_for(load_deployment(env))


def test_scoring_tool_runs_as_its_own_process_and_reports_back(local_target_env: dict) -> None:
    deployment = load_deployment(local_target_env)
    compute = compute_for(deployment)
    assert isinstance(compute, LocalCompute)
    runner = compute.pipes_resource("analytics")
    assert runner == LocalToolRunner(python=sys.executable)
    defs = Team("analytics", [customer_value, customer_scores]).definitions(deployment)

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )

    assert result.success
    (materialization,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key == customer_scores.key
    ]
    metadata = materialization.materialization.metadata
    assert metadata["customers"].value == 4
    assert metadata["mean_score"].value == pytest.approx(45.88)
    assert metadata["tiers"].value == {"gold": 2, "bronze": 2}
    assert metadata["model_version"].value == MODEL_VERSION
    (check,) = [
        c
        for c in result.get_asset_check_evaluations()
        if c.asset_key == customer_scores.key and c.check_name == "scores_in_range"
    ]
    assert check.asset_key == customer_scores.key
    assert check.passed
    assert check.metadata["scored"].value == 4

    storage = storage_for(deployment)
    stored = pq.read_table(io.BytesIO(storage.get("dev/analytics/customer_scores.parquet")))
    pd.testing.assert_frame_equal(stored.to_pandas(), EXPECTED_SCORES)


def test_a_failing_tool_fails_the_step(local_target_env: dict, tmp_path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import sys\nsys.exit(3)\n")
    runner = LocalToolRunner(python=sys.executable)

    @dg.asset
    def broken(context: dg.AssetExecutionContext) -> None:
        runner.run(context, Tool(name="broken", script=script), extras={})

    result = dg.materialize([broken], raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "External execution process failed with code 3" in str(failure.step_failure_data.error)
