"""What the cloud adapters do beyond the shared contract: configuration errors at load, clear
permanent errors, retried transient faults and streamed large objects, against the real local
servers. The only fake is ``FaultProxy``, for faults no real server produces on demand
(a 503 or a dropped connection in front of a healthy server, a 403 from the GCS emulator).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from servers import AZURITE_ACCOUNT, AZURITE_KEY, Server, free_port, server_url, with_endpoint

from adapters.storage.azure_blob import arrow_options
from adapters.storage.base import ObjectNotFoundError, StorageAdapter, StorageError
from adapters.storage.object_store import redacted
from config import ConfigError, load_deployment
from platform_core.storage_factory import storage_for

CLOUD_TARGETS = ("onprem", "aws", "azure", "gcp")
BIG = 96 * 1024 * 1024
CLEARED = ("DATAOPS_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")


@pytest.fixture(params=CLOUD_TARGETS)
def cloud_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.getfixturevalue(f"{request.param}_target_env")


def load(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, check: bool = True
) -> StorageAdapter:
    """The adapter a code location would get with exactly ``env`` in its environment."""
    for name in [n for n in os.environ if n.startswith(CLEARED)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return storage_for(load_deployment(env), check=check)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# Configuration errors, at load


def test_missing_bucket_names_dataops_bucket(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in cloud_env.items() if k != "DATAOPS_BUCKET"}
    with pytest.raises(ConfigError, match="storage.bucket is not set.*DATAOPS_BUCKET"):
        load(env, monkeypatch)


@pytest.mark.parametrize("variable", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_onprem_names_the_missing_credential_variable(
    onprem_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    env = {k: v for k, v in onprem_target_env.items() if k != variable}
    with pytest.raises(ConfigError, match=f"Environment variable {variable} is not set"):
        load(env, monkeypatch)


def test_onprem_needs_an_endpoint(
    onprem_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in onprem_target_env.items() if k != "AWS_ENDPOINT_URL_S3"}
    with pytest.raises(ConfigError, match="No S3 endpoint.*AWS_ENDPOINT_URL_S3"):
        load(env, monkeypatch)


def test_azure_without_credentials_names_the_variables(
    azure_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in azure_target_env.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
    with pytest.raises(ConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        load(env, monkeypatch)
    env["AZURE_STORAGE_ACCOUNT_URL"] = "https://acct.blob.core.windows.net"
    with pytest.raises(
        ConfigError, match="none of AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or an identity"
    ):
        load(env, monkeypatch)


def test_azure_workload_identity_uses_the_default_credential_chain(
    azure_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What AKS workload identity injects into a pod selects ``DefaultAzureCredential``.

    No token is requested (that needs Entra ID), so the adapter is built without the check.
    """
    token = tmp_path / "azure-identity-token"
    token.write_text("projected-service-account-token")
    env = {k: v for k, v in azure_target_env.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
    env |= {
        "AZURE_STORAGE_ACCOUNT_URL": "https://acct.blob.core.windows.net",
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
        "AZURE_FEDERATED_TOKEN_FILE": str(token),
    }
    adapter = load(env, monkeypatch, check=False)
    assert isinstance(adapter._client().credential, DefaultAzureCredential)
    assert adapter.uri("dev/sales/orders.parquet").startswith("https://acct.blob.core.windows.net/")


def test_gcp_key_file_that_does_not_exist_is_named(
    gcp_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {k: v for k, v in gcp_target_env.items() if k != "STORAGE_EMULATOR_HOST"}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "missing-key.json")
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS=.*missing-key.json"):
        load(env, monkeypatch)


def test_nonexistent_bucket_fails_at_load(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**cloud_env, "DATAOPS_BUCKET": "dataops-no-such-bucket"}
    with pytest.raises(ConfigError) as caught:
        load(env, monkeypatch)
    message = str(caught.value)
    assert f"target '{env['DATAOPS_TARGET']}'" in message
    assert "'dataops-no-such-bucket' does not exist" in message
    assert "DATAOPS_BUCKET" in message


def test_unreachable_endpoint_fails_at_load_quickly(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="Cannot reach"):
        load(with_endpoint(cloud_env, closed_port_url()), monkeypatch)
    assert time.monotonic() - started < 10


# Permanent errors name target, bucket and key


def test_missing_object_names_target_bucket_and_key(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = load(cloud_env, monkeypatch)
    with pytest.raises(ObjectNotFoundError) as caught, open(os.devnull, "wb") as sink:
        storage.download("dev/sales/none.parquet", sink)
    message = str(caught.value)
    assert "dev/sales/none.parquet" in message
    assert cloud_env["DATAOPS_BUCKET"] in message
    assert f"target '{cloud_env['DATAOPS_TARGET']}'" in message


def test_write_to_missing_bucket_names_it(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = load({**cloud_env, "DATAOPS_BUCKET": "dataops-gone"}, monkeypatch, check=False)
    with pytest.raises(StorageError) as caught:
        storage.put("dev/sales/orders.parquet", b"x")
    message = str(caught.value)
    assert "'dataops-gone' does not exist" in message
    assert "dev/sales/orders.parquet" in message
    assert f"target '{cloud_env['DATAOPS_TARGET']}'" in message


def test_s3_bad_credentials_are_denied_by_name(
    aws_target_env: dict[str, str], s3_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = load(aws_target_env, monkeypatch)
    requests.post(f"{s3_server.url}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
    try:
        with pytest.raises(StorageError, match=r"Access denied \(InvalidAccessKeyId\)") as caught:
            storage.put("dev/k.bin", b"x")
    finally:
        requests.post(f"{s3_server.url}/moto-api/reset-auth", data=b"inf", timeout=5)
    assert f"s3://{aws_target_env['DATAOPS_BUCKET']}/dataops/dev/k.bin" in str(caught.value)
    assert "target 'aws'" in str(caught.value)


def test_azure_wrong_key_is_denied_at_load(
    azure_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = base64.b64encode(b"not the account key".ljust(64, b"!")).decode()
    env = {
        **azure_target_env,
        "AZURE_STORAGE_CONNECTION_STRING": azure_target_env[
            "AZURE_STORAGE_CONNECTION_STRING"
        ].replace(AZURITE_KEY, wrong),
    }
    denied = r"Access denied \((AuthenticationFailed|AuthorizationFailure)\)"
    with pytest.raises(ConfigError, match=denied) as caught:
        load(env, monkeypatch)
    assert azure_target_env["DATAOPS_BUCKET"] in str(caught.value)
    assert wrong not in str(caught.value)


# Other ways to reach an account


def test_azure_account_url_with_key_or_sas(
    azure_target_env: dict[str, str], azurite_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = azure_target_env["DATAOPS_BUCKET"]
    base = {"DATAOPS_TARGET": "azure", "DATAOPS_BUCKET": container}
    account_url = f"{azurite_server.url}/{AZURITE_ACCOUNT}"
    sas = generate_container_sas(
        AZURITE_ACCOUNT,
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=time.time() + 600,
    )
    for credential in ({"AZURE_STORAGE_KEY": AZURITE_KEY}, {"AZURE_STORAGE_SAS_TOKEN": sas}):
        env = {**base, "AZURE_STORAGE_ACCOUNT_URL": account_url, **credential}
        storage = load(env, monkeypatch)
        storage.put("via/url.txt", b"hello")
        assert storage.get("via/url.txt") == b"hello"
        assert storage.uri("via/url.txt") == f"{account_url}/{container}/dataops/via/url.txt"
        assert storage.open_input("via/url.txt", whole=True).read() == b"hello"
        native = arrow_options(account_url)
        if "AZURE_STORAGE_KEY" in credential:
            assert native is not None and native["account_key"] == AZURITE_KEY
            assert native["blob_storage_authority"] == azurite_server.url.split("://")[1]
        else:
            assert native is None, "a SAS token reads through the SDK"


def test_arrow_client_messages_lose_their_signatures() -> None:
    """What pyarrow 26 said when it put a SAS token into the path (seen on Azurite)."""
    said = (
        "GetProperties failed for 'http://127.0.0.1:1/devstoreaccount1/se=1796125468.66&sp=rwdl"
        "&sv=2026-10-06&sr=c&sig=YAO/8BC%2Baaokk%3D/c/x'. Azure Error: [OutOfRangeInput] 400"
    )
    assert "YAO" not in redacted(said) and "8BC" not in redacted(said)
    assert "OutOfRangeInput" in redacted(said)
    assert "secret" not in redacted("GET https://a.blob.core.windows.net/c/x?sv=1&sig=secret")


def test_aws_assumes_the_configured_role(
    aws_target_env: dict[str, str], s3_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **aws_target_env,
        "AWS_ENDPOINT_URL_STS": s3_server.url,
        "DATAOPS__STORAGE__ROLE_ARN": "arn:aws:iam::123456789012:role/dataops-writer",
    }
    storage = load(env, monkeypatch)
    storage.put("role/obj", b"as the role")
    assert storage.get("role/obj") == b"as the role"
    credentials = storage._session().get_credentials().get_frozen_credentials()
    assert credentials.access_key != env["AWS_ACCESS_KEY_ID"]
    assert credentials.token


def test_uris_name_the_target_storage(
    cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = load(cloud_env, monkeypatch)
    bucket = cloud_env["DATAOPS_BUCKET"]
    expected = {
        "onprem": f"s3://{bucket}/dataops/dev/a.parquet",
        "aws": f"s3://{bucket}/dataops/dev/a.parquet",
        "gcp": f"gs://{bucket}/dataops/dev/a.parquet",
        "azure": f"/{AZURITE_ACCOUNT}/{bucket}/dataops/dev/a.parquet",
    }[cloud_env["DATAOPS_TARGET"]]
    assert storage.uri("dev/a.parquet").endswith(expected)


# Transient faults are retried


class FaultProxy:
    """Forwards HTTP to a real server, after first answering queued faults: '503' or 'reset'."""

    def __init__(self, upstream: str, status_for_all: int | None = None) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.faults: list[str] = []
        self.served: list[str] = []
        self.status_for_all = status_for_all
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def inject(self, *faults: str) -> None:
        self.faults.extend(faults)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                body = self._body()
                fault = proxy.faults.pop(0) if proxy.faults else None
                if fault == "reset":
                    proxy.served.append(fault)
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    return
                if fault == "503" or proxy.status_for_all:
                    proxy.served.append(fault or str(proxy.status_for_all))
                    self._reply(fault and 503 or int(proxy.status_for_all or 0), [], b"")
                    return
                proxy.served.append("forwarded")
                skip = {"transfer-encoding", "connection", "content-length"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
                upstream.close()
                self._reply(response.status, kept, data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

        return Handler


@pytest.fixture
def proxy(cloud_env: dict[str, str]) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(server_url(cloud_env))
    yield fault_proxy
    fault_proxy.close()


def test_transient_faults_are_retried(
    cloud_env: dict[str, str], proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = load(with_endpoint(cloud_env, proxy.url), monkeypatch)
    proxy.inject("503", "reset")
    storage.put("retry/obj.bin", b"survived")
    proxy.inject("reset", "503")
    assert storage.get("retry/obj.bin") == b"survived"
    proxy.inject("503")
    assert [i.key for i in storage.list("retry/")] == ["retry/obj.bin"]
    assert proxy.served.count("503") == 3
    assert proxy.served.count("reset") == 2


def test_gcs_forbidden_names_bucket_key_and_credentials(
    gcp_target_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forbidding = FaultProxy(gcp_target_env["STORAGE_EMULATOR_HOST"], status_for_all=403)
    try:
        storage = load(with_endpoint(gcp_target_env, forbidding.url), monkeypatch, check=False)
        with pytest.raises(StorageError, match=r"Access denied \(403\)") as caught:
            storage.stat("dev/secret.parquet")
    finally:
        forbidding.close()
    assert f"gs://{gcp_target_env['DATAOPS_BUCKET']}/dataops/dev/secret.parquet" in str(
        caught.value
    )
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)


# Large objects stream


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for n in range(BIG // len(block)):
            out.write(bytes([n]) + block[1:])
    return path


def test_large_object_streams_in_parts(
    cloud_env: dict[str, str], big_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of 8 MiB (GCS: chunks, set to 8 MiB here from its 100 MiB default) go up and come
    back without the object ever being held whole in memory."""
    small_chunks = (
        {"DATAOPS__STORAGE__CHUNK_MB": "8"} if cloud_env["DATAOPS_TARGET"] == "gcp" else {}
    )
    storage = load({**cloud_env, **small_chunks}, monkeypatch)
    copy = tmp_path / "copy.bin"
    tracemalloc.start()
    try:
        with big_file.open("rb") as source:
            info = storage.put("big/object.bin", source)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with copy.open("wb") as sink:
            storage.download("big/object.bin", sink)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == BIG
    assert digest(copy) == digest(big_file)
    assert upload_peak < BIG * 0.75, f"upload held {upload_peak / 2**20:.0f} MiB"
    assert download_peak < BIG * 0.75, f"download held {download_peak / 2**20:.0f} MiB"
    assert_assembled_from_parts(cloud_env, "dataops/big/object.bin")


def assert_assembled_from_parts(env: dict[str, str], name: str) -> None:
    """The server's own record of a multipart (S3) or block (Azure) upload.

    fake-gcs-server keeps no trace of how an object was uploaded; for GCS the memory bound
    above is the evidence that the upload was resumable, chunk by chunk.
    """
    target = env["DATAOPS_TARGET"]
    if target in ("onprem", "aws"):
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"])
        etag = s3.head_object(Bucket=env["DATAOPS_BUCKET"], Key=name)["ETag"]
        assert etag.strip('"').endswith(f"-{BIG // (8 * 1024 * 1024)}")
    elif target == "azure":
        service = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
        committed, _ = service.get_blob_client(env["DATAOPS_BUCKET"], name).get_block_list()
        assert len(committed) == BIG // (8 * 1024 * 1024)


def digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
