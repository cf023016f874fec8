"""The storage contract every backend implements, in the spirit of ``pyarrow.fs``: a flat key space.

Keys are ``/``-separated relative paths (``dev/sales/orders.parquet``); an adapter maps them onto
its own root (a directory, a bucket and prefix, a container). Writes are atomic: a reader sees
either the previous object or the new one, never part of one. ``list`` returns keys in
lexicographic order and can resume after any key, which is what makes sensors O(new).

Columnar writers and readers stream: ``open_output`` is a writable stream published whole when its
``with`` block ends cleanly and never in part, and ``open_input`` is a random-access file for
``pyarrow`` (the file itself locally, ranged reads on object stores), so a product larger than
memory passes through without a full local copy.
"""

from __future__ import annotations

import io
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pyarrow as pa

import dagster as dg

CHUNK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` and ``list`` know of one object; ``etag`` changes with the content."""

    key: str
    size: int
    etag: str
    modified: datetime


class StorageError(RuntimeError):
    """A storage operation failed for good; the message names target, location and key."""


class StorageAccessDenied(StorageError, PermissionError):
    """The storage refused the caller's identity (403): its permissions do not cover the call."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The key does not exist."""


class ObjectExistsError(StorageError, FileExistsError):
    """``create`` found the key already taken: nothing was written."""


def check_key(key: str) -> str:
    """Refuse keys that could escape the adapter's root or that no backend can store."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"Storage key {key!r} must be a non-empty relative path, not a folder.")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"Storage key {key!r} must not hold empty, '.' or '..' segments.")
    return key


def remaining_size(stream: BinaryIO) -> int | None:
    """Bytes left from the stream's position to its end, or None if it cannot seek."""
    if not stream.seekable():
        return None
    position = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    return end - position


class ObjectOutput(io.RawIOBase):
    """A new object's bytes as a writable stream, published whole by ``commit`` or not at all.

    As a context manager it commits on a clean exit and aborts on an exception, so a failed or
    interrupted writer leaves the previous version. ``close`` without ``commit`` aborts. After the
    commit ``info`` describes the new object.
    """

    def __init__(self) -> None:
        super().__init__()
        self.info: ObjectInfo | None = None
        self._written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a committed or aborted ObjectOutput")
        size = memoryview(data).nbytes
        self._send(data)
        self._written += size
        return size

    def commit(self) -> ObjectInfo:
        """Publish what was written as the object; the stream is closed afterwards."""
        if self.closed:
            raise ValueError("ObjectOutput already committed or aborted")
        try:
            self.info = self._publish()
        except BaseException:
            self.abort()
            raise
        super().close()
        return self.info

    def abort(self) -> None:
        """Drop what was written; the object keeps its previous version (or stays absent)."""
        if not self.closed:
            try:
                self._discard()
            finally:
                super().close()

    def close(self) -> None:
        self.abort()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    @abstractmethod
    def _send(self, data: Any) -> None:
        """Take the next bytes (a bytes-like object)."""

    @abstractmethod
    def _publish(self) -> ObjectInfo:
        """Make the written bytes the object, atomically."""

    @abstractmethod
    def _discard(self) -> None:
        """Release what was written without publishing it."""


class _SpooledOutput(ObjectOutput):
    """The fallback of adapters without a streaming write: a temporary file, then ``put``."""

    def __init__(self, adapter: StorageAdapter, key: str) -> None:
        super().__init__()
        self._adapter, self._key = adapter, key
        self._spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE)  # noqa: SIM115 (kept open until commit)

    def _send(self, data: Any) -> None:
        self._spool.write(data)

    def _publish(self) -> ObjectInfo:
        self._spool.seek(0)
        try:
            return self._adapter.put(self._key, self._spool)
        finally:
            self._spool.close()

    def _discard(self) -> None:
        self._spool.close()


class StorageAdapter(dg.ConfigurableResource, ABC):
    """One backend's implementation of the storage contract, as a Dagster resource."""

    target: str = "local"

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI a person or another tool uses for this key (``file://``, ``s3://``, ...)."""

    @abstractmethod
    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        """Write bytes or a readable binary stream atomically, replacing any previous object."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> ObjectInfo:
        """Write ``data`` atomically only if ``key`` is absent, else raise ObjectExistsError.

        The store itself decides (a conditional request, an exclusive link), so of two
        concurrent creators exactly one wins and nothing is ever overwritten.
        """

    @abstractmethod
    def download(self, key: str, sink: BinaryIO) -> None:
        """Stream the object into a writable binary file, never holding it all in memory."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object."""

    @abstractmethod
    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in lexicographic key order, after ``start_after``.

        The iterator pages lazily: a caller that stops early pays only for what it read.
        """

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and modification time; ObjectNotFoundError if absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting an absent key is not an error."""

    @abstractmethod
    def check(self) -> None:
        """A cheap call proving the root (bucket, container, directory) exists and is reachable.

        Raises StorageError with the setting to fix; called when a code location loads.
        """

    def open_output(self, key: str) -> ObjectOutput:
        """A writable stream that becomes the object when committed (see ``ObjectOutput``).

        Backends override this to stream into the destination; this fallback spools to a
        temporary file and ``put``s it.
        """
        check_key(key)
        return _SpooledOutput(self, key)

    def open_input(self, key: str, whole: bool = False) -> pa.NativeFile:
        """The object as a random-access file for ``pyarrow`` readers (Parquet footers, row groups).

        ``whole`` says the reader will take all of it at once (a table, not a stream), so the
        backend may map or prefetch it. Backends override this with positional or ranged reads;
        this fallback downloads into a temporary file.
        """
        import pyarrow as pa

        spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE)  # noqa: SIM115 (returned open)
        try:
            self.download(key, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return pa.PythonFile(spool, mode="r")

    def location(self) -> str | None:
        """Where the store says it keeps the data (a region), or None if it cannot say."""
        return None

    def get(self, key: str) -> bytes:
        """The whole object as bytes."""
        buffer = io.BytesIO()
        self.download(key, buffer)
        return buffer.getvalue()

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True
