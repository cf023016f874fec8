"""The storage contract every backend implements, in the spirit of ``pyarrow.fs``: a flat key space.

Keys are ``/``-separated relative paths (``dev/sales/orders.parquet``); an adapter maps them onto
its own root (a directory, a bucket and prefix, a container). Writes are atomic: a reader sees
either the previous object or the new one, never part of one. ``list`` returns keys in
lexicographic order and can resume after any key, which is what makes sensors O(new).
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

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
