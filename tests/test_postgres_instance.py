"""The production instance (deploy/instance/dagster.yaml) on a real PostgreSQL server.

Every data product is materialised through ``materialize_all`` on an instance configured from
that file, then read back through a second, freshly opened instance: runs, materialisations and
partitions come from PostgreSQL, not from the process that wrote them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from postgres_server import PostgresServer

from platform_core.materialize import materialize_all, workspace_locations

INSTANCE_FILE = Path(__file__).resolve().parent.parent / "deploy" / "instance" / "dagster.yaml"


@pytest.fixture
def postgres_home(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A DAGSTER_HOME holding the production instance file, pointed at the test server."""
    for name, value in postgres_server.dagster_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATAOPS_TARGET", "local")
    monkeypatch.setenv("DATAOPS_LOCAL_ROOT", str(tmp_path / "storage"))
    for module in [name for name in sys.modules if name.startswith("assets.")]:
        monkeypatch.delitem(sys.modules, module)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_FILE, home / "dagster.yaml")
    return home


def test_instance_file_selects_postgres_for_every_storage(postgres_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(postgres_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)


def test_materialize_all_on_postgres_and_read_back(
    postgres_home: Path, postgres_server: PostgresServer
) -> None:
    echoed: list[str] = []
    with dg.DagsterInstance.from_config(str(postgres_home)) as instance:
        assert materialize_all(instance, echo=echoed.append), "\n".join(echoed)
        expected = {}
        for location in workspace_locations():
            graph = location.load().resolve_asset_graph()
            for key in graph.materializable_asset_keys:
                partitions = graph.get(key).partitions_def
                expected[key] = (
                    set(partitions.get_partition_keys(dynamic_partitions_store=instance))
                    if partitions
                    else None
                )

    with dg.DagsterInstance.from_config(str(postgres_home)) as reader:
        runs = reader.get_runs()
        assert runs, "no run was recorded in PostgreSQL"
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        partitioned_runs = sum(len(keys) for keys in expected.values() if keys)
        assert len(runs) >= partitioned_runs
        for key, partition_keys in expected.items():
            event = reader.get_latest_materialization_event(key)
            assert event is not None, f"{key.to_user_string()} has no materialisation"
            assert event.run_id in {run.run_id for run in runs}
            if partition_keys:
                assert reader.get_materialized_partitions(key) == partition_keys
        url = reader.run_storage.postgres_url
        assert f"@{postgres_server.host}:{postgres_server.port}/{postgres_server.db}" in url
        assert url.startswith("postgresql+psycopg2://")
