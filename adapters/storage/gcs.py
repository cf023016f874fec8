"""Google Cloud Storage, through google-cloud-storage.

Credentials are Application Default Credentials, or the service-account key file named by
``GOOGLE_APPLICATION_CREDENTIALS``. With ``emulator_host`` set (from ``STORAGE_EMULATOR_HOST``,
which the SDK itself reads) the client talks to that emulator with anonymous credentials.

Streams above one chunk (``chunk_mb``, default 100 MiB like the SDK's: fewer, larger
requests are faster, and each chunk is held in memory once) go up as a resumable upload, chunk by
chunk; GCS creates the object only when the last chunk arrives, so a failed upload leaves the
previous generation in place. ``put`` returns what the upload's answer says of the new object.
Downloads stream one response into the sink; ``open`` reads ranges of one pinned generation.
Prefix, URIs, errors and clients come from ``ObjectStore``; each call passes the retry of its
client's purpose (Google's retry is per call, not per client).

``open_output`` is the SDK's resumable upload writer (``Blob.open("wb")``), chunk by chunk of
``chunk_mb``; an aborted writer cancels the upload session, so no object appears. Ranged reads
carry the ETag they expect (``If-Match``). A whole read goes through ``pyarrow.fs.GcsFileSystem``
with the same credentials and retry budget: one request, about 2x faster than the SDK on the
emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, NamedTuple
from urllib.parse import urlsplit

import requests
from google.api_core.exceptions import (
    Forbidden,
    GoogleAPICallError,
    NotFound,
    PreconditionFailed,
    RetryError,
    Unauthorized,
)
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from adapters.storage.base import CHUNK_SIZE, ObjectInfo, ObjectOutput
from adapters.storage.object_store import Failure, Fault, ObjectStore, Payload
from adapters.storage.retry import RetryPolicy

if TYPE_CHECKING:
    import pyarrow.fs as pafs

EMULATOR = "STORAGE_EMULATOR_HOST"
KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
EMULATOR_PROJECT = "dataops-emulator"
DEFAULT_CHUNK_MB = 100


def google_retry(policy: RetryPolicy) -> Retry:
    """google-cloud-storage's own retryable-error predicate with our backoff and time budget."""
    return DEFAULT_RETRY.with_delay(
        initial=policy.initial_delay, maximum=policy.max_delay, multiplier=2.0
    ).with_timeout(policy.time_budget())


class _Connection(NamedTuple):
    """A bucket handle and what every call on it passes: the retry and the timeouts."""

    bucket: storage.Bucket
    retry: Retry
    timeout: tuple[float, float]


class GCSStorage(ObjectStore):
    """Objects in a GCS bucket under a prefix; credentials never enter this resource's config."""

    project: str | None = None
    chunk_mb: int = DEFAULT_CHUNK_MB
    emulator_host: str | None = None

    scheme: ClassVar[str] = "gs"
    service: ClassVar[str] = "GCS"
    arrow_size_field: ClassVar[str] = "size"

    def _connect(self, policy: RetryPolicy) -> _Connection:
        if self.emulator_host:
            client = storage.Client(
                project=self.project or EMULATOR_PROJECT,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.emulator_host},
            )
        else:
            client = storage.Client(project=self.project)
        return _Connection(client.bucket(self.bucket), google_retry(policy), policy.timeout())

    def _write(self, name: str, payload: Payload) -> ObjectInfo:
        bucket, retry, timeout = self._client()
        blob = bucket.blob(name, chunk_size=self.chunk_mb * 2**20)
        if isinstance(payload.body, bytes):
            blob.upload_from_string(payload.body, retry=retry, timeout=timeout)
        else:
            blob.upload_from_file(payload.body, size=payload.length, retry=retry, timeout=timeout)
        return _info(blob)

    def _open_output(self, name: str, key: str) -> ObjectOutput:
        bucket, retry, timeout = self._client()
        writer = bucket.blob(name).open(
            "wb", chunk_size=self.chunk_mb * 2**20, ignore_flush=True, retry=retry, timeout=timeout
        )
        return _ResumableOutput(writer, lambda: _info(self._blob(name)))

    def _arrow_filesystem(self) -> pafs.FileSystem:
        """Arrow's GCS client: the emulator anonymously, else Application Default Credentials
        (what the SDK uses), retrying within the same time budget."""
        import pyarrow.fs as pafs

        budget = timedelta(seconds=self.retry.time_budget())
        if self.emulator_host:
            endpoint = urlsplit(
                self.emulator_host
                if "://" in self.emulator_host
                else f"http://{self.emulator_host}"
            )
            return pafs.GcsFileSystem(
                anonymous=True,
                scheme=endpoint.scheme,
                endpoint_override=endpoint.netloc,
                retry_time_limit=budget,
            )
        return pafs.GcsFileSystem(project_id=self.project, retry_time_limit=budget)

    def _read_range(self, name: str, etag: str, offset: int, length: int) -> bytes:
        bucket, retry, timeout = self._client()
        return bucket.blob(name).download_as_bytes(
            start=offset,
            end=offset + length - 1,
            if_etag_match=etag,
            checksum=None,
            retry=retry,
            timeout=timeout,
        )

    def _create(self, name: str, data: bytes) -> ObjectInfo:
        bucket, retry, timeout = self._client()
        blob = bucket.blob(name)
        try:
            blob.upload_from_string(data, if_generation_match=0, retry=retry, timeout=timeout)
        except PreconditionFailed as exc:
            raise self._taken(name) from exc
        return _info(blob)

    def _read_into(self, name: str, sink: BinaryIO) -> None:
        bucket, retry, timeout = self._client()
        bucket.blob(name).download_to_file(sink, retry=retry, timeout=timeout)

    def _open(self, name: str) -> Any:
        """A reader of the generation current now, so it never mixes two versions."""
        bucket, retry, timeout = self._client()
        current = self._blob(name)
        pinned = bucket.blob(name, generation=current.generation)
        return pinned.open("rb", chunk_size=CHUNK_SIZE, retry=retry, timeout=timeout)

    def _stat(self, name: str) -> ObjectInfo:
        return _info(self._blob(name))

    def _blob(self, name: str) -> storage.Blob:
        bucket, retry, timeout = self._client()
        blob = bucket.blob(name)
        blob.reload(retry=retry, timeout=timeout)
        return blob

    def _delete(self, name: str) -> None:
        bucket, retry, timeout = self._client()
        bucket.blob(name).delete(retry=retry, timeout=timeout)

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        bucket, retry, timeout = self._client()
        blobs = bucket.client.list_blobs(
            bucket, prefix=prefix, start_offset=start_after, retry=retry, timeout=timeout
        )
        for blob in blobs:
            if blob.name != start_after:
                yield _info(blob)

    def _probe(self, client: _Connection) -> None:
        client.bucket.reload(retry=client.retry, timeout=client.timeout)

    def _endpoint_note(self) -> str:
        return f"emulator {self.emulator_host}" if self.emulator_host else ""

    def location(self) -> str | None:
        """The bucket's location (``EUROPE-WEST1``, ``EU``), lowercased; None with an emulator,
        since fake-gcs-server reports US-CENTRAL1 for every bucket."""
        if self.emulator_host:
            return None
        client = self._client()
        client.bucket.reload(retry=client.retry, timeout=client.timeout)
        return (client.bucket.location or "").lower() or None

    def _classify(self, exc: Exception) -> Fault | None:
        if isinstance(exc, NotFound):
            return Fault(Failure.NOT_FOUND)
        if isinstance(exc, Forbidden | Unauthorized):
            return Fault(Failure.DENIED, str(exc.code))
        if isinstance(exc, DefaultCredentialsError):
            return Fault(Failure.NO_CREDENTIALS, detail=str(exc))
        if isinstance(exc, GoogleAPICallError):
            return Fault(Failure.OTHER, str(exc.code), exc.message)
        if isinstance(exc, RetryError | requests.RequestException | GoogleAuthError):
            return Fault(Failure.UNREACHABLE, detail=str(exc))
        return None

    def _advice(self, failure: Failure) -> str:
        if failure is Failure.DENIED:
            return (
                f"Check the credentials ({KEY_FILE} or Application Default Credentials) and the "
                "bucket's IAM roles."
            )
        if failure is Failure.NO_CREDENTIALS:
            return (
                f"Set {KEY_FILE} to a service-account key file, or run "
                "`gcloud auth application-default login`."
            )
        return f"Check the network, or {EMULATOR} when using an emulator."


class _ResumableOutput(ObjectOutput):
    """The SDK's resumable upload writer: ``close`` sends the last chunk, ``terminate`` cancels."""

    def __init__(self, writer: Any, published: Callable[[], ObjectInfo]) -> None:
        super().__init__()
        self._writer, self._published = writer, published

    def _send(self, data: Any) -> None:
        self._writer.write(data)

    def _publish(self) -> ObjectInfo:
        self._writer.close()
        return self._published()

    def _discard(self) -> None:
        self._writer.terminate()


def _info(blob: storage.Blob) -> ObjectInfo:
    return ObjectInfo(
        key=blob.name,
        size=blob.size,
        etag=blob.etag or str(blob.generation),
        modified=blob.updated,
    )
