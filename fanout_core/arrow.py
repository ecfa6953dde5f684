"""The Arrow schema, computed from the record contract. The only shared module that imports pyarrow.

The producer and consumer never import this module, so their packages never ship pyarrow.
"""

from __future__ import annotations

import pyarrow as pa

from fanout_core.contract import SCHEMA_VERSION, record_fields

# ``element`` is the Parquet spec's name for list items; Spark and Athena expect it and
# reject int32 where the data is int64.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "list<int64>": pa.list_(pa.field("element", pa.int64(), nullable=False)),
}

SCHEMA_VERSION_KEY = b"fanout.schema_version"


def arrow_schema() -> pa.Schema:
    """The stored record's Arrow schema, with the schema version in its metadata."""
    columns = []
    for name, field in record_fields().items():
        try:
            arrow_type = _ARROW_TYPES[field.arrow_type]
        except KeyError as exc:
            raise TypeError(
                f"field {name!r} declares arrow_type {field.arrow_type!r}; "
                f"known types: {', '.join(sorted(_ARROW_TYPES))}"
            ) from exc
        columns.append(pa.field(name, arrow_type, nullable=not field.required))
    return pa.schema(columns, metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()})
