"""Arrow products: ``pyarrow.Table`` and ``RecordBatchReader`` written row group by row group,
read back as the input's annotation asks, partition ranges streamed partition after partition."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.storage.local import LocalStorage
from platform_core.dictionary_encoding import dictionary_columns
from platform_core.io_manager import DataProductIOManager

SCHEMA = pa.schema([("n", pa.int64()), ("label", pa.string())])


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=str(tmp_path / "storage"))


@pytest.fixture
def resources(storage: LocalStorage) -> dict[str, DataProductIOManager]:
    return {"io_manager": DataProductIOManager(storage=storage, environment="test")}


def batches(count: int, rows: int, fail_at: int | None = None) -> Iterator[pa.RecordBatch]:
    for number in range(count):
        if number == fail_at:
            raise RuntimeError("source broke mid-stream")
        start = number * rows
        values = range(start, start + rows)
        yield pa.record_batch([pa.array(values, pa.int64()), [f"r{v}" for v in values]], SCHEMA)


def load(
    storage: LocalStorage, key: dg.AssetKey, wanted: type, partitions: list[str] | None = None
):
    manager = DataProductIOManager(storage=storage, environment="test")
    extra = {}
    if partitions is not None:
        extra = {
            "asset_partitions_def": dg.StaticPartitionsDefinition(partitions),
            "asset_partition_key_range": dg.PartitionKeyRange(partitions[0], partitions[-1]),
        }
    context = dg.build_input_context(
        asset_key=key, dagster_type=dg.PythonObjectDagsterType(wanted), **extra
    )
    return manager.load_input(context)


def test_reader_product_is_written_in_row_groups_and_read_back_as_each_type(
    storage: LocalStorage, resources: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("platform_core.io_manager.ROW_GROUP_ROWS", 2_500)

    @dg.asset(key_prefix="team")
    def streamed() -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(SCHEMA, batches(6, 1_000))

    @dg.asset(key_prefix="team")
    def summed(streamed: pa.RecordBatchReader) -> pa.Table:
        total = sum(pa.compute.sum(batch.column("n")).as_py() for batch in streamed)
        return pa.table({"total": [total]})

    result = dg.materialize([streamed, summed], resources=resources)
    metadata = result.asset_materializations_for_node("team__streamed")[0].metadata
    assert metadata["dagster/row_count"].value == 6_000
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == ["n", "label"]
    path = Path(storage.root, "test", "team", "streamed.parquet")
    stored = pq.ParquetFile(path).metadata
    assert [stored.row_group(i).num_rows for i in range(stored.num_row_groups)] == [
        2_500,
        2_500,
        1_000,
    ]
    assert load(storage, summed.key, pa.Table).column("total").to_pylist() == [sum(range(6_000))]
    expected = pa.Table.from_batches(list(batches(6, 1_000)))
    assert load(storage, streamed.key, pa.Table).equals(expected)
    frame = load(storage, streamed.key, pd.DataFrame)
    assert isinstance(frame, pd.DataFrame)
    assert frame["n"].tolist() == list(range(6_000))
    reader = load(storage, streamed.key, pa.RecordBatchReader)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.read_all().equals(expected)


def test_table_product_round_trips_with_its_metadata(
    storage: LocalStorage, resources: dict
) -> None:
    table = pa.Table.from_batches(list(batches(2, 50)))

    @dg.asset(key_prefix="team")
    def tabled() -> pa.Table:
        return table

    result = dg.materialize([tabled], resources=resources)
    metadata = result.asset_materializations_for_node("team__tabled")[0].metadata
    assert metadata["dagster/row_count"].value == 100
    assert metadata["dataops/byte_size"].value == storage.stat("test/team/tabled.parquet").size
    assert load(storage, tabled.key, pa.Table).equals(table)


def test_a_reader_failing_mid_stream_keeps_the_previous_version(
    storage: LocalStorage, resources: dict
) -> None:
    attempt = {"broken": False}

    @dg.asset(key_prefix="team")
    def fragile() -> pa.RecordBatchReader:
        fail_at = 3 if attempt["broken"] else None
        return pa.RecordBatchReader.from_batches(SCHEMA, batches(5, 100, fail_at))

    assert dg.materialize([fragile], resources=resources).success
    attempt["broken"] = True
    assert not dg.materialize([fragile], resources=resources, raise_on_error=False).success
    assert load(storage, fragile.key, pa.Table).num_rows == 500
    assert [p.name for p in Path(storage.root, "test", "team").iterdir()] == ["fragile.parquet"]


def test_a_partition_range_streams_partition_after_partition(
    storage: LocalStorage, resources: dict
) -> None:
    """The reader yields each partition's batches in turn (never one concatenated table), and
    partitions whose schemas differ come out in one unified schema."""
    regions = ["emea", "amer", "apac", "mena", "nord", "sud"]
    rows = 1_000

    @dg.asset(key_prefix="team", partitions_def=dg.StaticPartitionsDefinition(regions))
    def sales(context: dg.AssetExecutionContext) -> pa.Table:
        number = regions.index(context.partition_key)
        table = pa.Table.from_batches(list(batches(1, rows)))
        table = table.set_column(0, "n", pa.compute.add(table.column("n"), number * rows))
        if number == 5:
            table = table.append_column("extra", pa.array([1.5] * rows))
        return table

    for region in regions:
        assert dg.materialize([sales], partition_key=region, resources=resources).success
    reader = load(storage, sales.key, pa.RecordBatchReader, regions)
    assert isinstance(reader, pa.RecordBatchReader)
    streamed = list(reader)
    assert [batch.column("n")[0].as_py() for batch in streamed] == [
        number * rows for number in range(len(regions))
    ]
    whole = pa.Table.from_batches(streamed)
    assert whole.schema.names == ["n", "label", "extra"]
    assert whole.column("n").to_pylist() == list(range(len(regions) * rows))
    assert whole.column("extra").null_count == 5 * rows


def test_mostly_distinct_columns_are_written_plain_and_repeated_ones_with_a_dictionary(
    storage: LocalStorage, resources: dict
) -> None:
    """Ids and measures skip the dictionary attempt, codes and categoricals keep it; the
    product reads back equal either way."""
    rows = 200_000
    frame = pd.DataFrame(
        {
            "id": range(rows),
            "amount": [v * 0.37 for v in range(rows)],
            "code": [f"c{v % 7}" for v in range(rows)],
            "status": pd.Categorical([("new", "paid")[v % 2] for v in range(rows)]),
            "flag": [v % 3 == 0 for v in range(rows)],
        }
    )

    @dg.asset(key_prefix="team")
    def mixed() -> pd.DataFrame:
        return frame

    assert dg.materialize([mixed], resources=resources).success
    column_chunks = pq.ParquetFile(Path(storage.root, "test/team/mixed.parquet")).metadata
    encodings = {
        column_chunks.schema.column(i).name: column_chunks.row_group(0).column(i).encodings
        for i in range(column_chunks.num_columns)
    }
    assert "RLE_DICTIONARY" not in encodings["id"]
    assert "RLE_DICTIONARY" not in encodings["amount"]
    assert "RLE_DICTIONARY" in encodings["code"]
    assert "RLE_DICTIONARY" in encodings["status"]
    pd.testing.assert_frame_equal(
        load(storage, dg.AssetKey(["team", "mixed"]), pd.DataFrame), frame
    )


def test_nested_and_empty_products_keep_the_default_encodings() -> None:
    nested = pa.table({"id": range(1000), "tags": [[f"t{v}"] for v in range(1000)]})
    assert dictionary_columns(nested) is True
    assert dictionary_columns(SCHEMA.empty_table()) is True
    assert dictionary_columns(pa.table({"id": range(1000), "n": [1] * 1000})) == ["n"]
