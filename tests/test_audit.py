"""The audit trail: every read, write and access decision recorded where the data lives, and
``dataops audit verify`` catching a changed, removed, reordered or truncated record.

Runs on the local target and on an S3 object store (the real moto server). Tampering is done as
an attacker with the writer's own storage access would: rewriting, deleting and swapping stored
segments, even recomputing the whole hash chain; only the anchors in the Dagster event log are
out of reach.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import write_policy

from adapters.storage.base import StorageAdapter
from assets.analytics import assets as analytics
from assets.sales import assets as sales
from config import load_deployment
from platform_core.audit.record import FIELDS, GENESIS, audit_prefix, bare_uri, seal
from platform_core.audit.trail import AuditTrail
from platform_core.cli import main
from platform_core.dagster_home import prepare_dagster_home
from platform_core.definitions import Team
from platform_core.governance.access import AccessDenied
from platform_core.governance.guard import AccessGuard
from platform_core.governance.policy import POLICY_DIR
from platform_core.storage_factory import storage_for

SALES = Team("sales", [sales.raw_orders, sales.orders, sales.customers], feeds=[sales.ORDERS_FEED])
RECORDS = 5


@pytest.fixture(params=["local", "aws"])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    env = request.getfixturevalue(f"{request.param}_target_env")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    prepare_dagster_home()
    return load_deployment(env)


@pytest.fixture
def instance(deployment) -> dg.DagsterInstance:
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def storage(deployment) -> StorageAdapter:
    return storage_for(deployment)


def segments(storage: StorageAdapter, environment: str) -> list[str]:
    return [info.key for info in storage.list(audit_prefix(environment))]


def stored(storage: StorageAdapter, environment: str) -> list[dict]:
    return [
        json.loads(line)
        for key in segments(storage, environment)
        for line in storage.get(key).decode().splitlines()
    ]


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out


@pytest.fixture
def chain(deployment, storage: StorageAdapter, instance) -> list[str]:
    """One writer's chain of RECORDS records, one segment each; its segment keys."""
    trail = AuditTrail(storage=storage, environment=deployment.environment, principal="sales")
    trail.bind_writer("cli-test", instance)
    for n in range(RECORDS):
        trail.record("write", "sales/orders", uri=storage.uri(f"x/{n}"), rows=n, size=10 * n)
    return segments(storage, deployment.environment)


def test_an_intact_chain_verifies(chain: list[str], capsys) -> None:
    assert len(chain) == RECORDS
    assert verify(capsys) == (
        0,
        f"audit trail intact: 1 chains, {RECORDS} records "
        f"(environment 'dev' on target '{load_deployment().target}')\n",
    )


def test_a_changed_record_is_named(chain: list[str], storage: StorageAdapter, capsys) -> None:
    record = json.loads(storage.get(chain[2]))
    record["rows"] = 999_999
    storage.put(chain[2], (json.dumps(record) + "\n").encode())
    code, out = verify(capsys)
    assert code == 1
    assert "record #2: changed" in out and chain[2] in out


def test_a_deleted_record_is_named(chain: list[str], storage: StorageAdapter, capsys) -> None:
    storage.delete(chain[1])
    code, out = verify(capsys)
    assert code == 1
    assert "record #1: missing: record #1 was removed" in out


def test_reordered_records_are_named(chain: list[str], storage: StorageAdapter, capsys) -> None:
    second, third = storage.get(chain[1]), storage.get(chain[2])
    storage.put(chain[1], third)
    storage.put(chain[2], second)
    code, out = verify(capsys)
    assert code == 1
    assert "record #1: out of order" in out


def test_a_truncated_chain_is_named(chain: list[str], storage: StorageAdapter, capsys) -> None:
    storage.delete(chain[-1])
    code, out = verify(capsys)
    assert code == 1
    assert f"record #{RECORDS - 1}: missing: the chain ends after {RECORDS - 1} records" in out


def test_a_recomputed_chain_still_fails_its_anchors(
    chain: list[str], storage: StorageAdapter, capsys
) -> None:
    """The attacker rewrites a record and re-hashes everything after it: only anchors catch it."""
    prev = GENESIS
    for n, key in enumerate(chain):
        record = json.loads(storage.get(key))
        fields = {name: record[name] for name in FIELDS}
        if n == 1:
            fields["principal"] = "someone-else"
        forged = seal(fields, record["chain"], n, prev)
        prev = forged["hash"]
        storage.put(key, (json.dumps(forged) + "\n").encode())
    code, out = verify(capsys)
    assert code == 1
    assert "rewritten" in out and "not the head anchored in the Dagster event log" in out


def test_a_deleted_chain_and_an_unanchored_one_are_found(
    chain: list[str], storage: StorageAdapter, deployment, capsys
) -> None:
    for key in chain:
        storage.delete(key)
    forged = seal({"action": "read", "time": "2026-01-01T00:00:00+00:00"}, "forged-1", 0, GENESIS)
    storage.put(
        f"{audit_prefix(deployment.environment)}forged-1/0000000000.jsonl",
        (json.dumps(forged) + "\n").encode(),
    )
    code, out = verify(capsys)
    assert code == 1
    assert "record #0: missing: the chain ends after 0 records" in out
    assert "chain forged-1, record #0: the chain has no anchor" in out


def test_verify_and_export_configuration_errors_exit_2(
    chain: list[str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert main(["audit", "export", "--format", "parquet"]) == 2
    assert "--format parquet needs --output" in capsys.readouterr().err
    monkeypatch.setenv("DATAOPS_TARGET", "mars")
    assert main(["audit", "verify"]) == 2


def test_every_access_is_recorded_and_exported(
    deployment,
    storage: StorageAdapter,
    instance,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Landing, IO manager reads and writes, a share view, allow and deny: one record each."""
    monkeypatch.setenv("DATAOPS__COMPUTE__EXECUTOR", "in_process")
    policy = write_policy(
        tmp_path / "policy",
        [SALES, Team("analytics", [analytics.revenue_by_country])],
        (POLICY_DIR / "access.yaml").read_text(),
    )
    defs = SALES.definitions(deployment, policy)
    landing = defs.resources["landing"]
    landing.audit.bind_writer("cli-land", instance)
    landed = sales.ORDERS_FEED.land_sample(landing, sales.ORDERS_FEED.seed_at[0])
    instance.add_dynamic_partitions(sales.ORDERS_FEED.partitions.name, [landed.key])
    view = dg.AssetKey(["sales", "shares", "analytics", "customers"])
    everything = [*defs.assets]
    assert dg.materialize(
        everything,
        selection=[sales.raw_orders.key],
        partition_key=landed.key,
        resources=defs.resources,
        instance=instance,
    ).success
    assert dg.materialize(
        everything,
        selection=[sales.customers.key, view],
        resources=defs.resources,
        instance=instance,
    ).success
    thief = AccessGuard(
        team="analytics",
        environment=deployment.environment,
        policy_dir=str(policy),
        audit=AuditTrail(
            storage=storage, environment=deployment.environment, principal="analytics"
        ),
    )
    thief.audit.bind_writer("dataset-api", instance)
    with pytest.raises(AccessDenied):
        thief.check_read("sales/raw_orders")

    records = stored(storage, deployment.environment)
    seen = {(r["principal"], r["action"], r["product"], r["decision"]) for r in records}
    assert {
        ("sales", "land", "landing:sales/orders", "allow"),
        ("sales", "authorize_feed", "landing:sales/orders", "allow"),
        ("sales", "read_landed", "landing:sales/orders", "allow"),
        ("sales", "authorize_write", "sales/raw_orders", "allow"),
        ("sales", "write", "sales/raw_orders", "allow"),
        ("sales", "authorize_read", "sales/raw_orders", "allow"),
        ("sales", "read", "sales/raw_orders", "allow"),
        ("sales", "write", "sales/customers", "allow"),
        ("sales", "share", "sales/shares/analytics/customers", "allow"),
        ("analytics", "authorize_read", "sales/raw_orders", "deny"),
    } <= seen
    write = next(
        r for r in records if r["action"] == "write" and r["product"] == "sales/raw_orders"
    )
    assert write["partition"] == landed.key and write["rows"] > 0 and write["bytes"] > 0
    assert write["run_id"] and write["target"] == deployment.target
    assert write["uri"] == storage.uri(f"dev/sales/raw_orders/{landed.key}.parquet")
    share = next(r for r in records if r["action"] == "share")
    assert "grant" in share["rule"] and "'analytics'" in share["rule"]
    assert {r["environment"] for r in records} == {"dev"}
    assert verify(capsys)[0] == 0

    assert main(["audit", "export"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(records) and list(lines[0])[: len(FIELDS)] == list(FIELDS)
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    middle = lines[len(lines) // 2]["time"]
    assert main(["audit", "export", "--since", middle, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and all(row["time"] >= middle for row in rows) and len(rows) < len(lines)
    out = tmp_path / "audit.parquet"
    assert main(["audit", "export", "--format", "parquet", "--output", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == len(records)
    assert pd.api.types.is_integer_dtype(table.schema.field("rows").type.to_pandas_dtype())


def test_uris_in_records_carry_no_credentials() -> None:
    assert bare_uri("https://user:pw@acct.blob.core.windows.net/c/k.parquet?sig=SECRET#x") == (
        "https://acct.blob.core.windows.net/c/k.parquet"
    )
    assert bare_uri("file:///tmp/root/dev/a.parquet") == "file:///tmp/root/dev/a.parquet"
