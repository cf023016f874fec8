"""Compliance, tried as a careless or hostile team would: classification, scanning, k, residency.

Runs on the local target and on S3 (the real moto server, which honours ``LocationConstraint`` and
answers ``GetBucketLocation`` truthfully), plus GCS on fake-gcs-server, which reports US-CENTRAL1
for every bucket whatever it was created with (asserted below): with an emulator endpoint the
declared region is trusted. Every refusal leaves nothing written.
"""

import re
from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from conftest import run_dataops, write_policy
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from servers import s3_bucket, unique_bucket

from config import ConfigError, load_deployment
from platform_core import io_manager
from platform_core.data_product import data_product
from platform_core.definitions import Team
from platform_core.governance.classification import declassified
from platform_core.governance.compliance import (
    ComplianceGuard,
    UndeclaredPersonalData,
    refuse_left_out,
)
from platform_core.governance.residency import ResidencyError, jurisdiction_of
from platform_core.io_manager import DataProductIOManager, object_key
from platform_core.storage_factory import storage_for

CONTACTS = pd.DataFrame(
    {
        "customer_id": [f"C{n:05d}" for n in range(12)],
        "email": [f"person{n}@example.com" for n in range(12)],
        "country": ["DE"] * 7 + ["FR"] * 3 + ["NL"] * 2,
    }
)
EU_RULE = """
residency:
  - id: crm-contacts-in-eu
    products: [crm/contacts]
    jurisdictions: [eu]
"""
SOVEREIGN_RULE = """
residency:
  - id: crm-contacts-sovereign
    products: [crm/contacts]
    sovereign_only: true
    environments: [dev]
"""


@data_product(team="crm", classification="pii", columns={"email": "pii"})
def contacts() -> pd.DataFrame:
    return CONTACTS


@data_product(team="crm", classification="internal")
def leaky_export() -> pd.DataFrame:
    """Classified internal, yet it carries the contact addresses under an innocent name."""
    return CONTACTS.rename(columns={"email": "ref"})


@data_product(team="crm", classification="internal")
def notes() -> pd.DataFrame:
    return pd.DataFrame({"order_id": ["O-20261101-0001", "O-20261101-0002"], "n": [1, 2]})


@data_product(team="crm", classification="internal", ins={"contacts": dg.AssetIn(key=contacts.key)})
def contact_countries(contacts: pd.DataFrame) -> pd.DataFrame:
    return contacts[["customer_id", "country"]]


@data_product(
    team="crm",
    classification="internal",
    ins={"contacts": dg.AssetIn(key=contacts.key)},
    declassified=declassified("dropped", columns=["email"], reason="ids and countries only"),
)
def contact_digest(contacts: pd.DataFrame) -> pd.DataFrame:
    return contacts[["customer_id", "country"]]


def per_country(k_suppressed: int | None):
    @data_product(
        team="crm",
        classification="public",
        ins={"contacts": dg.AssetIn(key=contacts.key)},
        declassified=declassified(
            "aggregated", k=5, count_column="customers", reason="counts per country"
        ),
    )
    def customers_per_country(contacts: pd.DataFrame) -> pd.DataFrame:
        counts = contacts.groupby("country").size().rename("customers").reset_index()
        return counts[counts["customers"] >= k_suppressed] if k_suppressed else counts

    return customers_per_country


def run(defs: dg.Definitions, *keys: dg.AssetKey) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=list(keys), raise_on_error=False)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
    )


def stored(deployment, team: str) -> list[str]:
    return [info.key for info in storage_for(deployment).list(f"{deployment.environment}/{team}/")]


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


@pytest.fixture(params=["local", "aws"])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    env = request.getfixturevalue(f"{request.param}_target_env")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_deployment(env)


@pytest.fixture
def local(local_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    for name, value in local_target_env.items():
        monkeypatch.setenv(name, value)
    return load_deployment(local_target_env)


@pytest.fixture
def us_east_1_env(s3_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """AWS whose bucket S3 places in us-east-1, though the settings claim jurisdiction eu."""
    env = {
        "DATAOPS_TARGET": "aws",
        "DATAOPS_BUCKET": unique_bucket(),
        "AWS_ENDPOINT_URL_S3": s3_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "DATAOPS__STORAGE__JURISDICTION": "eu",
    }
    with s3_bucket(env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def us_east_1(us_east_1_env: dict[str, str]):
    return load_deployment(us_east_1_env)


def test_personal_data_in_an_internal_product_is_refused_before_anything_is_written(
    deployment, tmp_path
) -> None:
    policy = write_policy(tmp_path / "policy", [Team("crm", [contacts, leaky_export])])
    defs = Team("crm", [contacts, leaky_export]).definitions(deployment, policy)
    result = run(defs, leaky_export.key)
    assert not result.success
    text = failure_text(result)
    assert "Refused to write crm/leaky_export" in text
    assert "column 'ref' holds email address values (e.g. pe" in text
    assert "person0@example.com" not in text
    assert stored(deployment, "crm") == []


def test_personal_data_late_in_a_stream_aborts_the_upload_and_keeps_the_previous_version(
    deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces are scanned while they are encoded: a hit in the last one still publishes nothing."""
    monkeypatch.setattr(io_manager, "ROW_GROUP_ROWS", 1000)
    storage = storage_for(deployment)
    manager = DataProductIOManager(
        storage=storage, environment=deployment.environment, compliance=ComplianceGuard()
    )
    key = dg.AssetKey(["crm", "streamed_export"])
    stored_key = object_key(deployment.environment, key)
    manager.handle_output(
        dg.build_output_context(asset_key=key), pa.table({"ref": [f"O-{n}" for n in range(3000)]})
    )
    before = storage.get(stored_key)
    leaked = pa.table({"ref": [f"O-{n}" for n in range(2999)] + ["someone@example.com"]})
    reader = pa.RecordBatchReader.from_batches(leaked.schema, leaked.to_batches(max_chunksize=500))
    with pytest.raises(UndeclaredPersonalData, match="Refused to write crm/streamed_export"):
        manager.handle_output(dg.build_output_context(asset_key=key), reader)
    assert storage.get(stored_key) == before
    assert [info.key for info in storage.list(f"{deployment.environment}/crm/")] == [stored_key]


def test_column_classes_are_on_the_schema_and_clean_products_pass_their_check(
    deployment, tmp_path
) -> None:
    team = Team("crm", [contacts, notes])
    defs = team.definitions(deployment, write_policy(tmp_path / "policy", [team]))
    declared = defs.resolve_assets_def(contacts.key).specs_by_key[contacts.key].metadata
    assert declared["dagster/column_schema"].columns[0].tags == {"dataops/classification": "pii"}
    result = run(defs, contacts.key, notes.key)
    assert result.success
    materialized = result.asset_materializations_for_node("crm__contacts")[0].metadata
    tags = {c.name: c.tags for c in materialized["dagster/column_schema"].schema.columns}
    assert tags == {"customer_id": {}, "email": {"dataops/classification": "pii"}, "country": {}}
    assert check_results(result) == {"no_undeclared_personal_data": True}


@pytest.mark.parametrize(
    ("product", "message"),
    [
        (contact_countries, "reads pii (crm/contacts) but is classified internal and declares no"),
        (
            data_product(
                team="crm",
                classification="internal",
                ins={"contacts": dg.AssetIn(key=contacts.key)},
                declassified=declassified("pseudonymised", columns=["name"], reason="r"),
                name="wrong_column",
            )(lambda contacts: contacts),
            "but not the pii columns ['email']",
        ),
        (
            data_product(
                team="crm",
                classification="public",
                ins={"contacts": dg.AssetIn(key=contacts.key)},
                declassified=declassified("aggregated", k=2, count_column="n", reason="counts"),
                name="tiny_groups",
            )(lambda contacts: contacts),
            "k=2, below the policy's minimum group size 5",
        ),
        (
            data_product(
                team="crm", classification="internal", columns={"phone": "pii"}, name="mislabel"
            )(lambda: None),
            "declares pii columns ['phone'] but is classified internal",
        ),
    ],
)
def test_reading_pii_without_declassifying_fails_the_load(local, tmp_path, product, message):
    team = Team("crm", [contacts, product])
    with pytest.raises(ConfigError, match=re.escape(message)):
        team.definitions(local, write_policy(tmp_path / "policy", [team]))


def test_pii_read_across_teams_and_share_views_follow_the_same_rule(local, tmp_path) -> None:
    @data_product(team="shop", classification="internal", ins={"c": dg.AssetIn(key=contacts.key)})
    def mailing(c: pd.DataFrame) -> pd.DataFrame:
        return c

    crm, shop = Team("crm", [contacts]), Team("shop", [mailing], upstream=[contacts.key])
    grant = "grants: [{id: shop-contacts, principal: shop, products: [crm/contacts], access: full}]"
    policy = write_policy(tmp_path / "full", [crm, shop], grant)
    with pytest.raises(ConfigError, match=r"shop/mailing reads pii \(crm/contacts\)"):
        shop.definitions(local, policy)
    rows_only = (
        "grants: [{id: shop-de, principal: shop, products: [crm/contacts], access: masked, "
        "classification: internal, mask: {rows: {country: [DE]}}}]"
    )
    with pytest.raises(ConfigError, match=r"mask leaves the pii columns \['email'\]"):
        crm.definitions(local, write_policy(tmp_path / "rows", [crm, shop], rows_only))
    digest = Team("crm", [contacts, contact_digest])
    assert digest.definitions(local, write_policy(tmp_path / "ok", [digest])) is not None


@pytest.mark.parametrize("suppress", [None, 5])
def test_public_aggregates_must_meet_the_minimum_group_size(local, tmp_path, suppress) -> None:
    aggregate = per_country(suppress)
    team = Team("crm", [contacts, aggregate])
    defs = team.definitions(local, write_policy(tmp_path / "policy", [team]))
    result = run(defs, contacts.key, aggregate.key)
    checks = check_results(result)
    assert checks["minimum_group_size"] is (suppress is not None)
    assert checks["no_undeclared_personal_data"] is True


def test_an_eu_product_on_a_us_east_1_bucket_is_left_out_and_never_written(
    us_east_1, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    team = Team("crm", [contacts, contact_digest, notes])
    policy = write_policy(tmp_path / "policy", [team], compliance=EU_RULE)
    defs = team.definitions(us_east_1, policy)
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert keys == {notes.key}
    warning = "crm/contacts may live only in jurisdictions ['eu'] (residency rule "
    warning += "'crm-contacts-in-eu'), and this deployment's storage is in region us-east-1"
    assert warning in caplog.text
    assert "crm/contact_digest reads crm/contacts, which is left out" in caplog.text
    with pytest.raises(ResidencyError, match="region us-east-1, jurisdiction us") as selected:
        refuse_left_out(defs, [contact_digest.key])
    assert "crm-contacts-in-eu" in str(selected.value)
    manager = defs.resources["io_manager"]
    with pytest.raises(ResidencyError, match="crm-contacts-in-eu"):
        manager.handle_output(dg.build_output_context(asset_key=contacts.key), CONTACTS)
    assert run(defs, notes.key).success
    assert stored(us_east_1, "crm") == [object_key("dev", notes.key)]


def test_selecting_a_left_out_product_fails_with_the_residency_error(
    us_east_1_env: dict[str, str], us_east_1, tmp_path
) -> None:
    env = {**us_east_1_env, "DATAOPS__COMPUTE__EXECUTOR": "in_process"}
    selected = run_dataops(["materialize", "--select", "sales/customers"], env, tmp_path)
    assert selected.returncode == 2, selected.stderr
    assert (
        "Residency: sales/customers may live only in jurisdictions ['eu'] (residency rule "
        "'sales-personal-data-in-eu'), and this deployment's storage is in region us-east-1"
    ) in selected.stderr
    assert list(storage_for(us_east_1).list("")) == []


def test_an_eu_bucket_keeps_eu_products_and_sovereign_only_needs_sovereign_storage(
    aws_target_env, local, tmp_path
) -> None:
    team = Team("crm", [contacts, notes])
    aws = load_deployment(aws_target_env)
    eu = write_policy(tmp_path / "eu", [team], compliance=EU_RULE)
    assert contacts.key in team.definitions(aws, eu).resolve_asset_graph().get_all_asset_keys()
    sovereign = write_policy(tmp_path / "sovereign", [team], compliance=SOVEREIGN_RULE)
    on_aws = team.definitions(aws, sovereign)
    assert contacts.key not in on_aws.resolve_asset_graph().get_all_asset_keys()
    with pytest.raises(ResidencyError, match="only on sovereign storage .* not sovereign"):
        refuse_left_out(on_aws, [contacts.key])
    assert (
        contacts.key
        in team.definitions(local, sovereign).resolve_asset_graph().get_all_asset_keys()
    )


def test_with_a_gcs_emulator_the_declared_region_is_trusted(gcp_target_env, tmp_path) -> None:
    client = gcs.Client(
        project="dataops-test",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=gcp_target_env["STORAGE_EMULATOR_HOST"]),
    )
    probe = client.create_bucket(unique_bucket(), location="EUROPE-WEST1")
    assert client.get_bucket(probe.name).location == "US-CENTRAL1"
    probe.delete()
    gcp = load_deployment(gcp_target_env)
    assert storage_for(gcp).location() is None
    team = Team("crm", [contacts])
    policy = write_policy(tmp_path / "policy", [team], compliance=EU_RULE)
    assert contacts.key in team.definitions(gcp, policy).resolve_asset_graph().get_all_asset_keys()


@pytest.mark.parametrize(
    ("region", "jurisdiction"),
    [
        ("eu-west-1", "eu"),
        ("EUROPE-WEST1", "eu"),
        ("EU", "eu"),
        ("eu-west-2", "uk"),
        ("europe-west6", "ch"),
        ("us-east-1", "us"),
        ("ap-southeast-1", None),
        (None, None),
    ],
)
def test_a_reported_region_decides_the_jurisdiction(region, jurisdiction) -> None:
    assert jurisdiction_of(region) == jurisdiction


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("residency: [{id: r, products: [crm/nothing], jurisdictions: [eu]}]", "matches no data"),
        ("residency: [{id: r, products: [crm/contacts]}]", "restricts nothing"),
        ("residency: [{id: r, products: [crm/contacts], region: eu}]", "must be a mapping of"),
        ("k_anonymity: {min_group_size: 1}", "must be >= 2"),
        ("retention: {}", "holds k_anonymity and residency only"),
    ],
)
def test_a_bad_compliance_policy_stops_the_load(local, tmp_path, text, message) -> None:
    team = Team("crm", [contacts])
    policy = write_policy(tmp_path / "policy", [team])
    (policy / "compliance.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        team.definitions(local, policy)
