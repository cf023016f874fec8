"""Azure Blob Storage, through azure-storage-blob. The container is ``bucket``.

Credentials come only from environment variables, looked up when the client is built:
``AZURE_STORAGE_CONNECTION_STRING``, or an account URL (``account_url``) with ``AZURE_STORAGE_KEY``
or ``AZURE_STORAGE_SAS_TOKEN``, or with an Azure identity (``DefaultAzureCredential``) where its
variables are set: AKS workload identity injects ``AZURE_CLIENT_ID`` and
``AZURE_FEDERATED_TOKEN_FILE`` into every pod. The same variables point the adapter at Azurite.

Streams above one chunk are uploaded as blocks and committed in one call, so readers see the old
blob until the commit and a failed upload leaves only uncommitted blocks (which Azure discards).
Downloads fetch ranges pinned to the blob's ETag, so a reader never mixes two versions; the SDK
holds several times each range in memory while reading it, hence small ranges, one at a time.
``uri`` is the blob's URL (``https://<account>.blob.core.windows.net/<container>/<key>``), which
is exact for Azurite too; the ``abfs://`` form would name a real account only.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobClient,
    BlobPrefix,
    BlobProperties,
    BlobServiceClient,
    ContainerClient,
    ExponentialRetry,
)
from pydantic import PrivateAttr

from adapters.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFoundError,
    StorageAdapter,
    StorageError,
    check_key,
    remaining_size,
)
from adapters.storage.retry import POLICY, RetryPolicy
from config.environment import variable

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
ACCOUNT_KEY = "AZURE_STORAGE_KEY"
SAS_TOKEN = "AZURE_STORAGE_SAS_TOKEN"
IDENTITY_VARIABLES = ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID")
UPLOAD_CONCURRENCY = 4
RANGE_SIZE = 4 * 1024 * 1024
TRANSFER_SIZES = {
    "max_single_put_size": CHUNK_SIZE,
    "max_block_size": CHUNK_SIZE,
    "max_single_get_size": RANGE_SIZE,
    "max_chunk_get_size": RANGE_SIZE,
}
CREDENTIAL_FIX = (
    f"Set {CONNECTION_STRING}, or {ACCOUNT_URL} (or storage.account_url) together with "
    f"{ACCOUNT_KEY}, {SAS_TOKEN} or a workload identity ({' and '.join(IDENTITY_VARIABLES)})."
)


class AzureBlobStorage(StorageAdapter):
    """Blobs in one container under a prefix; credentials never enter this resource's config."""

    bucket: str
    prefix: str = ""
    account_url: str | None = None

    _clients: dict[bool, ContainerClient] = PrivateAttr(default_factory=dict)

    def _container(self, for_check: bool = False) -> ContainerClient:
        if for_check not in self._clients:
            options: dict[str, Any] = {**azure_options(for_check=for_check), **TRANSFER_SIZES}
            connection_string = variable(CONNECTION_STRING)
            try:
                if connection_string:
                    service = BlobServiceClient.from_connection_string(connection_string, **options)
                else:
                    service = BlobServiceClient(
                        str(self.account_url),
                        credential=_credential(str(self.account_url)),
                        **options,
                    )
            except ValueError as exc:
                raise StorageError(
                    f"The Azure credential variables are malformed ({exc}). {CREDENTIAL_FIX}"
                ) from exc
            self._clients[for_check] = service.get_container_client(self.bucket)
        return self._clients[for_check]

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _blob(self, key: str) -> BlobClient:
        return self._container().get_blob_client(self._name(check_key(key)))

    def uri(self, key: str) -> str:
        url = self._blob(key).url
        return urlsplit(url)._replace(query="").geturl()

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        blob = self._blob(key)
        with self._errors(key):
            if isinstance(data, bytes | bytearray | memoryview):
                blob.upload_blob(bytes(data), overwrite=True)
            else:
                blob.upload_blob(
                    data,
                    length=remaining_size(data),
                    overwrite=True,
                    max_concurrency=UPLOAD_CONCURRENCY,
                )
        return self.stat(key)

    def download(self, key: str, sink: BinaryIO) -> None:
        with self._errors(key):
            self._container().download_blob(self._name(check_key(key))).readinto(sink)

    def open(self, key: str) -> BinaryIO:
        with self._errors(key):
            downloader = self._container().download_blob(self._name(check_key(key)))
        return io.BufferedReader(_DownloadReader(self, key, downloader), CHUNK_SIZE)

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            properties = self._blob(key).get_blob_properties()
        return _info(key, properties)

    def delete(self, key: str) -> None:
        try:
            with self._errors(key):
                self._container().delete_blob(self._name(check_key(key)))
        except ObjectNotFoundError:
            return

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        container = self._container()
        with self._errors(None):
            if start_after is None:
                blobs = container.list_blobs(name_starts_with=self._root() + prefix)
            else:
                blobs = _blobs_after(container, self._root() + prefix, self._root() + start_after)
            for blob in blobs:
                yield _info(blob.name[len(self._root()) :], blob)

    def check(self) -> None:
        """One listing request of at most one name: works with a key, and with a SAS that lists."""
        blobs = self._container(for_check=True).list_blob_names(
            name_starts_with=self._root(), results_per_page=1
        )
        with self._errors(None):
            next(blobs.by_page(), None)

    def _where(self, key: str | None) -> str:
        url = urlsplit(self._container().url)._replace(query="").geturl()
        return f"{url}/{self._name(key) if key else self._root()} (target '{self.target}')"

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        try:
            yield
        except ResourceNotFoundError as exc:
            if key is None or exc.error_code == "ContainerNotFound":
                raise StorageError(
                    f"Container '{self.bucket}' does not exist: {self._where(key)}. Create it, "
                    "or set DATAOPS_BUCKET (storage.bucket) to an existing container."
                ) from exc
            raise ObjectNotFoundError(f"No blob '{key}' at {self._where(key)}.") from exc
        except ClientAuthenticationError as exc:
            raise self._denied(exc, key) from exc
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise self._denied(exc, key) from exc
            raise StorageError(
                f"Azure error {_code(exc)} for {self._where(key)}: {exc.reason}"
            ) from exc
        except AzureError as exc:
            raise StorageError(
                f"Cannot reach Azure storage for {self._where(key)}: {exc}. Check that the "
                f"account URL is right and answers ({CONNECTION_STRING} or {ACCOUNT_URL})."
            ) from exc

    def _denied(
        self, exc: ClientAuthenticationError | HttpResponseError, key: str | None
    ) -> StorageError:
        return StorageError(
            f"Access denied ({_code(exc)}) to {self._where(key)}. Check "
            f"the account key or SAS token ({CONNECTION_STRING}, {ACCOUNT_KEY}, {SAS_TOKEN}) "
            "and its permissions."
        )


class _DownloadReader(io.RawIOBase):
    """A blob download as a raw stream, read chunk by chunk as the caller asks for bytes."""

    def __init__(self, adapter: AzureBlobStorage, key: str, downloader: Any) -> None:
        self._adapter = adapter
        self._key = key
        self._downloader = downloader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._adapter._errors(self._key):
            data = self._downloader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _blobs_after(container: ContainerClient, prefix: str, start_after: str) -> Iterator[Any]:
    """Blobs under ``prefix`` sorting after ``start_after``, skipping whole folders before it.

    Azurite and older API versions have no "start from" parameter, so the walk descends only
    along ``start_after``'s path and lists every later folder flat: O(depth + new), not O(all).
    """
    for item in container.walk_blobs(name_starts_with=prefix, delimiter="/"):
        if isinstance(item, BlobPrefix):
            if start_after.startswith(item.name):
                yield from _blobs_after(container, item.name, start_after)
            elif item.name > start_after:
                yield from container.list_blobs(name_starts_with=item.name)
        elif item.name > start_after:
            yield item


def azure_options(policy: RetryPolicy = POLICY, for_check: bool = False) -> dict[str, object]:
    """Keyword arguments for an azure-storage-blob client: retry policy and network timeouts."""
    attempts = policy.check_attempts if for_check else policy.attempts
    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=policy.initial_delay,
            increment_base=2,
            retry_total=attempts - 1,
            random_jitter_range=policy.initial_delay,
        ),
        "connection_timeout": policy.connect_timeout,
        "read_timeout": policy.read_timeout,
    }


def _code(exc: ClientAuthenticationError | HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or exc.status_code or type(exc).__name__)


def _credential(
    account_url: str,
) -> dict[str, str] | AzureSasCredential | DefaultAzureCredential:
    key = variable(ACCOUNT_KEY)
    if key:
        return {"account_name": _account_name(account_url), "account_key": key}
    sas = variable(SAS_TOKEN)
    if sas:
        return AzureSasCredential(sas.lstrip("?"))
    return DefaultAzureCredential()


def _account_name(account_url: str) -> str:
    """The account in ``https://<account>.blob...``, or in ``http://127.0.0.1:10000/<account>``."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            return host.split(".")[0]
    return parts.path.strip("/").split("/")[0]


def _info(key: str, blob: BlobProperties) -> ObjectInfo:
    return ObjectInfo(
        key=key, size=blob.size, etag=blob.etag.strip('"'), modified=blob.last_modified
    )
