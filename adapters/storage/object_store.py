"""One base for the object stores (S3, Azure Blob, GCS): what they share, written once.

Objects live in one bucket (Azure: container) under ``prefix``. The base maps keys to object
names and back, checks keys, names objects in URIs and error messages, keeps one SDK client per
purpose (normal calls, and the load-time check with fewer retries: ``RetryPolicy.for_check``),
guards open streams, and decides what ``put`` returns. A backend supplies its SDK calls, which
speak object names (``_connect``, ``_write``, ``_read_into``, ``_open``, ``_stat``, ``_delete``,
``_list``, ``_probe``; the ``ObjectInfo`` they return carry the object name as ``key``), and one
function, ``_classify``, that sorts its SDK's exceptions into ``Failure`` kinds. From those the
base raises ``ObjectNotFoundError`` or ``StorageError`` worded the same way on every backend.

Streaming writes (``open_output``) are the backend's ``_open_output``; S3 and Azure build theirs
on ``PartUpload`` (parts uploaded as they fill, a few at a time, and published by one final call
only on commit). Reads for ``pyarrow`` (``open_input``) are ranged requests pinned to the ETag
the object had when opened (``_read_range``), so a decoder fetches only the footer and the
column chunks it decodes, and never mixes two versions. A whole read (``whole=True``) on a
backend with an ``_arrow_filesystem`` is one request through Arrow's C++ client instead: on the
local servers, Azure and GCS downloads were about 2x faster through it than through their Python
SDKs, which spend the time in Python per chunk; boto3's ranged reads were not slower than Arrow's
S3 client, so S3 keeps them.
"""

from __future__ import annotations

import io
import re
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, cast

from pydantic import PrivateAttr

from adapters.storage.base import (
    CHUNK_SIZE,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectOutput,
    StorageAccessDenied,
    StorageAdapter,
    StorageError,
    check_key,
    remaining_size,
)
from adapters.storage.retry import RetryPolicy

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

PART_CONCURRENCY = 4
SECRETS = re.compile(r"\?[^\s'\"]*|\b(?:sig|signature|X-Amz-Signature)=[^&\s'\"]+", re.I)
UNREACHABLE_WORDS = re.compile(r"connect|timed? ?out|resolve|refused|reset|unavailable", re.I)


def redacted(message: str) -> str:
    """A client's error message without URL query strings or signatures (a SAS token)."""
    return SECRETS.sub("<redacted>", message)


class Failure(Enum):
    """What kind of failure an SDK exception reports, as far as a user can act on it.

    ``OTHER`` is anything else the service refused, and transient faults that outlived the
    retries.
    """

    NOT_FOUND = "not found"
    MISSING_BUCKET = "missing bucket"
    DENIED = "denied"
    NO_CREDENTIALS = "no credentials"
    UNREACHABLE = "unreachable"
    OTHER = "other"


@dataclass(frozen=True)
class Fault:
    """One SDK exception, classified: its kind, the service's code, the SDK's own words."""

    failure: Failure
    code: str = ""
    detail: str = ""


class ForwardOnly:
    """A non-seekable source as chunked uploads read it: full chunks, and the bytes read so far."""

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


class Payload:
    """What ``put`` was handed, as SDK uploads take it: bytes, a seekable stream with its
    length, or a forward-only stream that counts what the upload read."""

    def __init__(self, data: bytes | BinaryIO) -> None:
        self.body: bytes | BinaryIO | ForwardOnly
        self.length: int | None
        if isinstance(data, bytes | bytearray | memoryview):
            self.body = bytes(data)
            self.length = len(self.body)
        elif data.seekable():
            self.body, self.length = data, remaining_size(data)
        else:
            self.body, self.length = ForwardOnly(data), None

    def size(self) -> int:
        """Bytes uploaded; for a forward-only stream, known once the upload has read it all."""
        if self.length is not None:
            return self.length
        return cast(ForwardOnly, self.body).tell()


class ObjectStore(StorageAdapter):
    """Objects in ``bucket`` under ``prefix``; credentials never enter this resource's config."""

    bucket: str
    prefix: str = ""
    retry: RetryPolicy = RetryPolicy()

    scheme: ClassVar[str]
    """The URI scheme (``s3``, ``gs``): ``uri`` is ``<scheme>://<bucket>/<object name>``."""
    service: ClassVar[str]
    """How messages name the service: "Cannot reach S3 for ..."."""
    bucket_noun: ClassVar[str] = "bucket"
    object_noun: ClassVar[str] = "object"
    arrow_size_field: ClassVar[str] = "Content-Length"
    """The field of an Arrow input stream's metadata that holds the object's size."""

    _clients: dict[bool, Any] = PrivateAttr(default_factory=dict)
    _arrow: dict[str, Any] = PrivateAttr(default_factory=dict)

    @abstractmethod
    def _connect(self, policy: RetryPolicy) -> Any:
        """A new SDK client (or handle) that retries and times out as ``policy`` says."""

    @abstractmethod
    def _write(self, name: str, payload: Payload) -> ObjectInfo:
        """Upload atomically; what the upload's answer says of the new object."""

    @abstractmethod
    def _create(self, name: str, data: bytes) -> ObjectInfo:
        """Upload only if no object has the name, else raise ObjectExistsError."""

    @abstractmethod
    def _read_into(self, name: str, sink: BinaryIO) -> None:
        """Stream the object into ``sink``."""

    @abstractmethod
    def _open(self, name: str) -> Any:
        """A download of the object with ``read(size)`` (and ``close()`` where it holds one)."""

    @abstractmethod
    def _open_output(self, name: str, key: str) -> ObjectOutput:
        """A streaming upload to ``name`` that publishes only on commit; SDK errors may escape."""

    @abstractmethod
    def _read_range(self, name: str, etag: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` of the object, refused if its ETag is no longer
        ``etag``."""

    @abstractmethod
    def _stat(self, name: str) -> ObjectInfo: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...

    @abstractmethod
    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        """Objects whose names start with ``prefix``, in name order, after ``start_after``."""

    @abstractmethod
    def _probe(self, client: Any) -> None:
        """One cheap call on the check ``client`` proving the bucket exists and answers."""

    @abstractmethod
    def _classify(self, exc: Exception) -> Fault | None:
        """What the SDK exception ``exc`` reports; None for an exception not of the SDK."""

    @abstractmethod
    def _advice(self, failure: Failure) -> str:
        """The fix to suggest for a failure the user can act on (denied, credentials, reach)."""

    def _endpoint_note(self) -> str:
        """Where requests go, for error messages, when that is not the service's default."""
        return ""

    def _client(self, for_check: bool = False) -> Any:
        """The SDK client for normal calls, or for the load-time check; each built once."""
        if for_check not in self._clients:
            policy = self.retry.for_check() if for_check else self.retry
            self._clients[for_check] = self._connect(policy)
        return self._clients[for_check]

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _name(self, key: str) -> str:
        return self._root() + key

    def _key(self, name: str) -> str:
        return name[len(self._root()) :]

    def _object_uri(self, name: str) -> str:
        return f"{self.scheme}://{self.bucket}/{name}"

    def uri(self, key: str) -> str:
        return self._object_uri(self._name(check_key(key)))

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        name = self._name(check_key(key))
        with self._errors(key, writing=True):
            written = self._write(name, Payload(data))
        return replace(written, key=key)

    def create(self, key: str, data: bytes) -> ObjectInfo:
        name = self._name(check_key(key))
        with self._errors(key, writing=True):
            written = self._create(name, data)
        return replace(written, key=key)

    def download(self, key: str, sink: BinaryIO) -> None:
        name = self._name(check_key(key))
        with self._errors(key):
            self._read_into(name, sink)

    def open(self, key: str) -> BinaryIO:
        name = self._name(check_key(key))
        with self._errors(key):
            stream = self._open(name)
        return io.BufferedReader(_GuardedStream(self, key, stream), CHUNK_SIZE)

    def open_output(self, key: str) -> ObjectOutput:
        name = self._name(check_key(key))
        return _GuardedOutput(self, key, self._open_output(name, key))

    def open_input(self, key: str, whole: bool = False) -> pa.NativeFile:
        import pyarrow as pa

        name = self._name(check_key(key))
        if whole and (filesystem := self._native()) is not None:
            return pa.BufferReader(self._read_whole(filesystem, key, name))
        with self._errors(key):
            info = self._stat(name)
        return pa.PythonFile(_RangedFile(self, key, name, info), mode="r")

    def _arrow_filesystem(self) -> pafs.FileSystem | None:
        """A ``pyarrow.fs`` filesystem on the same bucket, endpoint and credentials, for a
        backend whose SDK downloads slower than Arrow's C++ client; None keeps the SDK."""
        return None

    def _native(self) -> pafs.FileSystem | None:
        if "filesystem" not in self._arrow:
            self._arrow["filesystem"] = self._arrow_filesystem()
        return self._arrow["filesystem"]

    def _read_whole(self, filesystem: pafs.FileSystem, key: str, name: str) -> pa.Buffer:
        """The object in one request through ``filesystem``, so it is one version, whole.

        An input stream, not a random-access file: on GCS a file whose connection was cut
        mid-download stalls for two minutes (the C++ client's download stall timeout, which
        pyarrow does not expose) and then reports itself closed, while a stream fails within
        the retry budget. Its size comes from the stream's own metadata, read in one call.

        When it fails, the SDK's ``stat`` names the cause as every other call does (a missing
        object, a refusal, an unreachable store); otherwise Arrow's own message is given,
        redacted (it can carry the request URL, and with it a SAS token) and not chained.
        """
        try:
            with filesystem.open_input_stream(f"{self.bucket}/{name}") as source:
                declared = source.metadata().get(self.arrow_size_field)
                if declared is None:
                    raise OSError(f"the store did not give the {self.object_noun}'s size")
                size = int(declared)
                data = source.read_buffer(size)
            if data.size == size:
                return data
            failure = OSError(f"the download ended after {data.size} of {size} bytes")
        except OSError as exc:
            failure = exc
        with self._errors(key):
            self._stat(name)
        if isinstance(failure, FileNotFoundError):
            raise self._error(Fault(Failure.NOT_FOUND), key, writing=False)
        detail = redacted(" ".join(str(failure).split()) or type(failure).__name__)
        cut = UNREACHABLE_WORDS.search(detail) is not None
        fault = Fault(Failure.UNREACHABLE if cut else Failure.OTHER, "on read", detail)
        raise self._error(fault, key, writing=False)

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(check_key(key))
        with self._errors(key):
            info = self._stat(name)
        return replace(info, key=key)

    def delete(self, key: str) -> None:
        name = self._name(check_key(key))
        try:
            with self._errors(key):
                self._delete(name)
        except ObjectNotFoundError:
            return

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        after = self._name(start_after) if start_after is not None else None
        with self._errors(None):
            for info in self._list(self._name(prefix), after):
                yield replace(info, key=self._key(info.key))

    def check(self) -> None:
        with self._errors(None):
            self._probe(self._client(for_check=True))

    def _taken(self, name: str) -> ObjectExistsError:
        """The error a backend's ``_create`` raises when the store says the name is taken."""
        return ObjectExistsError(
            f"{self.object_noun.capitalize()} '{self._key(name)}' already exists at "
            f"{self._where(self._key(name))}; create never overwrites."
        )

    def _where(self, key: str | None) -> str:
        place = self._object_uri(self._name(key) if key else self._root())
        note = self._endpoint_note()
        return f"{place} (target '{self.target}'{f', {note}' if note else ''})"

    @contextmanager
    def _errors(self, key: str | None, writing: bool = False) -> Iterator[None]:
        """Raise SDK exceptions as StorageError; a 404 on a write or a bucket call (no key)
        means the bucket is missing."""
        try:
            yield
        except Exception as exc:
            fault = self._classify(exc)
            if fault is None:
                raise
            raise self._error(fault, key, writing) from exc

    def _error(self, fault: Fault, key: str | None, writing: bool) -> StorageError:
        where = self._where(key)
        failure = fault.failure
        if failure is Failure.NOT_FOUND and (key is None or writing):
            failure = Failure.MISSING_BUCKET
        match failure:
            case Failure.NOT_FOUND:
                return ObjectNotFoundError(f"No {self.object_noun} '{key}' at {where}.")
            case Failure.MISSING_BUCKET:
                noun = self.bucket_noun
                return StorageError(
                    f"{noun.capitalize()} '{self.bucket}' does not exist: {where}. Create it, "
                    f"or set DATAOPS_BUCKET (storage.bucket) to an existing {noun}."
                )
            case Failure.DENIED:
                return StorageAccessDenied(
                    f"Access denied ({fault.code}) to {where}. {self._advice(failure)}"
                )
            case Failure.NO_CREDENTIALS:
                detail = f": {fault.detail}" if fault.detail else ""
                return StorageError(
                    f"No {self.service} credentials for {where}{detail}. {self._advice(failure)}"
                )
            case Failure.UNREACHABLE:
                return StorageError(
                    f"Cannot reach {self.service} for {where}: {fault.detail}. "
                    f"{self._advice(failure)}"
                )
            case _:
                return StorageError(
                    f"{self.service} error {fault.code} for {where}: {fault.detail}"
                )


class _GuardedStream(io.RawIOBase):
    """An SDK download as a raw stream whose failures are StorageErrors, like every other call."""

    def __init__(self, store: ObjectStore, key: str, download: Any) -> None:
        self._store = store
        self._key = key
        self._download = download

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._store._errors(self._key):
            data = self._download.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        with self._store._errors(self._key):
            return self._download.read()

    def close(self) -> None:
        if not self.closed:
            release = getattr(self._download, "close", None)
            if release is not None:
                release()
        super().close()


class PartUpload(ObjectOutput):
    """Bytes cut into parts of ``part_size``, each uploaded as it fills, ``PART_CONCURRENCY`` at
    a time; the object appears only when ``publish`` lists them all on commit.

    ``begin`` runs before the first part; a writer that never fills one part costs one plain
    upload (``single``) instead. Memory holds at most
    the parts in flight plus the one filling.
    """

    def __init__(
        self,
        part_size: int,
        begin: Callable[[], None],
        send_part: Callable[[int, bytes], Any],
        publish: Callable[[list[Any]], ObjectInfo],
        single: Callable[[bytes], ObjectInfo],
        discard: Callable[[], None],
    ) -> None:
        super().__init__()
        self._part_size = part_size
        self._begin, self._send_part, self._publish_parts = begin, send_part, publish
        self._single, self._discard_parts = single, discard
        self._filling = bytearray()
        self._parts: list[Future[Any]] = []
        self._in_flight: deque[Future[Any]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def _send(self, data: Any) -> None:
        self._filling += data
        while len(self._filling) >= self._part_size:
            part = bytes(self._filling[: self._part_size])
            del self._filling[: self._part_size]
            self._submit(part)

    def _submit(self, part: bytes) -> None:
        if self._pool is None:
            self._begin()
            self._pool = ThreadPoolExecutor(PART_CONCURRENCY, thread_name_prefix="part-upload")
        while self._in_flight and (
            self._in_flight[0].done() or len(self._in_flight) >= PART_CONCURRENCY
        ):
            self._in_flight.popleft().result()
        future = self._pool.submit(self._send_part, len(self._parts) + 1, part)
        self._parts.append(future)
        self._in_flight.append(future)

    def _publish(self) -> ObjectInfo:
        if not self._parts:
            return self._single(bytes(self._filling))
        if self._filling:
            self._submit(bytes(self._filling))
            self._filling.clear()
        tokens = [future.result() for future in self._parts]
        self._shutdown()
        return self._publish_parts(tokens)

    def _discard(self) -> None:
        for future in self._parts:
            future.cancel()
        self._shutdown()
        self._filling.clear()
        self._discard_parts()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class _GuardedOutput(ObjectOutput):
    """A backend's streaming upload whose failures are StorageErrors, like every other call.

    A failed abort (the server is gone) is not reported over the failure that caused it: the
    unpublished parts stay invisible and the store's own clean-up removes them.
    """

    def __init__(self, store: ObjectStore, key: str, upload: ObjectOutput) -> None:
        super().__init__()
        self._store, self._key, self._upload = store, key, upload

    def _send(self, data: Any) -> None:
        with self._store._errors(self._key, writing=True):
            self._upload.write(data)

    def _publish(self) -> ObjectInfo:
        with self._store._errors(self._key, writing=True):
            info = self._upload.commit()
        return replace(info, key=self._key)

    def _discard(self) -> None:
        with suppress(Exception):
            self._upload.abort()


class _RangedFile(io.RawIOBase):
    """One version of an object as a seekable file; each read is one ranged request."""

    def __init__(self, store: ObjectStore, key: str, name: str, info: ObjectInfo) -> None:
        self._store, self._key, self._name, self._info = store, key, name, info
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._info.size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = self._info.size if size < 0 else min(self._info.size, self._position + size)
        if end <= self._position:
            return b""
        with self._store._errors(self._key):
            data = self._store._read_range(
                self._name, self._info.etag, self._position, end - self._position
            )
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
