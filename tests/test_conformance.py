"""The portability proof: the same asset graph, run unchanged on every target, gives the same data.

For each target, ``dataops materialize --all`` runs as a user would run it, configured only by
environment variables that point at the target's real local server. The test then reads every
data product back through the target's storage and compares a row-level content hash with the
reference run on the embedded local default, the asset lineage with the reference lineage, and
checks that the recorded URIs point into the target's own storage.

No Kubernetes API server runs here, so every target runs its steps and its Pipes tool in local
processes (``DATAOPS__COMPUTE__EXECUTOR=in_process``): what varies is storage, end to end. The
Kubernetes side is proven up to the API server in ``test_compute_kubernetes.py``.
"""

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import OWNER_SECRETS, deployment_environment
from lineage_checks import check_lineage

from config import load_deployment
from platform_core.audit.verify import verify as verify_audit
from platform_core.materialize import materialize_all, workspace_locations
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent
URI_SCHEMES = {
    "local": ("file://",),
    "onprem": ("s3://",),
    "aws": ("s3://",),
    "azure": ("abfs://", "abfss://", "https://", "http://"),
    "gcp": ("gs://",),
}


def content_hashes(env: dict[str, str]) -> dict[str, str]:
    """A hash per data product of its rows, independent of row order and object layout."""
    deployment = load_deployment(env)
    storage = storage_for(deployment)
    frames: dict[str, list[pd.DataFrame]] = {}
    for info in storage.list(f"{deployment.environment}/"):
        relative = info.key.removeprefix(f"{deployment.environment}/")
        product = relative.removesuffix(".parquet").split("/")[:2]
        if not info.key.endswith(".parquet"):
            continue
        table = pq.read_table(io.BytesIO(storage.get(info.key)))
        frames.setdefault("/".join(product), []).append(table.to_pandas())
    hashes = {}
    for product, parts in frames.items():
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)
        row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        hashes[product] = hashlib.sha256(row_hashes.tobytes()).hexdigest()
    return hashes


def lineage() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for location in workspace_locations():
        graph = location.load().resolve_asset_graph()
        for key in graph.materializable_asset_keys:
            parents = graph.get(key).parent_keys
            edges[key.to_user_string()] = {p.to_user_string() for p in parents}
    return edges


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Hashes and lineage of one in-process run on the embedded local default."""
    root = tmp_path_factory.mktemp("reference")
    env = {
        "DATAOPS_TARGET": "local",
        "DATAOPS_LOCAL_ROOT": str(root / "storage"),
        **OWNER_SECRETS,
    }
    with deployment_environment(env):
        with dg.DagsterInstance.ephemeral() as instance:
            assert materialize_all(instance, echo=lambda _: None)
        yield {"hashes": content_hashes(env), "lineage": lineage()}


def test_same_graph_same_data_on_every_target(
    use_target: dict[str, str], reference: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DAGSTER_HOME": str(home),
        "DATAOPS__COMPUTE__EXECUTOR": "in_process",
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dataops"), "materialize", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    assert content_hashes(use_target) == reference["hashes"]
    assert lineage() == reference["lineage"]

    target = use_target["DATAOPS_TARGET"]
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        keys = [dg.AssetKey.from_user_string(k) for k in reference["lineage"]]
        for key in keys:
            event = instance.get_latest_materialization_event(key)
            assert event is not None, f"{key.to_user_string()} was not materialised on {target}"
            uri = event.asset_materialization.metadata["dagster/uri"].value
            assert uri.startswith(URI_SCHEMES[target]), uri
            if target != "local":
                assert use_target["DATAOPS_BUCKET"] in uri
        check_lineage(home, use_target, instance)
        deployment = load_deployment(use_target)
        audit = verify_audit(storage_for(deployment), deployment.environment, instance)
        assert audit.intact and audit.chains >= len(keys) // 2, audit.problems
