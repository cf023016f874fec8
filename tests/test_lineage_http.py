"""A catalog that goes down mid-job and comes back loses no lineage event and fails no run.

A real HTTP server on 127.0.0.1 stands in for a Marquez-compatible catalog (``POST
/api/v1/lineage`` with a bearer API key). While ``dataops materialize --all`` runs the example
graph it is stopped (connection refused), restarted answering 503, then healed. Every event the
event log yields must arrive at least once, in order per run, with the key from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dagster as dg
import pytest
from lineage_catalog import API_KEY, Catalog
from lineage_checks import runs_of
from servers import free_port

from config import load_deployment
from platform_core.lineage.emit import lineage_dir, run_events
from platform_core.lineage.outbox import Outbox, event_key
from platform_core.materialize import materialize_all, workspace_locations


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    server = Catalog(free_port())
    server.start("up")
    yield server
    server.stop()


def test_a_catalog_outage_loses_no_event_and_fails_no_run(
    catalog: Catalog,
    local_target_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        **local_target_env,
        "DATAOPS__COMPUTE__EXECUTOR": "in_process",
        "DATAOPS__LINEAGE__TRANSPORT": "http",
        "DATAOPS__LINEAGE__URL": f"http://127.0.0.1:{catalog.port}",
        "DATAOPS__LINEAGE__API_KEY_ENV": "TEST_LINEAGE_KEY",
        "TEST_LINEAGE_KEY": API_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runs = 0

    def outage(line: str) -> None:
        """Before a run: down at the 3rd, back but failing at the 7th, healed at the 10th."""
        nonlocal runs
        if ": " in line and "landed" not in line and not line.startswith(" "):
            runs += 1
            if runs == 3:
                catalog.stop()
            elif runs == 7:
                catalog.start("back, failing", failing=True)
            elif runs == 10:
                catalog.failing, catalog.phase = False, "healed"

    caplog.set_level(logging.WARNING, logger="dataops.lineage")
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize_all(instance, echo=outage)
        assert runs == 14
        specs = [s for loc in workspace_locations() for s in loc.load().resolve_all_asset_specs()]
        deployment = load_deployment()
        order = [r.dagster_run.run_id for r in instance.get_run_records(ascending=True)]
        expected = {run_id: run_events(instance, run_id, specs, deployment) for run_id in order}
        assert Outbox(lineage_dir(instance)).pending() == 0

    assert catalog.refused > 0
    assert "events wait in the outbox" in caplog.text
    assert API_KEY not in caplog.text
    received = [event for _, event in catalog.received]
    by_key = {event_key(event): event for event in received}
    wanted = {event_key(e): e for events in expected.values() for e in events}
    assert by_key == wanted
    for run_id, events in runs_of(received).items():
        first_arrivals = list(dict.fromkeys(event_key(e) for e in events))
        assert first_arrivals == [event_key(e) for e in expected[run_id]], run_id
    arrived_in = {event_key(e): phase for phase, e in reversed(catalog.received)}
    phases = [{arrived_in[event_key(e)] for e in expected[run_id]} for run_id in order]
    assert phases == [{"up"}] * 2 + [{"healed"}] * 12
