"""Governance, access: the policy holds on every read and write, tried as a hostile team would.

Runs on the local target and on an S3 object store (the real moto server). Each refusal ends in
a clear ``AccessDenied`` or a load that fails with the grant to add, and leaves nothing written.
"""

import hashlib
import hmac
import io
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from conftest import TEST_PSEUDONYM_KEY, write_policy

from assets.analytics import assets as analytics
from assets.sales import assets as sales
from config import ConfigError, load_deployment
from platform_core.data_product import data_product
from platform_core.definitions import Team
from platform_core.governance.access import AccessDenied
from platform_core.governance.guard import AccessGuard
from platform_core.governance.policy import POLICY_DIR, Mask
from platform_core.governance.pseudonym import Pseudonymiser
from platform_core.governance.share_views import apply_mask, masked, masked_schema
from platform_core.io_manager import DataProductIOManager, object_key
from platform_core.landing import LandingZone
from platform_core.materialize import materialize_all
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent
SALES = Team("sales", [sales.raw_orders, sales.orders, sales.customers], feeds=[sales.ORDERS_FEED])


@data_product(
    team="intruder", classification="internal", ins={"c": dg.AssetIn(key=["sales", "customers"])}
)
def stolen_contacts(c: pd.DataFrame) -> pd.DataFrame:
    return c


@data_product(team="intruder", classification="internal")
def harmless() -> pd.DataFrame:
    return pd.DataFrame({"a": [1]})


INTRUDER = Team(
    "intruder", [stolen_contacts, harmless], upstream=[dg.AssetKey(["sales", "customers"])]
)


@pytest.fixture(params=["local", "aws"])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    env = request.getfixturevalue(f"{request.param}_target_env")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_deployment(env)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """The real grants, plus a team 'intruder' with no grant at all."""
    return write_policy(
        tmp_path / "policy",
        [SALES, INTRUDER, Team("analytics", [analytics.revenue_by_country])],
        (POLICY_DIR / "access.yaml").read_text(),
    )


def guard(team: str, deployment, policy: Path) -> AccessGuard:
    return AccessGuard(team=team, environment=deployment.environment, policy_dir=str(policy))


def test_a_team_without_a_grant_cannot_load_a_pii_upstream(deployment, policy: Path) -> None:
    with pytest.raises(ConfigError) as error:
        INTRUDER.definitions(deployment, policy)
    message = str(error.value)
    assert "'intruder' may not read sales/customers (pii)" in message
    assert "Add a grant to policy/access.yaml" in message


@pytest.mark.parametrize(
    ("team", "product"),
    [
        ("intruder", "sales/customers"),
        ("intruder", "sales/orders"),
        ("analytics", "sales/raw_orders"),
    ],
)
def test_reading_a_product_without_a_grant_is_denied_by_the_io_manager(
    deployment, policy: Path, team: str, product: str
) -> None:
    storage = storage_for(deployment)
    key = object_key(deployment.environment, dg.AssetKey(product.split("/")))
    storage.put(key, b"not even read")
    manager = DataProductIOManager(
        storage=storage, environment=deployment.environment, guard=guard(team, deployment, policy)
    )
    with pytest.raises(AccessDenied, match=f"'{team}' may not read {product}"):
        manager.load_input(dg.build_input_context(asset_key=dg.AssetKey(product.split("/"))))


def test_the_raw_product_behind_a_masked_grant_is_never_served(deployment, policy: Path) -> None:
    raw = Team(
        "analytics", [analytics.revenue_by_country], upstream=[dg.AssetKey(["sales", "customers"])]
    )
    with pytest.raises(ConfigError, match="Read sales/shares/analytics/customers instead"):
        raw.definitions(deployment, policy)
    manager = DataProductIOManager(
        storage=storage_for(deployment),
        environment=deployment.environment,
        guard=guard("analytics", deployment, policy),
    )
    with pytest.raises(AccessDenied, match="masked"):
        manager.load_input(dg.build_input_context(asset_key=dg.AssetKey(["sales", "customers"])))


@pytest.mark.parametrize(
    ("product", "environment", "expected"),
    [
        ("sales/orders", None, "may not write sales/orders, a product of team 'sales'"),
        ("intruder/harmless", "prod", "may not write prod/intruder/harmless.parquet"),
    ],
)
def test_writes_stay_in_the_team_and_its_environment(
    deployment, policy: Path, product: str, environment: str | None, expected: str
) -> None:
    storage = storage_for(deployment)
    key = object_key(environment or deployment.environment, dg.AssetKey(product.split("/")))
    with pytest.raises(AccessDenied) as error:
        guard("intruder", deployment, policy).check_write(product, key)
    assert expected in str(error.value)
    assert not storage.exists(key)


def test_a_forged_write_through_the_io_manager_leaves_nothing(deployment, policy: Path) -> None:
    storage = storage_for(deployment)
    manager = DataProductIOManager(
        storage=storage,
        environment=deployment.environment,
        guard=guard("intruder", deployment, policy),
    )
    context = dg.build_output_context(asset_key=dg.AssetKey(["sales", "orders"]))
    with pytest.raises(AccessDenied):
        manager.handle_output(context, pd.DataFrame({"order_id": ["forged"]}))
    assert not storage.exists(object_key(deployment.environment, dg.AssetKey(["sales", "orders"])))


def test_another_teams_landing_feed_is_refused(deployment, policy: Path) -> None:
    storage = storage_for(deployment)
    owner = LandingZone(
        storage=storage,
        environment=deployment.environment,
        guard=guard("sales", deployment, policy),
    )
    landed = owner.land("sales", "orders", sales.ORDERS_FEED.sample(sales.ORDERS_FEED.seed_at[0]))
    thief = LandingZone(
        storage=storage,
        environment=deployment.environment,
        guard=guard("analytics", deployment, policy),
    )
    with pytest.raises(AccessDenied, match="may not read the landing feed sales/orders"):
        thief.read_frame(landed.key, sales.ORDERS_FEED)
    with pytest.raises(AccessDenied):
        list(thief.list("sales", "orders"))
    assert len(owner.read_frame(landed.key, sales.ORDERS_FEED)) > 0


def test_a_missing_pseudonymisation_key_fails_the_owner_at_load(
    deployment, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAOPS_PSEUDONYM_KEY")
    with pytest.raises(ConfigError, match="DATAOPS_PSEUDONYM_KEY is not set: team 'sales'"):
        SALES.definitions(load_deployment(), policy)


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (
            "{id: g, principal: analytics, products: [sales/ordrs], access: full}",
            "matches no data product",
        ),
        (
            "{id: g, principal: nobody, products: [sales/orders], access: full}",
            "unknown principal 'nobody'",
        ),
        ("{id: g, principal: analytics, products: [sales], access: full}", "is not 'team/name'"),
        ("{id: g, principal: analytics, products: [sales/orders], access: masked}", "needs a mask"),
        (
            "{id: g, principal: analytics, products: [sales/orders], access: sometimes}",
            "use full or masked",
        ),
    ],
)
def test_a_wrong_policy_fails_every_location_at_load(
    deployment, tmp_path: Path, grant: str, expected: str
) -> None:
    folder = write_policy(
        tmp_path / "bad",
        [SALES, Team("analytics", [analytics.revenue_by_country])],
        f"grants:\n  - {grant}\n",
    )
    with pytest.raises(ConfigError, match=expected):
        SALES.definitions(deployment, folder)


def test_contradictory_grants_are_refused(deployment, tmp_path: Path) -> None:
    folder = write_policy(
        tmp_path / "bad",
        [SALES, Team("analytics", [analytics.revenue_by_country])],
        "grants:\n"
        "  - {id: a, principal: analytics, products: [sales/orders], access: full}\n"
        "  - {id: b, principal: analytics, products: ['sales/*'], access: masked,\n"
        "     mask: {drop: [email]}}\n",
    )
    with pytest.raises(
        ConfigError, match="grant 'b' and grant 'a' give 'analytics' different access"
    ):
        SALES.definitions(deployment, folder)


def test_the_whole_graph_runs_with_the_policy_and_share_views_mask_as_granted(
    deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAOPS__COMPUTE__EXECUTOR", "in_process")
    with dg.instance_for_test() as instance:
        assert materialize_all(instance, echo=lambda line: None)
        storage = storage_for(deployment)

        def product(key: str) -> pd.DataFrame:
            return pd.read_parquet(
                io.BytesIO(
                    storage.get(object_key(deployment.environment, dg.AssetKey(key.split("/"))))
                )
            )

        customers, view = product("sales/customers"), product("sales/shares/analytics/customers")
        expected = [
            hmac.new(TEST_PSEUDONYM_KEY.encode(), email.encode(), hashlib.sha256).hexdigest()
            for email in customers["email"]
        ]
        assert view["email"].tolist() == expected
        assert not set(view["email"]) & set(customers["email"])
        assert view["customer_id"].tolist() == customers["customer_id"].tolist()

        partner = product("sales/shares/partner_portal/orders")
        assert "customer_id" not in partner.columns
        assert set(partner["country"]) <= {"DE", "FR", "NL", "ES", "IT"}
        orders = product("sales/orders")
        assert len(partner) == orders["country"].isin(["DE", "FR", "NL", "ES", "IT"]).sum()

        reach = product("analytics/customer_reach").set_index("country")["contacts"]
        joined = product("analytics/customer_value").merge(
            view[["customer_id", "email"]], on="customer_id"
        )
        assert reach.to_dict() == joined.groupby("country")["email"].nunique().to_dict()

        event = instance.get_latest_materialization_event(
            dg.AssetKey(["sales", "shares", "analytics", "customers"])
        )
        metadata = event.asset_materialization.metadata
        assert (
            metadata["dataops/pseudonym_key_id"].value
            == hashlib.sha256(TEST_PSEUDONYM_KEY.encode()).hexdigest()[:12]
        )
        assert TEST_PSEUDONYM_KEY not in str(metadata)


@pytest.mark.parametrize(
    ("principal", "product", "code", "shown"),
    [
        ("analytics", "sales/orders", 0, "allow (full)"),
        (
            "analytics",
            "sales/customers",
            0,
            "allow (masked, through the share view sales/shares/analytics/customers)",
        ),
        ("analytics", "sales/raw_orders", 4, "deny"),
        ("finance_bi", "analytics/customer_value", 0, "allow (full)"),
        ("partner_portal", "analytics/revenue_by_country", 4, "deny"),
        ("sales", "analytics/revenue_by_country", 0, "allow (default)"),
        ("nobody", "sales/orders", 2, ""),
        ("analytics", "sales/nothing", 2, ""),
    ],
)
def test_access_check_answers_with_its_exit_codes(
    principal: str, product: str, code: int, shown: str
) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dataops"),
            "access",
            "check",
            "--principal",
            principal,
            "--product",
            product,
            "--env",
            "prod",
        ],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert shown in result.stdout
    if code == 2:
        assert "unknown" in result.stderr


def test_the_product_manifest_is_up_to_date() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dataops"), "policy", "products", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_a_share_view_masks_every_batch_of_a_streamed_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view streams its source batch by batch; the result is the whole frame masked at once,
    with one schema even where a batch keeps no row."""
    monkeypatch.setenv("VIEW_KEY", TEST_PSEUDONYM_KEY)
    frame = pd.DataFrame(
        {
            "email": [f"user{i}@example.com" for i in range(9)],
            "region": ["eu", "us", "eu", "us", "us", "us", "eu", "eu", "us"],
            "amount": [float(i) for i in range(9)],
        }
    )
    frame.loc[2, "email"] = None
    source = pa.Table.from_pandas(frame, preserve_index=False)
    batches = source.to_batches(max_chunksize=3)
    assert len(batches) == 3 and "eu" not in batches[1].column("region").to_pylist()
    mask = Mask(pseudonymise=("email",), drop=("amount",), rows={"region": ("eu",)})
    pseudonymiser = Pseudonymiser("VIEW_KEY")

    view = masked(pa.RecordBatchReader.from_batches(source.schema, batches), mask, pseudonymiser)
    shown = view.read_all()

    assert shown.schema == masked_schema(source.schema, mask)
    assert shown.column_names == ["email", "region"]
    expected = apply_mask(frame, mask, pseudonymiser).reset_index(drop=True)
    pd.testing.assert_frame_equal(shown.to_pandas(), expected, check_dtype=False)
    assert shown.column("email").to_pylist()[1] is None
    assert not any("@" in value for value in shown.column("email").drop_null().to_pylist())
