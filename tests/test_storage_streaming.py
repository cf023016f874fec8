"""The streaming half of the storage contract, on every target: ``open_output`` publishes whole
or not at all, ``open_input`` is random access for ``pyarrow``."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.storage.base import CHUNK_SIZE, ObjectNotFoundError, StorageAdapter
from config import load_deployment
from platform_core.storage_factory import storage_for

MIB = 1024 * 1024


@pytest.fixture
def storage(target_env: dict[str, str]) -> StorageAdapter:
    return storage_for(load_deployment(target_env))


@pytest.fixture(scope="module")
def payload() -> bytes:
    """More than one upload part, so multipart and block uploads are exercised."""
    return os.urandom(CHUNK_SIZE + 3 * MIB + 17)


def test_streamed_write_is_published_on_commit(storage: StorageAdapter, payload: bytes) -> None:
    with storage.open_output("stream/big.bin") as output:
        for start in range(0, len(payload), MIB):
            output.write(payload[start : start + MIB])
        assert not storage.exists("stream/big.bin")
    assert output.info is not None
    assert output.info.size == len(payload) == storage.stat("stream/big.bin").size
    assert output.info.key == "stream/big.bin"
    assert storage.get("stream/big.bin") == payload


@pytest.mark.parametrize("after", [MIB, CHUNK_SIZE + 2 * MIB])
def test_failed_streamed_write_keeps_the_previous_version(
    storage: StorageAdapter, payload: bytes, after: int
) -> None:
    """Before and after the first part went up, an exception publishes nothing."""
    storage.put("stream/safe.bin", b"previous")
    with (
        pytest.raises(RuntimeError, match="writer broke"),
        storage.open_output("stream/safe.bin") as output,
    ):
        output.write(payload[:after])
        raise RuntimeError("writer broke")
    with (
        pytest.raises(RuntimeError, match="writer broke"),
        storage.open_output("stream/new.bin") as output,
    ):
        output.write(payload[:after])
        raise RuntimeError("writer broke")
    assert storage.get("stream/safe.bin") == b"previous"
    assert [info.key for info in storage.list("stream/")] == ["stream/safe.bin"]
    with pytest.raises(ValueError):
        output.write(b"after the abort")


def test_parquet_streams_in_and_is_read_by_range(storage: StorageAdapter) -> None:
    table = pa.table(
        {"n": pa.array(range(30_000), pa.int64()), "s": [f"r{i}" for i in range(30_000)]}
    )
    with (
        storage.open_output("stream/table.parquet") as output,
        pq.ParquetWriter(output, table.schema) as writer,
    ):
        for batch in table.to_batches(max_chunksize=10_000):
            writer.write_batch(batch)
    parquet = pq.ParquetFile(storage.open_input("stream/table.parquet"))
    assert parquet.metadata.num_row_groups == 3
    assert parquet.read_row_group(2, columns=["n"]).column("n").to_pylist() == list(
        range(20_000, 30_000)
    )
    assert pq.read_table(storage.open_input("stream/table.parquet")).equals(table)
    source = storage.open_input("stream/table.parquet")
    source.seek(-4, os.SEEK_END)
    assert source.read(4) == b"PAR1"
    assert source.size() == storage.stat("stream/table.parquet").size
    whole = storage.open_input("stream/table.parquet", whole=True)
    assert whole.size() == source.size()
    assert pq.read_table(whole).equals(table)


def test_small_empty_unfinished_and_missing(storage: StorageAdapter) -> None:
    """One plain upload below a part; an empty object; a writer closed without commit publishes
    nothing; a missing key is not found; a bad key is refused before any upload."""
    with storage.open_output("stream/small.txt") as output:
        output.write(b"small")
    with storage.open_output("stream/empty.txt"):
        pass
    unfinished = storage.open_output("stream/closed.bin")
    unfinished.write(b"half")
    unfinished.close()
    assert storage.get("stream/small.txt") == b"small"
    assert storage.get("stream/empty.txt") == b""
    assert not storage.exists("stream/closed.bin")
    for whole in (False, True):
        with pytest.raises(ObjectNotFoundError, match="nothing/here"):
            storage.open_input("nothing/here", whole=whole)
    with pytest.raises(ValueError):
        storage.open_output("../escape")
