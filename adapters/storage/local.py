"""Local filesystem storage: the embedded default, no server.

Atomic writes go to a hidden temporary file in the destination directory, are flushed to disk,
then renamed over the key (``os.replace`` is atomic within one filesystem); ``open_output`` hands
the writer that temporary file itself, so each byte is written once. ``open_input`` is the file
itself: memory-mapped for a whole read (the decoder reads the pages in place), read by position
for a stream (a mapped file counts in the reader's RSS, all of it once a large product was
streamed through). Listing walks directories in key order and skips whole directories that sort
before ``start_after``, so a sensor over date-prefixed keys reads only the newest folders.

Everything stays inside ``root``: no symbolic link below it is ever followed (a link in a landing
zone could point at another environment's data or at ``/etc``). Reading, writing or deleting
through one is refused; listing skips links (dangling ones and loops included) and reports each
once per process instead of failing every sensor tick. Temporary files orphaned by a killed
writer are swept when a listing meets them, once they are older than ``ORPHAN_AGE``.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from adapters.storage.base import (
    CHUNK_SIZE,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectOutput,
    StorageAdapter,
    StorageError,
    check_key,
)

if TYPE_CHECKING:
    import pyarrow as pa

TEMP_PREFIX = ".dataops-tmp-"
ORPHAN_AGE = 3600.0
SYNC_BYTES = 32 * 2**20
LOG = logging.getLogger(__name__)
_REPORTED: set[str] = set()


class LinkRefusedError(StorageError):
    """A key leads through a symbolic link; local storage never follows one."""


class LocalStorage(StorageAdapter):
    """Objects as files under ``root``."""

    root: str

    def _path(self, key: str) -> Path:
        """The key's path, refused if any existing part below ``root`` is a symbolic link."""
        path = Path(self.root)
        for part in check_key(key).split("/"):
            path = path / part
            try:
                is_link = stat.S_ISLNK(os.lstat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                return Path(self.root, *key.split("/"))
            if is_link:
                raise LinkRefusedError(
                    f"'{key}' leads through the symbolic link {path} in local storage "
                    f"{self.root} (target '{self.target}'); links are never followed. "
                    "Replace the link with the file itself."
                )
        return path

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        with self.open_output(key) as output:
            if isinstance(data, bytes | bytearray | memoryview):
                output.write(data)
            else:
                shutil.copyfileobj(data, output, CHUNK_SIZE)
        assert output.info is not None
        return output.info

    def open_output(self, key: str) -> ObjectOutput:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _LocalOutput(self, key, path)

    def open_input(self, key: str, whole: bool = False) -> pa.NativeFile:
        """The file opened without following links, handed to Arrow's native file classes
        through ``/proc/self/fd`` (the very file opened, not its path again): a memory map for
        a whole read, positional reads for a stream. Without ``/proc``, a Python file."""
        import pyarrow as pa

        with self.open(key) as source:
            opened = Path(f"/proc/self/fd/{source.fileno()}")
            if opened.exists():
                return pa.memory_map(str(opened)) if whole else pa.OSFile(str(opened))
            return pa.PythonFile(os.fdopen(os.dup(source.fileno()), "rb"), mode="r")

    def create(self, key: str, data: bytes) -> ObjectInfo:
        """Written to a temporary file, then linked to the key: ``link`` fails if it exists."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.link(temp_name, path)
        except FileExistsError as exc:
            raise ObjectExistsError(
                f"'{key}' already exists in local storage {self.root} (target '{self.target}'); "
                "create never overwrites."
            ) from exc
        finally:
            Path(temp_name).unlink(missing_ok=True)
        return self.stat(key)

    def download(self, key: str, sink: BinaryIO) -> None:
        with self.open(key) as source:
            shutil.copyfileobj(source, sink, CHUNK_SIZE)

    def open(self, key: str) -> BinaryIO:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._not_found(key)
        return os.fdopen(fd, "rb")

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = os.lstat(self._path(key))
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        if not stat.S_ISREG(st.st_mode):
            raise self._not_found(key)
        return _info(key, st)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        folder, _, _ = prefix.rpartition("/")
        if not folder:
            yield from self._walk(Path(self.root), "", prefix, start_after)
            return
        try:
            base = self._path(folder)
        except LinkRefusedError as exc:
            if str(exc) not in _REPORTED:
                _REPORTED.add(str(exc))
                LOG.warning("Local storage lists nothing under '%s': %s", prefix, exc)
            return
        yield from self._walk(base, f"{folder}/", prefix, start_after)

    def _walk(
        self, directory: Path, key_prefix: str, prefix: str, start_after: str | None
    ) -> Iterator[ObjectInfo]:
        try:
            entries = [e for e in os.scandir(directory) if self._listable(e)]
        except (FileNotFoundError, NotADirectoryError):
            return
        keyed = sorted(
            (e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e) for e in entries
        )
        for name, entry in keyed:
            key = key_prefix + name
            if not (key.startswith(prefix) or prefix.startswith(key)):
                continue
            if entry.is_dir(follow_symlinks=False):
                if (
                    start_after is not None
                    and start_after >= key
                    and not start_after.startswith(key)
                ):
                    continue
                yield from self._walk(Path(entry.path), key, prefix, start_after)
            elif start_after is None or key > start_after:
                yield _info(key, entry.stat(follow_symlinks=False))

    def _listable(self, entry: os.DirEntry[str]) -> bool:
        """Regular files and folders; links are reported once, stale temporary files swept."""
        if entry.is_symlink():
            if entry.path not in _REPORTED:
                _REPORTED.add(entry.path)
                LOG.warning(
                    "Local storage skips the symbolic link %s (target '%s'): links are never "
                    "followed. Replace it with the file itself.",
                    entry.path,
                    self.target,
                )
            return False
        if entry.name.startswith(TEMP_PREFIX):
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_AGE:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass
            return False
        return True

    def check(self) -> None:
        root = Path(self.root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Local storage root {root} cannot be created ({exc.strerror}). "
                "Set storage.root (or DATAOPS_LOCAL_ROOT) to a writable directory."
            ) from exc
        if not os.access(root, os.W_OK):
            raise StorageError(
                f"Local storage root {root} is not writable. "
                "Set storage.root (or DATAOPS_LOCAL_ROOT) to a writable directory."
            )

    def _not_found(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(
            f"No object '{key}' in local storage {self.root} (target '{self.target}')."
        )


class _LocalOutput(ObjectOutput):
    """A hidden temporary file beside the destination, flushed to disk and renamed over it.

    Every ``SYNC_BYTES`` written, a second thread flushes what was written so far to disk
    (``fdatasync``, outside the GIL) while the writer goes on, so the ``fsync`` before the
    rename waits for the last few megabytes only, not for the whole object.
    """

    def __init__(self, storage: LocalStorage, key: str, path: Path) -> None:
        super().__init__()
        self._storage, self._key, self._path = storage, key, path
        fd, self._temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        self._file = os.fdopen(fd, "wb")
        self._unsynced = 0
        self._syncer: ThreadPoolExecutor | None = None
        self._syncing: Future[None] | None = None

    def _send(self, data: Any) -> None:
        self._unsynced += self._file.write(data)
        if self._unsynced >= SYNC_BYTES and (self._syncing is None or self._syncing.done()):
            self._file.flush()
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="local-sync")
            self._syncing = self._syncer.submit(os.fdatasync, self._file.fileno())
            self._unsynced = 0

    def _settle(self) -> None:
        """Wait for the background flush, so the file is never closed under it."""
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None

    def _publish(self) -> ObjectInfo:
        self._file.flush()
        self._settle()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp_name, self._path)
        return self._storage.stat(self._key)

    def _discard(self) -> None:
        self._settle()
        self._file.close()
        Path(self._temp_name).unlink(missing_ok=True)


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    """``modified`` is when the file became what it is at this key: a rename counts (ctime)."""
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        modified=datetime.fromtimestamp(max(st.st_mtime, st.st_ctime), tz=UTC),
    )
