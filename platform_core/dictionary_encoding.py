"""Which columns of a data product Parquet dictionary-encodes, decided from a sample.

Parquet writers try a dictionary for every column and fall back to plain encoding once a column
chunk's dictionary outgrows its page (1 MiB): for ids, measurements and timestamps, nearly all
distinct, the hashing is wasted and the half-dictionary chunk is larger than a plain one. On a
frame of ids, floats, a categorical and timestamps that attempt was a third of the encoding time.
So the first ``SAMPLE_ROWS`` of the first piece decide: a flat column whose sample is more than
``MAX_DISTINCT_FRACTION`` distinct would overflow its dictionary within a row group anyway and is
written plain; every other column (categoricals, codes, flags, repeated strings) keeps the
dictionary. The file is standard Parquet either way; only its encodings differ.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_ROWS = 64 * 1024
MAX_DISTINCT_FRACTION = 0.5


def dictionary_columns(sample: pa.Table) -> bool | list[str]:
    """``use_dictionary`` for ``pq.ParquetWriter``: True (every column), or the columns to
    dictionary-encode. Nested schemas keep the writer's default (True)."""
    if any(pa.types.is_nested(field.type) for field in sample.schema):
        return True
    head = sample.slice(0, SAMPLE_ROWS)
    plain = {
        field.name
        for field, column in zip(head.schema, head.columns, strict=True)
        if head.num_rows and _mostly_distinct(column, head.num_rows)
    }
    if not plain:
        return True
    return [name for name in sample.schema.names if name not in plain]


def _mostly_distinct(column: pa.ChunkedArray, rows: int) -> bool:
    if pa.types.is_dictionary(column.type) or pa.types.is_boolean(column.type):
        return False
    try:
        distinct = pc.count_distinct(column, mode="all").as_py()
    except pa.ArrowNotImplementedError:
        return False
    return distinct > MAX_DISTINCT_FRACTION * rows
