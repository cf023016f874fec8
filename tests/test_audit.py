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
import shutil
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
from platform_core.audit.record import FIELDS, GENESIS, audit_folder, audit_prefix, bare_uri, seal
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


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Dagster home with its SQLite storage created once; each test gets a copy."""
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        prepare_dagster_home()
        dg.DagsterInstance.get().dispose()
    return home


@pytest.fixture(params=["local", "aws"])
def deployment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_home
):
    env = {
        **request.getfixturevalue(f"{request.param}_target_env"),
        "DATAOPS__COMPUTE__EXECUTOR": "in_process",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    shutil.copytree(empty_home, tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
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


def write_chain(deployment, storage: StorageAdapter, instance, writer: str) -> list[str]:
    """One writer's chain of RECORDS records, one segment each; its segment keys."""
    trail = AuditTrail(storage=storage, environment=deployment.environment, principal="sales")
    trail.bind_writer(writer, instance)
    for n in range(RECORDS):
        trail.record("write", "sales/orders", uri=storage.uri(f"x/{n}"), rows=n, size=10 * n)
    trail.flush()
    prefix = audit_folder(deployment.environment, "sales")
    return [
        key for key in segments(storage, deployment.environment) if key.startswith(prefix + writer)
    ]


def rewrite(storage: StorageAdapter, key: str, records: list[dict]) -> None:
    storage.put(key, "".join(json.dumps(record) + "\n" for record in records).encode())


def test_each_kind_of_tampering_is_detected_and_named(
    deployment, storage: StorageAdapter, instance, capsys
) -> None:
    """One chain per attack, all in one trail; ``verify`` names the first bad record of each."""
    chains = {
        name: write_chain(deployment, storage, instance, name)
        for name in (
            "changed",
            "deleted",
            "intact",
            "recomputed",
            "reordered",
            "removed",
            "truncated",
        )
    }
    assert all(len(keys) == RECORDS for keys in chains.values())
    assert verify(capsys) == (
        0,
        f"audit trail intact: 7 chains, {7 * RECORDS} records "
        f"(environment 'dev' on target '{deployment.target}')\n",
    )

    changed = json.loads(storage.get(chains["changed"][2]))
    rewrite(storage, chains["changed"][2], [{**changed, "rows": 999_999}])
    storage.delete(chains["deleted"][1])
    second, third = (storage.get(key) for key in chains["reordered"][1:3])
    storage.put(chains["reordered"][1], third)
    storage.put(chains["reordered"][2], second)
    storage.delete(chains["truncated"][-1])
    for key in chains["removed"]:
        storage.delete(key)
    prev = GENESIS
    for n, key in enumerate(chains["recomputed"]):
        record = json.loads(storage.get(key))
        fields = {name: record[name] for name in FIELDS}
        if n == 1:
            fields["principal"] = "someone-else"
        forged = seal(fields, record["chain"], n, prev)
        prev = forged["hash"]
        rewrite(storage, key, [forged])
    unanchored = seal(
        {"action": "read", "time": "2026-01-01T00:00:00+00:00"}, "sales/forged-1", 0, GENESIS
    )
    rewrite(
        storage,
        f"{audit_folder(deployment.environment, 'sales')}forged-1/0000000000.jsonl",
        [unanchored],
    )

    code, out = verify(capsys)
    problems = {
        line.split(",")[0].split("/")[-1].split("-")[0]: line for line in out.splitlines()[:-1]
    }
    assert code == 1
    assert sorted(problems) == [
        "changed",
        "deleted",
        "forged",
        "recomputed",
        "removed",
        "reordered",
        "truncated",
    ]
    assert f"record #2: changed ({chains['changed'][2]} line 1)" in problems["changed"]
    assert "record #1: missing: record #1 was removed" in problems["deleted"]
    assert "record #1: out of order" in problems["reordered"]
    assert (
        f"record #{RECORDS - 1}: missing: the chain ends after {RECORDS - 1} records"
        in problems["truncated"]
    )
    assert "record #0: missing: the chain ends after 0 records" in problems["removed"]
    assert "not the head anchored in the Dagster event log" in problems["recomputed"]
    assert "chain sales/forged-1, record #0: the chain has no anchor" in problems["forged"]
    assert out.splitlines()[-1].endswith("is NOT intact: 7 chains broken")


def test_verify_and_export_configuration_errors_exit_2(
    deployment, monkeypatch: pytest.MonkeyPatch, capsys
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
) -> None:
    """Landing, IO manager reads and writes, a share view, allow and deny: one record each."""
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
    thief.audit.flush()
    landing.audit.flush()

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
