"""Arrow schemas as Delta schema strings: the ``schemaString`` of a Delta Sharing metadata."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

PRIMITIVES = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "byte"),
    (pa.types.is_int16, "short"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_int64, "long"),
    (pa.types.is_uint8, "short"),
    (pa.types.is_uint16, "integer"),
    (pa.types.is_uint32, "long"),
    (pa.types.is_uint64, "long"),
    (pa.types.is_float16, "float"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_binary, "binary"),
    (pa.types.is_large_binary, "binary"),
    (pa.types.is_date, "date"),
)


def delta_type(arrow: pa.DataType) -> Any:
    """The Delta (Spark) type of an Arrow type; ValueError for one Delta cannot express."""
    if pa.types.is_dictionary(arrow):
        return delta_type(arrow.value_type)
    if pa.types.is_timestamp(arrow):
        return "timestamp" if arrow.tz else "timestamp_ntz"
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return {
            "type": "array",
            "elementType": delta_type(arrow.value_type),
            "containsNull": True,
        }
    if pa.types.is_struct(arrow):
        return {"type": "struct", "fields": [field(f) for f in arrow]}
    if pa.types.is_map(arrow):
        return {
            "type": "map",
            "keyType": delta_type(arrow.key_type),
            "valueType": delta_type(arrow.item_type),
            "valueContainsNull": True,
        }
    for matches, name in PRIMITIVES:
        if matches(arrow):
            return name
    raise ValueError(f"Arrow type {arrow} has no Delta equivalent")


def field(arrow: pa.Field) -> dict[str, Any]:
    return {"name": arrow.name, "type": delta_type(arrow.type), "nullable": True, "metadata": {}}


def schema_string(schema: pa.Schema, partition_column: str | None = None) -> str:
    """The Delta schema of ``schema``, with a string ``partition_column`` appended if given."""
    fields = [field(f) for f in schema]
    if partition_column is not None:
        fields.append(
            {"name": partition_column, "type": "string", "nullable": True, "metadata": {}}
        )
    return json.dumps({"type": "struct", "fields": fields})
