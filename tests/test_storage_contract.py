"""The storage contract, run unchanged against the adapter every target resolves to."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest

from adapters.storage.base import ObjectExistsError, ObjectNotFoundError, StorageAdapter
from config import load_deployment
from platform_core.storage_factory import storage_for


@pytest.fixture
def storage(target_env: dict[str, str]) -> StorageAdapter:
    return storage_for(load_deployment(target_env))


def test_put_then_get_bytes(storage: StorageAdapter) -> None:
    info = storage.put("dev/sales/orders.parquet", b"first")
    assert storage.get("dev/sales/orders.parquet") == b"first"
    assert info.key == "dev/sales/orders.parquet"
    assert info.size == 5


def test_put_stream_and_read_stream(storage: StorageAdapter) -> None:
    payload = bytes(range(256)) * 40_000
    storage.put("big/object.bin", io.BytesIO(payload))
    sink = io.BytesIO()
    storage.download("big/object.bin", sink)
    assert sink.getvalue() == payload
    with storage.open("big/object.bin") as stream:
        assert stream.read() == payload


def test_overwrite_replaces_content_and_etag(storage: StorageAdapter) -> None:
    first = storage.put("k/v.txt", b"one")
    second = storage.put("k/v.txt", b"two-two")
    assert storage.get("k/v.txt") == b"two-two"
    assert second.etag != first.etag
    assert storage.stat("k/v.txt").size == 7


def test_stat_reports_size_etag_and_recent_modification(storage: StorageAdapter) -> None:
    storage.put("a/b.bin", b"12345")
    info = storage.stat("a/b.bin")
    assert info.size == 5
    assert info.etag
    assert info.modified.tzinfo is not None
    assert abs(datetime.now(UTC) - info.modified) < timedelta(minutes=5)


def test_missing_key_raises_not_found(storage: StorageAdapter) -> None:
    with pytest.raises(ObjectNotFoundError, match="nothing/here"):
        storage.get("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        storage.stat("nothing/here")
    assert not storage.exists("nothing/here")


def test_exists_and_delete(storage: StorageAdapter) -> None:
    storage.put("x/y.txt", b"y")
    assert storage.exists("x/y.txt")
    storage.delete("x/y.txt")
    assert not storage.exists("x/y.txt")
    storage.delete("x/y.txt")


def test_list_is_lexicographic_under_prefix(storage: StorageAdapter) -> None:
    keys = ["land/b.csv", "land/a/2.csv", "land/a/1.csv", "land/a-z.csv", "land/a0.csv", "other/c"]
    for key in keys:
        storage.put(key, key.encode())
    listed = [info.key for info in storage.list("land/")]
    assert listed == sorted(k for k in keys if k.startswith("land/"))
    assert [i.size for i in storage.list("land/")] == [len(k) for k in listed]


def test_list_resumes_after_a_key(storage: StorageAdapter) -> None:
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        for n in (1, 2):
            storage.put(f"landing/{day}/orders-{n}.csv", b"x")
    after = [i.key for i in storage.list("landing/", start_after="landing/2026-11-02/orders-1.csv")]
    assert after == [
        "landing/2026-11-02/orders-2.csv",
        "landing/2026-11-03/orders-1.csv",
        "landing/2026-11-03/orders-2.csv",
    ]
    assert list(storage.list("landing/", start_after="landing/2026-11-03/orders-2.csv")) == []


def test_list_with_partial_name_prefix(storage: StorageAdapter) -> None:
    for key in ("p/orders-1", "p/orders-2", "p/other"):
        storage.put(key, b"1")
    assert [i.key for i in storage.list("p/ord")] == ["p/orders-1", "p/orders-2"]
    assert list(storage.list("nothing/")) == []


def test_uri_names_the_key(storage: StorageAdapter) -> None:
    assert storage.uri("dev/sales/orders.parquet").endswith("dev/sales/orders.parquet")


def test_failed_stream_write_keeps_previous_version(storage: StorageAdapter) -> None:
    storage.put("safe/data.bin", b"previous")

    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:
            if self.sent > 3 * 1024 * 1024:
                raise OSError("source broke mid-write")
            n = len(buffer)
            buffer[:n] = b"z" * n
            self.sent += n
            return n

    with pytest.raises(OSError, match="source broke"):
        storage.put("safe/data.bin", io.BufferedReader(Exploding()))
    assert storage.get("safe/data.bin") == b"previous"
    assert [i.key for i in storage.list("safe/")] == ["safe/data.bin"]


def test_readers_never_see_a_partial_object(storage: StorageAdapter) -> None:
    old, new = b"a" * 2_000_000, b"b" * 2_000_000
    storage.put("race/obj", old)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            data = storage.get("race/obj")
            seen.add(data[:1] + data[-1:])

    reader = threading.Thread(target=read_loop)
    reader.start()
    for _ in range(5):
        storage.put("race/obj", new)
        storage.put("race/obj", old)
    stop.set()
    reader.join()
    assert seen <= {b"aa", b"bb"}


def test_keys_cannot_escape_the_root(storage: StorageAdapter) -> None:
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            storage.put(bad, b"x")


def test_create_writes_only_an_absent_key(storage: StorageAdapter) -> None:
    info = storage.create("audit/chain/00000000.jsonl", b"first")
    assert (info.key, info.size) == ("audit/chain/00000000.jsonl", 5)
    with pytest.raises(ObjectExistsError, match="00000000.jsonl"):
        storage.create("audit/chain/00000000.jsonl", b"second")
    assert storage.get("audit/chain/00000000.jsonl") == b"first"
    assert [i.key for i in storage.list("audit/")] == ["audit/chain/00000000.jsonl"]
