"""An environment's audit records as JSON lines, CSV or Parquet, oldest first.

Columns are the record's fields then its place in its chain (``chain``, ``seq``, ``hash``), so
an exported row can be traced back to the stored record ``dataops audit verify`` checked.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.storage.base import StorageAdapter
from platform_core.audit.record import FIELDS
from platform_core.audit.verify import stored_chains

COLUMNS = (*FIELDS, "chain", "seq", "hash")
FORMATS = ("jsonl", "csv", "parquet")
SCHEMA = pa.schema(
    [
        pa.field(name, pa.int64() if name in ("rows", "bytes", "seq") else pa.string())
        for name in COLUMNS
    ]
)


def audit_records(
    storage: StorageAdapter, environment: str, since: datetime | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The readable records at or after ``since`` by time, and how many lines were unreadable."""
    records, unreadable = [], 0
    for lines in stored_chains(storage, environment).values():
        for line in lines:
            record = _exportable(line.record)
            if record is None:
                unreadable += 1
            elif since is None or datetime.fromisoformat(record["time"]) >= since:
                records.append(record)
    records.sort(key=lambda record: (record["time"], str(record["chain"]), record["seq"] or 0))
    return records, unreadable


def _exportable(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record's columns if each has its type (a time, whole numbers, text), else None."""
    if stored is None:
        return None
    record = {name: stored.get(name) for name in COLUMNS}
    try:
        datetime.fromisoformat(str(record["time"]))
    except ValueError:
        return None
    for name, value in record.items():
        number = SCHEMA.field(name).type == pa.int64()
        expected = int if number else str
        if value is not None and (type(value) is not expected):
            return None
    return record


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> None:
    """One ASCII line per record: a requested name holding a Unicode line separator (U+2028, NEL)
    cannot split a record for a reader that splits on every line boundary."""
    for record in records:
        out.write(json.dumps(record) + "\n")


def write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(records)


def write_parquet(records: list[dict[str, Any]], path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
