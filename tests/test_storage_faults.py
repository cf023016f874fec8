"""Object stores whose server dies mid-transfer, on the real local servers (moto S3, Azurite,
fake-gcs-server) behind a ``KillableProxy``: the operation fails with one clear StorageError,
nothing half-written becomes visible, the previous version stays readable, and the same call
succeeds once the server is back.

Adapters come from ``storage_for`` as a code location gets them, with a shorter retry policy so
that retries run out in seconds rather than minutes.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator

import pytest
from killable_proxy import KillableProxy
from servers import server_url, with_endpoint

from adapters.storage.base import ObjectNotFoundError, StorageError
from adapters.storage.object_store import ObjectStore
from adapters.storage.retry import RetryPolicy
from config import load_deployment
from platform_core.storage_factory import storage_for

OBJECT_STORE_TARGETS = ("aws", "azure", "gcp")
QUICK_RETRY = RetryPolicy(attempts=2, initial_delay=0.1, max_delay=0.5, read_timeout=5.0)
SIZE = 20 * 1024 * 1024
KEY = "faults/orders.parquet"


@pytest.fixture(params=OBJECT_STORE_TARGETS)
def target_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.getfixturevalue(f"{request.param}_target_env")


@pytest.fixture
def proxy(target_env: dict[str, str]) -> Iterator[KillableProxy]:
    killable = KillableProxy(server_url(target_env))
    yield killable
    killable.close()


@pytest.fixture
def store(
    target_env: dict[str, str], proxy: KillableProxy, monkeypatch: pytest.MonkeyPatch
) -> ObjectStore:
    """The target's adapter, talking to its server through the proxy."""
    env = with_endpoint(target_env, proxy.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    adapter = storage_for(load_deployment(env), check=False)
    assert isinstance(adapter, ObjectStore)
    fields = {name: getattr(adapter, name) for name in type(adapter).model_fields}
    return type(adapter)(**{**fields, "retry": QUICK_RETRY})


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(SIZE)


def assert_failed_cleanly(error: StorageError, store: ObjectStore) -> None:
    """One line naming the target, the bucket, the key and the way to fix it; no SDK dump."""
    message = str(error)
    assert type(error) is StorageError
    assert "Cannot reach" in message
    assert f"target '{store.target}'" in message
    assert store.bucket in message
    assert KEY in message
    assert "\n" not in message and "Traceback" not in message


def test_server_dying_mid_write_keeps_the_previous_version(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    store.put(KEY, b"previous version")
    proxy.kill_after(up=SIZE // 2)
    with pytest.raises(StorageError) as caught:
        store.put(KEY, io.BytesIO(payload))
    assert proxy.kills == 1
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    assert store.get(KEY) == b"previous version"
    assert [info.key for info in store.list("faults/")] == [KEY]
    info = store.put(KEY, io.BytesIO(payload))
    assert info.size == SIZE
    assert store.get(KEY) == payload


def test_server_dying_mid_write_of_a_new_key_leaves_nothing(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    proxy.kill_after(up=SIZE // 2)
    with pytest.raises(StorageError) as caught:
        store.put(KEY, io.BufferedReader(io.BytesIO(payload)))
    assert proxy.kills == 1
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    assert not store.exists(KEY)
    assert list(store.list("faults/")) == []
    store.put(KEY, io.BufferedReader(io.BytesIO(payload)))
    assert store.get(KEY) == payload


def test_server_dying_mid_download_fails_cleanly(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    store.put(KEY, io.BytesIO(payload))
    proxy.kill_after(down=SIZE // 2)
    with pytest.raises(StorageError) as caught:
        store.download(KEY, io.BytesIO())
    assert proxy.kills == 1
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    assert store.get(KEY) == payload


def test_server_dying_mid_stream_fails_the_read_cleanly(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    store.put(KEY, io.BytesIO(payload))
    with store.open(KEY) as stream:
        head = stream.read(1024 * 1024)
        proxy.kill()
        with pytest.raises(StorageError) as caught:
            while stream.read(1024 * 1024):
                pass
    assert head == payload[: len(head)]
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    with store.open(KEY) as stream:
        assert stream.read() == payload


def test_server_down_at_a_stat_is_not_mistaken_for_a_missing_object(
    store: ObjectStore, proxy: KillableProxy
) -> None:
    store.put(KEY, b"here")
    proxy.kill()
    with pytest.raises(StorageError) as caught:
        store.stat(KEY)
    assert not isinstance(caught.value, ObjectNotFoundError)
    assert_failed_cleanly(caught.value, store)
    proxy.revive()
    assert store.exists(KEY)


def test_killed_writer_never_shows_readers_a_partial_object(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    """Readers polling while a write dies see the old bytes or a clean error, nothing else."""
    old = b"o" * (1024 * 1024)
    store.put(KEY, old)
    seen: set[str] = set()
    reading, done = threading.Event(), threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                seen.add("old" if store.get(KEY) == old else "other bytes")
            except StorageError as error:
                seen.add(type(error).__name__)
            reading.set()

    reader = threading.Thread(target=poll)
    reader.start()
    assert reading.wait(timeout=30)
    proxy.kill_after(up=SIZE // 2)
    try:
        with pytest.raises(StorageError):
            store.put(KEY, io.BytesIO(payload))
    finally:
        done.set()
        reader.join()
    proxy.revive()
    assert store.get(KEY) == old
    assert "old" in seen
    assert seen <= {"old", "StorageError"}


def stream_in(store: ObjectStore, payload: bytes) -> None:
    with store.open_output(KEY) as output:
        for start in range(0, len(payload), 1024 * 1024):
            output.write(payload[start : start + 1024 * 1024])


def test_server_dying_mid_streamed_write_publishes_nothing(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    """The streaming upload (multipart, blocks, resumable) is dropped, not completed."""
    store.put(KEY, b"previous version")
    proxy.kill_after(up=SIZE // 2)
    with pytest.raises(StorageError) as caught:
        stream_in(store, payload)
    assert proxy.kills == 1
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    assert store.get(KEY) == b"previous version"
    assert [info.key for info in store.list("faults/")] == [KEY]
    stream_in(store, payload)
    assert store.get(KEY) == payload


def test_server_dying_mid_ranged_read_fails_cleanly(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    store.put(KEY, io.BytesIO(payload))
    source = store.open_input(KEY)
    assert source.read(1024) == payload[:1024]
    proxy.kill()
    with pytest.raises(StorageError) as caught:
        source.read(1024 * 1024)
    assert_failed_cleanly(caught.value, store)
    proxy.revive()
    assert source.read(1024) == payload[1024:2048]


def test_server_dying_mid_whole_read_fails_cleanly(
    store: ObjectStore, proxy: KillableProxy, payload: bytes
) -> None:
    """A whole read (one request through Arrow's client on Azure and GCS, a ranged request on
    S3) cut halfway: one clear StorageError, never a short file."""
    store.put(KEY, io.BytesIO(payload))
    proxy.kill_after(down=SIZE // 2)
    with pytest.raises(StorageError) as caught:
        store.open_input(KEY, whole=True).read()
    assert proxy.kills == 1
    assert_failed_cleanly(caught.value, store)

    proxy.revive()
    assert store.open_input(KEY, whole=True).read() == payload
