"""The dataset API: the official ``delta-sharing`` client reads exactly what the policy grants.

The example graph is materialised with ``dataops materialize --all`` into a fresh instance, once
on the local target and once on S3 (the real moto server); ``dataops serve`` then runs on
127.0.0.1 on a free port, and each principal reads through a profile written by ``dataops tokens
create``. What the client returns is compared with the Parquet objects in storage.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path

import dagster as dg
import delta_sharing
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import schemathesis
from conftest import DATAOPS_VARIABLES, TEST_PSEUDONYM_KEY
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster_servers import dagster_servers
from hypothesis import HealthCheck, given, settings
from servers import _s3_env, free_port, s3_bucket
from sso import SSO_AUDIENCE, SSO_ISSUER, IdentityProvider

from config import load_deployment
from platform_core.api.oidc import OidcSettings, OidcVerifier
from platform_core.api.signing import Signer
from platform_core.api.tokens import TokenStore
from platform_core.storage_factory import storage_for

ROOT = Path(__file__).resolve().parent.parent
SIGNING_KEY = "test-only-signing-key-0123456789abcdef"
EU = {"DE", "FR", "NL", "ES", "IT"}
ANALYTICS_PRODUCTS = [
    "customer_reach",
    "customer_scores",
    "customer_value",
    "regional_daily_revenue",
    "revenue_by_country",
]


@dataclass(frozen=True)
class Served:
    """A running ``dataops serve`` over a materialised graph, and the environment it runs in."""

    env: dict[str, str]
    url: str
    folder: Path
    profiles: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def dataops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "platform_core.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def token(self, principal: str, *options: str) -> str:
        done = self.dataops("tokens", "create", "--principal", principal, *options)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 1
        return lines[0]

    def profile(self, principal: str) -> str:
        """The principal's profile file, made once by ``dataops tokens create --profile``."""
        if principal not in self.profiles:
            path = self.folder / f"{principal}.share"
            self.token(principal, "--profile", str(path), "--endpoint", self.url)
            self.profiles[principal] = str(path)
        return self.profiles[principal]

    def header(self, principal: str) -> dict[str, str]:
        """A bearer header for ``principal``, its token made in-process (faster than the CLI)."""
        if principal not in self.headers:
            store = TokenStore(self.folder / "home" / "api")
            token, _ = store.create(principal, timedelta(hours=1))
            self.headers[principal] = {"Authorization": f"Bearer {token}"}
        return self.headers[principal]

    def bearer(self, principal: str) -> dict[str, str]:
        token = json.loads(Path(self.profile(principal)).read_text())["bearerToken"]
        return {"Authorization": f"Bearer {token}"}

    @property
    def api(self) -> str:
        return f"{self.url}/delta-sharing"

    def product(self, key: str) -> pd.DataFrame:
        """A product as stored, unpartitioned or every partition concatenated."""
        with pytest.MonkeyPatch.context() as environment:
            for name, value in self.env.items():
                environment.setenv(name, value)
            storage = storage_for(load_deployment(self.env), check=False)
            prefix = f"dev/{key}"
            keys = [f"{prefix}.parquet"] if storage.exists(f"{prefix}.parquet") else []
            keys += [info.key for info in storage.list(f"{prefix}/")]
            return pd.concat([pd.read_parquet(io.BytesIO(storage.get(k))) for k in keys])


def _environment(target_env: dict[str, str], home: Path, jwks: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(DATAOPS_VARIABLES)}
    env.update(target_env)
    env.update(
        DAGSTER_HOME=str(home),
        DATAOPS_PSEUDONYM_KEY=TEST_PSEUDONYM_KEY,
        DATAOPS_API_SIGNING_KEY=SIGNING_KEY,
        DATAOPS__COMPUTE__EXECUTOR="in_process",
        DATAOPS_API_OIDC_ISSUER=SSO_ISSUER,
        DATAOPS_API_OIDC_AUDIENCE=SSO_AUDIENCE,
        DATAOPS_API_OIDC_JWKS=str(jwks),
    )
    return env


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[str]]:
    """The Dagster webserver on workspace.yaml (the asset graph the catalog's lineage reads),
    starting in the background while the first target materialises."""
    home = tmp_path_factory.mktemp("graph-home")
    with ExitStack() as stack, ThreadPoolExecutor(1) as starter:
        servers = dagster_servers(home, [ROOT / "workspace.yaml"])
        started = starter.submit(stack.enter_context, servers)
        yield started
        started.result()


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("sso") / "jwks.json")


@pytest.fixture(scope="module", params=["local", "aws"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    webserver: Future[str],
    sso: IdentityProvider,
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "local":
        target = {"DATAOPS_TARGET": "local", "DATAOPS_LOCAL_ROOT": str(folder / "storage")}
    else:
        target = _s3_env("aws", request.getfixturevalue("s3_server"), "eu-west-1")
    with s3_bucket(target) if request.param == "aws" else nullcontext():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        served = Served(_environment(target, folder / "home", sso.jwks), url, folder)
        done = served.dataops("materialize", "--all")
        assert done.returncode == 0, done.stdout + done.stderr
        served.env["DATAOPS_API_DAGSTER_URL"] = webserver.result()
        with (folder / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "platform_core.cli", "serve", "--port", str(port)],
                env=served.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(served, server)
            yield served
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_until_up(served: Served, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, (served.folder / "serve.log").read_text()
        try:
            requests.get(f"{served.api}/shares", timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    pytest.fail("dataops serve did not answer within 60 s")


def _read(profile: str, table: str) -> pd.DataFrame:
    return delta_sharing.load_as_pandas(f"{profile}#{table}")


def _same_rows(got: pd.DataFrame, expected: pd.DataFrame, by: str | list[str]) -> None:
    assert list(got.columns) == list(expected.columns)
    got = got.sort_values(by).reset_index(drop=True)
    expected = expected.sort_values(by).reset_index(drop=True)
    for column in expected.columns:
        assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


def _tables(profile: str) -> list[str]:
    client = delta_sharing.SharingClient(profile)
    return [f"{t.share}.{t.schema}.{t.name}" for t in client.list_all_tables()]


def test_partner_portal_reads_eu_orders_without_customer_ids(served: Served) -> None:
    profile = served.profile("partner_portal")
    assert _tables(profile) == ["partner_portal.sales.orders"]
    got = _read(profile, "partner_portal.sales.orders")
    orders = served.product("sales/orders")
    assert "customer_id" not in got.columns
    assert set(got["country"]) <= EU
    assert len(got) == orders["country"].isin(EU).sum() > 0
    _same_rows(got, served.product("sales/shares/partner_portal/orders"), "order_id")


def test_analytics_reads_pseudonymised_customers_and_full_orders(served: Served) -> None:
    profile = served.profile("analytics")
    tables = _tables(profile)
    assert "analytics.sales.customers" in tables
    assert "analytics.sales.orders" in tables
    assert "analytics.sales.raw_orders" not in tables
    customers = served.product("sales/customers")
    got = _read(profile, "analytics.sales.customers")
    assert not set(got["email"]) & set(customers["email"])
    _same_rows(got, served.product("sales/shares/analytics/customers"), "customer_id")
    _same_rows(_read(profile, "analytics.sales.orders"), served.product("sales/orders"), "order_id")


def test_finance_reads_the_analytics_products_partitions_included(served: Served) -> None:
    profile = served.profile("finance_bi")
    assert _tables(profile) == [f"finance_bi.analytics.{name}" for name in ANALYTICS_PRODUCTS]
    got = _read(profile, "finance_bi.analytics.regional_daily_revenue")
    stored = served.product("analytics/regional_daily_revenue")
    assert got["dataops_partition"].nunique() > 1
    _same_rows(got.drop(columns="dataops_partition"), stored, ["day", "channel"])
    _same_rows(
        _read(profile, "finance_bi.analytics.customer_value"),
        served.product("analytics/customer_value"),
        "customer_id",
    )


@pytest.mark.parametrize(
    "table",
    [
        "partner_portal.sales.customers",
        "partner_portal.sales.raw_orders",
        "partner_portal.analytics.revenue_by_country",
        "partner_portal.sales.shares__partner_portal__orders",
        "analytics.sales.orders",
    ],
)
def test_what_is_not_granted_is_refused_alike_whether_it_exists_or_not(
    served: Served, table: str
) -> None:
    profile = served.profile("partner_portal")
    with pytest.raises(requests.HTTPError) as error:
        _read(profile, table)
    assert error.value.response.status_code == 403
    share, schema, name = table.split(".")
    answers = [
        requests.post(
            f"{served.api}/shares/{share}/schemas/{schema}/tables/{name}/query",
            json={},
            headers=served.bearer("partner_portal"),
            timeout=30,
        )
        for share, schema, name in [(share, schema, name), (share, "nowhere", "nothing")]
    ]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json() == answers[1].json()


def _status(served: Served, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{served.api}/shares", headers=headers, timeout=30).status_code


def test_tokens_missing_bad_expired_or_revoked_are_refused(served: Served) -> None:
    assert _status(served, None) == 401
    assert _status(served, "dsh_not-a-token") == 401
    expired, _ = TokenStore(served.folder / "home" / "api").create("analytics", timedelta(0))
    assert _status(served, expired) == 401
    token = served.token("analytics", "--expires", "1h")
    assert _status(served, token) == 200
    assert served.dataops("tokens", "revoke", "--token", token).returncode == 0
    assert _status(served, token) == 401
    assert served.dataops("tokens", "revoke", "--token", token).returncode == 1
    store = TokenStore(served.folder / "home" / "api")
    sales = [store.create("sales", timedelta(hours=1))[0] for _ in range(2)]
    assert [_status(served, t) for t in sales] == [200, 200]
    assert served.dataops("tokens", "revoke", "--principal", "sales").returncode == 0
    assert [_status(served, t) for t in sales] == [401, 401]


def _file_urls(served: Served, principal: str, table: str, **body: object) -> list[dict]:
    share, schema, name = table.split(".")
    answer = requests.post(
        f"{served.api}/shares/{share}/schemas/{schema}/tables/{name}/query",
        json=body,
        headers=served.bearer(principal),
        timeout=30,
    )
    answer.raise_for_status()
    lines = [json.loads(line) for line in answer.text.splitlines()]
    return [line["file"] for line in lines if "file" in line]


def test_signed_urls_tampered_or_expired_are_refused(served: Served) -> None:
    (action,) = _file_urls(served, "finance_bi", "finance_bi.analytics.customer_value")
    assert requests.get(action["url"], timeout=30).status_code == 200
    base, _, reference = action["url"].rpartition("/")
    payload, _, mac = reference.partition(".")
    forged = Signer(b"another key").sign("dev/sales/customers.parquet", time.time() + 60)
    signer = Signer(SIGNING_KEY.encode())
    refused = [
        f"{base}/{payload[:-2]}AA.{mac}",
        f"{base}/{forged.partition('.')[0]}.{mac}",
        f"{base}/{forged}",
        f"{base}/{signer.sign('dev/analytics/customer_value.parquet', time.time() - 1)}",
    ]
    for url in refused:
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 403, url
        assert "customers" not in answer.text
    fresh = signer.sign("dev/analytics/customer_value.parquet", time.time() + 60)
    assert requests.get(f"{base}/{fresh}", timeout=30).status_code == 200


def test_file_urls_answer_head_and_byte_ranges_with_the_exact_size(served: Served) -> None:
    files = _file_urls(served, "finance_bi", "finance_bi.analytics.regional_daily_revenue")
    assert len(files) > 1
    assert len({f["id"] for f in files}) == len(files)
    version = requests.head(
        f"{served.api}/shares/finance_bi/schemas/analytics/tables/regional_daily_revenue/version",
        headers=served.bearer("finance_bi"),
        timeout=30,
    )
    assert version.headers["delta-table-version"] == str(len(files))
    for action in files[:2]:
        head = requests.head(action["url"], timeout=30)
        assert int(head.headers["Content-Length"]) == action["size"]
        whole = requests.get(action["url"], timeout=30).content
        assert len(whole) == action["size"] and whole[:4] == whole[-4:] == b"PAR1"
        first = requests.get(action["url"], headers={"Range": "bytes=0-3"}, timeout=30)
        assert first.status_code == 206 and first.content == b"PAR1"
        tail = requests.get(action["url"], headers={"Range": "bytes=-8"}, timeout=30)
        assert tail.status_code == 206 and tail.content == whole[-8:]
        middle = requests.get(action["url"], headers={"Range": "bytes=10-99"}, timeout=30)
        assert middle.content == whole[10:100]
        assert middle.headers["Content-Range"] == f"bytes 10-99/{action['size']}"
    again = _file_urls(served, "finance_bi", "finance_bi.analytics.regional_daily_revenue")
    assert [f["id"] for f in again] == [f["id"] for f in files]
    limited = _file_urls(
        served, "finance_bi", "finance_bi.analytics.regional_daily_revenue", limitHint=1
    )
    assert len(limited) == 1


def test_only_the_current_version_is_served(served: Served) -> None:
    profile = served.profile("finance_bi")
    head = requests.head(
        f"{served.api}/shares/finance_bi/schemas/analytics/tables/customer_value/version",
        headers=served.bearer("finance_bi"),
        timeout=30,
    )
    assert head.status_code == 200 and head.headers["delta-table-version"] == "1"
    since = requests.get(
        f"{served.api}/shares/finance_bi/schemas/analytics/tables/customer_value/version",
        params={"startingTimestamp": "2026-01-01T00:00:00Z"},
        headers=served.bearer("finance_bi"),
        timeout=30,
    )
    assert since.status_code == 400
    assert len(_read_version(profile, "finance_bi.analytics.customer_value", 1)) > 0
    for version in (0, 2):
        with pytest.raises(requests.HTTPError) as error:
            _read_version(profile, "finance_bi.analytics.customer_value", version)
        assert error.value.response.status_code == 400
        assert error.value.response.json()["errorCode"] == "INVALID_PARAMETER_VALUE"
    with pytest.raises(requests.HTTPError) as error:
        delta_sharing.load_as_pandas(
            f"{profile}#finance_bi.analytics.customer_value", timestamp="2026-01-01T00:00:00Z"
        )
    assert error.value.response.status_code == 400


def _read_version(profile: str, table: str, version: int) -> pd.DataFrame:
    return delta_sharing.load_as_pandas(f"{profile}#{table}", version=version)


def test_token_create_prints_only_the_token_and_writes_a_private_profile(served: Served) -> None:
    path = served.folder / "cli.share"
    token = served.token("finance_bi", "--expires", "2d", "--profile", str(path))
    profile = json.loads(path.read_text())
    assert profile["bearerToken"] == token
    assert profile["endpoint"] == "http://127.0.0.1:8080/delta-sharing"
    assert profile["shareCredentialsVersion"] == 1
    assert profile["expirationTime"].endswith("Z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    unknown = served.dataops("tokens", "create", "--principal", "mallory")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "'mallory' is not a principal" in unknown.stderr
    stored = (served.folder / "home" / "api" / "tokens.json").read_text()
    assert token not in stored


def _get(served: Served, path: str, principal: str | None = None, **params: object):
    headers = served.header(principal) if principal else {}
    return requests.get(f"{served.url}/api/v1{path}", params=params, headers=headers, timeout=60)


def _catalog(served: Served, principal: str, **params: object) -> dict[str, dict]:
    answer = _get(served, "/products", principal, **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(body["items"])
    return {item["key"]: item for item in body["items"]}


def test_the_catalog_lists_only_what_the_principal_may_read(served: Served) -> None:
    assert list(_catalog(served, "partner_portal")) == ["sales/orders"]
    finance = _catalog(served, "finance_bi")
    assert list(finance) == [f"analytics/{name}" for name in ANALYTICS_PRODUCTS]
    assert all(not item["masked"] for item in finance.values())
    analytics = _catalog(served, "analytics")
    assert "sales/customers" in analytics and "sales/raw_orders" not in analytics
    assert analytics["sales/customers"]["served_from"] == "sales/shares/analytics/customers"
    orders = _catalog(served, "sales")["sales/orders"]
    assert (orders["owner"], orders["classification"], orders["masked"]) == (
        "sales",
        "confidential",
        False,
    )
    assert orders["row_count"] == len(served.product("sales/orders"))
    assert orders["last_materialization"]["run_id"]
    refused = [
        _get(served, path, "partner_portal")
        for path in ["/products/sales/customers", "/products/nowhere/nothing"]
    ]
    assert [r.status_code for r in refused] == [404, 404]
    assert refused[0].json() == refused[1].json()
    assert _get(served, "/products").status_code == 401
    probes = [requests.get(f"{served.url}/{p}z", timeout=30).json() for p in ("health", "ready")]
    assert probes == [{"status": "ok"}, {"status": "ready"}]


def test_a_product_in_full_has_columns_lineage_across_teams_and_freshness(served: Served) -> None:
    masked = _get(served, "/products/sales/orders", "partner_portal").json()
    assert masked["masked"] and masked["served_from"] == "sales/shares/partner_portal/orders"
    names = [c["name"] for c in masked["columns"]]
    assert "country" in names and "customer_id" not in names
    full = _get(served, "/products/sales/orders", "analytics").json()
    assert "customer_id" in [c["name"] for c in full["columns"]]
    assert "analytics/revenue_by_country" in full["lineage"]["downstream"]
    assert full["lineage"]["upstream"] == [] and full["lineage"]["hidden_upstream"] == 1
    reach = _get(served, "/products/analytics/customer_reach", "finance_bi").json()
    assert reach["lineage"]["upstream"] == ["analytics/customer_value"]
    assert reach["lineage"]["hidden_upstream"] == 1
    across = _get(served, "/products/analytics/customer_reach", "analytics").json()["lineage"]
    assert across["upstream"] == ["analytics/customer_value", "sales/customers"]
    owner = _get(served, "/products/sales/customers", "sales").json()["lineage"]
    assert owner["downstream"] == ["analytics/customer_reach"]
    portal = _get(served, "/products/sales/orders", "partner_portal").json()["lineage"]
    assert portal["upstream"] == [] and portal["hidden_upstream"] == 1
    assert portal["downstream"] == [] and portal["hidden_downstream"] > 0
    revenue = _get(served, "/products/analytics/revenue_by_country", "finance_bi").json()
    assert revenue["description"].startswith("Orders and net revenue per country")
    assert revenue["tags"]["dataops/classification"] == "internal"
    assert revenue["freshness"]["status"] == "fresh"
    assert revenue["freshness"]["policy"]["failWindowSeconds"] == 86400
    assert reach["freshness"]["status"] == "no_policy"
    daily = _get(served, "/products/analytics/regional_daily_revenue", "finance_bi").json()
    assert daily["partitions"] == ["amer", "apac", "emea"]
    assert daily["row_count"] == len(served.product("analytics/regional_daily_revenue"))


def test_a_product_shows_its_personal_columns_and_residency(served: Served) -> None:
    owned = _get(served, "/products/sales/customers", "sales").json()
    assert owned["classification"] == "pii" and owned["column_classes"] == {"email": "pii"}
    email = next(c for c in owned["columns"] if c["name"] == "email")
    assert email["tags"]["dataops/classification"] == "pii"
    rules = {rule["rule"]: rule for rule in owned["residency"]}
    assert rules["sales-personal-data-in-eu"]["jurisdictions"] == ["eu"]
    assert rules["customer-directory-sovereign-in-prod"]["sovereign_only"] is True
    viewed = _get(served, "/products/sales/customers", "analytics").json()
    assert viewed["masked"] and viewed["column_classes"] == {}
    assert all("dataops/classification" not in c["tags"] for c in viewed["columns"])


def test_the_catalog_is_searched_by_name_team_tag_and_classification(served: Served) -> None:
    regional = _catalog(served, "finance_bi", q="Regional")
    assert list(regional) == ["analytics/regional_daily_revenue"]
    revenue = _catalog(served, "finance_bi", q="REVENUE")
    assert {"analytics/regional_daily_revenue", "analytics/revenue_by_country"} <= set(revenue)
    assert all("revenue" in f"{k} {e['description']}".lower() for k, e in revenue.items())
    assert set(_catalog(served, "analytics", team="sales")) == {
        "sales/customers",
        "sales/orders",
    }
    confidential = _catalog(served, "finance_bi", classification="confidential")
    assert set(confidential) == {"analytics/customer_scores", "analytics/customer_value"}
    tagged = _catalog(served, "finance_bi", tag="dataops/classification=internal")
    assert set(tagged) == {
        "analytics/customer_reach",
        "analytics/regional_daily_revenue",
        "analytics/revenue_by_country",
    }
    assert _catalog(served, "partner_portal", team="analytics") == {}


def _arrow(served: Served, principal: str, path: str, **params: object) -> pa.Table:
    answer = _get(served, path, principal, **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
    return pa.ipc.open_stream(answer.content).read_all()


def test_arrow_parquet_and_json_reads_return_the_stored_rows(served: Served) -> None:
    path = "/products/analytics/regional_daily_revenue/data"
    stored = served.product("analytics/regional_daily_revenue")
    table = _arrow(served, "finance_bi", path)
    assert table.column_names == ["day", "channel", "revenue", "dataops_partition"]
    _same_rows(table.to_pandas().drop(columns="dataops_partition"), stored, ["day", "channel"])
    emea = _arrow(served, "finance_bi", path, columns="revenue,dataops_partition", partition="emea")
    assert emea.column_names == ["revenue", "dataops_partition"]
    assert set(emea["dataops_partition"].to_pylist()) == {"emea"} and emea.num_rows > 0
    ranged = _arrow(served, "finance_bi", path, partition_from="apac", partition_to="emea")
    assert set(ranged["dataops_partition"].to_pylist()) == {"apac", "emea"}
    assert _arrow(served, "finance_bi", path, limit=5).num_rows == 5
    parquet = _get(served, path, "finance_bi", format="parquet", columns="day,revenue")
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    from_parquet = pq.read_table(pa.BufferReader(parquet.content))
    assert from_parquet.column_names == ["day", "revenue"]
    assert from_parquet["revenue"].to_pylist() == table["revenue"].to_pylist()
    rows, token, pages = [], None, 0
    while True:
        params = {"format": "json", "page_size": 40, **({"page_token": token} if token else {})}
        page = _get(served, path, "finance_bi", **params).json()
        rows += page["rows"]
        pages += 1
        token = page.get("next_page_token")
        if token is None:
            break
    assert pages == -(-len(stored) // 40)
    assert [r["revenue"] for r in rows] == table["revenue"].to_pylist()


def test_a_masked_grant_reads_the_share_view_never_the_product(served: Served) -> None:
    got = _arrow(served, "partner_portal", "/products/sales/orders/data").to_pandas()
    assert "customer_id" not in got.columns and set(got["country"]) <= EU
    _same_rows(got, served.product("sales/shares/partner_portal/orders"), "order_id")
    refused = [
        _get(served, f"/products/{key}/data", "partner_portal")
        for key in ("sales/raw_orders", "sales/shares__partner_portal__orders", "x/y")
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]


def test_bad_read_parameters_are_clear_errors(served: Served) -> None:
    path = "/products/analytics/customer_value/data"
    unknown = _get(served, path, "finance_bi", columns="revenue,secret")
    assert unknown.status_code == 400 and "secret" in unknown.json()["message"]
    partition = _get(served, path, "finance_bi", partition="emea")
    assert partition.status_code == 400 and "not partitioned" in partition.json()["message"]
    token = _get(served, path, "finance_bi", format="json", page_token="-1")
    assert token.status_code == 400
    assert _get(served, path, "finance_bi", format="csv").status_code == 422


def test_duckdb_reads_a_product_over_http(served: Served) -> None:
    token = served.header("finance_bi")["Authorization"].removeprefix("Bearer ")
    extensions = str(resources.files("duckdb_ext") / "extensions")
    config = {"extension_directory": extensions, "autoinstall_known_extensions": False}
    with duckdb.connect(config=config) as con:
        con.execute("LOAD httpfs")
        con.execute(f"SET force_download = true; CREATE SECRET (TYPE http, BEARER_TOKEN '{token}')")
        url = f"{served.url}/api/v1/products/analytics/customer_value/data?format=parquet"
        count, revenue = con.sql(
            f"SELECT count(*), round(sum(revenue), 2) FROM read_parquet('{url}')"
        ).fetchone()
    stored = served.product("analytics/customer_value")
    assert count == len(stored) > 0
    assert revenue == round(stored["revenue"].sum(), 2)


def _sso_status(served: Served, token: str, path: str = "/api/v1/products") -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{served.url}{path}", headers=headers, timeout=30).status_code


def test_sso_tokens_map_to_principals_and_bad_ones_are_refused(
    served: Served, sso: IdentityProvider
) -> None:
    good = sso.token("finance_bi")
    answer = requests.get(
        f"{served.url}/api/v1/products", headers={"Authorization": f"Bearer {good}"}, timeout=30
    )
    assert [i["key"] for i in answer.json()["items"]] == [
        f"analytics/{name}" for name in ANALYTICS_PRODUCTS
    ]
    assert _sso_status(served, good, "/delta-sharing/shares/finance_bi/all-tables") == 200
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [
        sso.token("finance_bi", lifetime=-120),
        sso.token("finance_bi", aud="another-api"),
        sso.token("finance_bi", iss="https://evil.example.test"),
        sso.token("finance_bi", key=other_key),
        sso.token("finance_bi", kid="unknown-key"),
        sso.token("finance_bi", exp=None),
        sso.token("mallory"),
        sso.token(None),
        good[:-4] + "AAAA",
        "not.a.jwt",
    ]
    assert [_sso_status(served, token) for token in refused] == [401] * len(refused)
    log = (served.folder / "serve.log").read_text()
    assert good not in log and "BEGIN" not in log


def test_openapi_matches_what_the_server_answers(served: Served) -> None:
    """Schemathesis: every catalog and read operation, bounded examples, no 5xx, valid bodies."""
    spec = requests.get(f"{served.url}/openapi.json", timeout=30).json()
    assert {"/api/v1/products", "/api/v1/products/{team}/{name}"} <= set(spec["paths"])
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = served.header("finance_bi")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5

    for operation in operations:

        @settings(
            max_examples=4,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        conforms()


def test_reads_and_refusals_through_the_api_are_in_the_verified_audit_trail(
    served: Served,
) -> None:
    assert _arrow(served, "partner_portal", "/products/sales/orders/data").num_rows > 0
    assert _get(served, "/products/sales/customers/data", "partner_portal").status_code == 404
    query = requests.post(
        f"{served.api}/shares/partner_portal/schemas/sales/tables/orders/query",
        json={},
        headers=served.header("partner_portal"),
        timeout=60,
    )
    assert query.status_code == 200, query.text
    deadline = time.monotonic() + 30
    while (verified := served.dataops("audit", "verify")).returncode != 0:
        assert time.monotonic() < deadline, verified.stdout + verified.stderr
        time.sleep(0.5)
    exported = served.dataops("audit", "export")
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    portal = [r for r in records if r["principal"] == "partner_portal"]
    view = "sales/shares/partner_portal/orders"
    read = [r for r in portal if r["action"] == "api_read_arrow" and r["product"] == view]
    assert read and read[-1]["rows"] > 0 and read[-1]["bytes"] > 0
    assert read[-1]["rule"] == "share view of sales/orders"
    assert any(r["action"] == "share_query" and r["product"] == view for r in portal)
    assert any(
        r["action"] == "authorize_read"
        and r["decision"] == "deny"
        and r["product"] == "sales/customers"
        for r in portal
    )


def test_the_catalog_shows_a_new_materialisation_at_once(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries are cached on the event log's highest record id: a new event is seen next call.

    Last of the module on purpose: it changes what the instance says of customer_reach.
    """
    before = _get(served, "/products/analytics/customer_reach", "finance_bi").json()
    assert before["row_count"] != 12345
    monkeypatch.setenv("DAGSTER_HOME", served.env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=["analytics", "customer_reach"], metadata={"dagster/row_count": 12345}
            )
        )
    after = _get(served, "/products/analytics/customer_reach", "finance_bi").json()
    assert after["row_count"] == 12345
    assert after["last_materialization"]["timestamp"] > before["last_materialization"]["timestamp"]


def test_sso_signing_keys_are_fetched_from_a_jwks_url(tmp_path: Path) -> None:
    """An identity provider's JWKS endpoint, served over HTTP on loopback by the test."""
    provider = IdentityProvider(tmp_path / "jwks.json")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
            verifier = OidcVerifier(OidcSettings(SSO_ISSUER, SSO_AUDIENCE, url))
            assert verifier.principal_for(provider.token("finance_bi")) == "finance_bi"
            foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            assert verifier.principal_for(provider.token("finance_bi", key=foreign)) is None
            assert verifier.principal_for(provider.token("finance_bi", kid="other")) is None
            assert verifier.principal_for(provider.token("finance_bi", lifetime=-600)) is None
        finally:
            server.shutdown()
