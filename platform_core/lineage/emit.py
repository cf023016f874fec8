"""Emit a run's lineage: rebuild its events, store them in the outbox, deliver what is pending.

Called after each run made by ``dataops materialize`` and by each location's lineage sensor in the
daemon. A lineage failure is logged, never raised: it cannot fail a run, and delivery to a catalog
that is down costs at most one timeout before the events wait in the outbox for the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from config import Deployment, load_deployment
from config.environment import snapshot
from platform_core.lineage.config import LINEAGE_DIR, LineageConfig, lineage_config, residency
from platform_core.lineage.outbox import Delivery, Outbox

log = logging.getLogger("dataops.lineage")


def lineage_dir(instance: dg.DagsterInstance) -> Path:
    """Where the outbox (and the default file transport) live: under the instance home."""
    return Path(instance.root_directory) / LINEAGE_DIR


def run_events(
    instance: dg.DagsterInstance, run_id: str, specs: Iterable[dg.AssetSpec], deployment: Deployment
) -> list[dict]:
    """A run's OpenLineage events so far, rebuilt from the event log."""
    from platform_core.lineage.events import LineageContext, build_run_events, specs_by_key
    from platform_core.lineage.facets import Residency

    context = LineageContext(
        environment=deployment.environment,
        residency=Residency(**residency(deployment)),
        specs=specs_by_key(specs),
    )
    return build_run_events(instance, run_id, context)


def store_run(
    instance: dg.DagsterInstance,
    run_id: str,
    specs: Iterable[dg.AssetSpec],
    deployment: Deployment,
    resend: bool = False,
) -> list[dict]:
    """Build a run's events and add them to the outbox (``resend``: even those sent before)."""
    events = run_events(instance, run_id, specs, deployment)
    Outbox(lineage_dir(instance)).add(run_id, events, resend=resend)
    return events


def deliver(instance: dg.DagsterInstance, config: LineageConfig) -> Delivery:
    """Send what waits in the outbox through the configured transport, oldest first."""
    from openlineage.client.transport import get_default_factory

    home = lineage_dir(instance)
    outbox = Outbox(home)
    if config.transport == "file":
        config.events_file(Path(instance.root_directory)).parent.mkdir(parents=True, exist_ok=True)
    transport = get_default_factory().create(
        config.transport_options(Path(instance.root_directory), snapshot())
    )
    try:
        delivery = outbox.deliver(transport.emit)
    finally:
        transport.close()
    if delivery.error:
        log.warning(
            "lineage: %d events wait in the outbox %s (%s); they are sent on the next emission",
            delivery.pending,
            outbox.path,
            delivery.error,
        )
    return delivery


def emit_run_lineage(
    instance: dg.DagsterInstance,
    run_id: str,
    specs: Iterable[dg.AssetSpec],
    deployment: Deployment | None = None,
) -> None:
    """Store and deliver one run's events; any failure is logged, never raised."""
    try:
        deployment = deployment or load_deployment()
        config = lineage_config(deployment)
        if config.transport == "none":
            return
        store_run(instance, run_id, specs, deployment)
        deliver(instance, config)
    except Exception:
        log.exception("lineage: could not emit the events of run %s", run_id)
