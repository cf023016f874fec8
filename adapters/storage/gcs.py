"""Google Cloud Storage, through google-cloud-storage.

Credentials are Application Default Credentials, or the service-account key file named by
``GOOGLE_APPLICATION_CREDENTIALS``. With ``emulator_host`` set (from ``STORAGE_EMULATOR_HOST``,
which the SDK itself reads) the client talks to that emulator with anonymous credentials.

Streams above one chunk (``chunk_mb``, default 100 MiB like the SDK's: fewer, larger
requests are faster, and each chunk is held in memory once) go up as a resumable upload, chunk by
chunk; GCS creates the object only when the last chunk arrives, so a failed upload leaves the
previous generation in place. Downloads stream one response into the sink; ``open`` reads ranges
of one pinned generation.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import requests
from google.api_core.exceptions import (
    Forbidden,
    GoogleAPICallError,
    NotFound,
    RetryError,
    Unauthorized,
)
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
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

EMULATOR = "STORAGE_EMULATOR_HOST"
KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
EMULATOR_PROJECT = "dataops-emulator"
DEFAULT_CHUNK_MB = 100
TIMEOUT = POLICY.timeout()


def google_retry(policy: RetryPolicy = POLICY, for_check: bool = False) -> Retry:
    """google-cloud-storage's own retryable-error predicate with our backoff and time budget."""
    budget = policy.initial_delay * 2**policy.check_attempts if for_check else policy.time_budget()
    return DEFAULT_RETRY.with_delay(
        initial=policy.initial_delay, maximum=policy.max_delay, multiplier=2.0
    ).with_timeout(budget)


RETRY = google_retry()


class GCSStorage(StorageAdapter):
    """Objects in a GCS bucket under a prefix; credentials never enter this resource's config."""

    bucket: str
    prefix: str = ""
    project: str | None = None
    chunk_mb: int = DEFAULT_CHUNK_MB
    emulator_host: str | None = None

    _handle: storage.Bucket | None = PrivateAttr(default=None)

    def _bucket(self) -> storage.Bucket:
        if self._handle is None:
            with self._errors(None):
                if self.emulator_host:
                    client = storage.Client(
                        project=self.project or EMULATOR_PROJECT,
                        credentials=AnonymousCredentials(),
                        client_options={"api_endpoint": self.emulator_host},
                    )
                else:
                    client = storage.Client(project=self.project)
            self._handle = client.bucket(self.bucket)
        return self._handle

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self._name(check_key(key))}"

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        blob = self._bucket().blob(self._name(check_key(key)), chunk_size=self.chunk_mb * 2**20)
        with self._errors(key, writing=True):
            if isinstance(data, bytes | bytearray | memoryview):
                blob.upload_from_string(bytes(data), retry=RETRY, timeout=TIMEOUT)
            elif data.seekable():
                blob.upload_from_file(data, size=remaining_size(data), retry=RETRY, timeout=TIMEOUT)
            else:
                blob.upload_from_file(_ForwardOnly(data), retry=RETRY, timeout=TIMEOUT)
        return _info(key, blob)

    def download(self, key: str, sink: BinaryIO) -> None:
        blob = self._bucket().blob(self._name(check_key(key)))
        with self._errors(key):
            blob.download_to_file(sink, retry=RETRY, timeout=TIMEOUT)

    def open(self, key: str) -> BinaryIO:
        current = self._get(key)
        pinned = self._bucket().blob(current.name, generation=current.generation)
        with self._errors(key):
            return pinned.open("rb", chunk_size=CHUNK_SIZE, retry=RETRY, timeout=TIMEOUT)

    def stat(self, key: str) -> ObjectInfo:
        return _info(key, self._get(key))

    def _get(self, key: str) -> storage.Blob:
        with self._errors(key):
            blob = self._bucket().get_blob(self._name(check_key(key)), retry=RETRY, timeout=TIMEOUT)
        if blob is None:
            raise ObjectNotFoundError(f"No object '{key}' at {self._where(key)}.")
        return blob

    def delete(self, key: str) -> None:
        try:
            with self._errors(key):
                self._bucket().blob(self._name(check_key(key))).delete(retry=RETRY, timeout=TIMEOUT)
        except ObjectNotFoundError:
            return

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        bucket = self._bucket()
        after = self._name(start_after) if start_after is not None else None
        with self._errors(None):
            blobs = bucket.client.list_blobs(
                bucket,
                prefix=self._root() + prefix,
                start_offset=after,
                retry=RETRY,
                timeout=TIMEOUT,
            )
            for blob in blobs:
                if blob.name != after:
                    yield _info(blob.name[len(self._root()) :], blob)

    def check(self) -> None:
        with self._errors(None):
            self._bucket().reload(retry=google_retry(for_check=True), timeout=TIMEOUT)

    def _where(self, key: str | None) -> str:
        place = f"gs://{self.bucket}/{self._name(key) if key else self._root()}"
        endpoint = self.emulator_host
        return f"{place} (target '{self.target}'{f', emulator {endpoint}' if endpoint else ''})"

    @contextmanager
    def _errors(self, key: str | None, writing: bool = False) -> Iterator[None]:
        """Translate SDK errors; a 404 on a write or a bucket call means the bucket is missing."""
        try:
            yield
        except NotFound as exc:
            if key is None or writing:
                raise StorageError(
                    f"Bucket '{self.bucket}' does not exist: {self._where(key)}. Create it, or "
                    "set DATAOPS_BUCKET (storage.bucket) to an existing bucket."
                ) from exc
            raise ObjectNotFoundError(f"No object '{key}' at {self._where(key)}.") from exc
        except (Forbidden, Unauthorized) as exc:
            raise StorageError(
                f"Access denied ({exc.code}) to {self._where(key)}. Check the credentials "
                f"({KEY_FILE} or Application Default Credentials) and the bucket's IAM roles."
            ) from exc
        except DefaultCredentialsError as exc:
            raise StorageError(
                f"No Google credentials for {self._where(key)}: {exc}. Set {KEY_FILE} to a "
                "service-account key file, or run `gcloud auth application-default login`."
            ) from exc
        except GoogleAPICallError as exc:
            raise StorageError(
                f"GCS error {exc.code} for {self._where(key)}: {exc.message}"
            ) from exc
        except (RetryError, requests.RequestException, GoogleAuthError) as exc:
            raise StorageError(
                f"Cannot reach GCS for {self._where(key)}: {exc}. Check the network, or "
                f"{EMULATOR} when using an emulator."
            ) from exc


class _ForwardOnly:
    """A non-seekable source as resumable uploads read it: full chunks, plus the position."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data = self._source.read()
        else:
            buffer = io.BytesIO()
            while buffer.tell() < size:
                chunk = self._source.read(size - buffer.tell())
                if not chunk:
                    break
                buffer.write(chunk)
            data = buffer.getvalue()
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return False


def _info(key: str, blob: Any) -> ObjectInfo:
    return ObjectInfo(
        key=key, size=blob.size, etag=blob.etag or str(blob.generation), modified=blob.updated
    )
