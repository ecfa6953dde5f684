"""The record contract: one declaration, two schemas that agree, every bad input rejected."""

from __future__ import annotations

import io
import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from marshmallow import Schema, ValidationError, fields

from fanout_core.arrow import SCHEMA_VERSION_KEY, arrow_schema
from fanout_core.contract import (
    INT64_MAX,
    INT64_MIN,
    SCHEMA_VERSION,
    StoredRecord,
    record_fields,
    validate_reading,
    validate_stored,
)
from fanout_core.errors import InvalidDocumentError

GOOD = {"device_id": "dev-00001", "datetime": "2020-01-27T07:07:27.744489", "values": [2210, 13260]}


def test_arrow_schema_has_a_column_for_every_declared_field_in_order():
    # given the declaration, when the Arrow schema is derived
    schema = arrow_schema()
    # then names, order and nullability follow the marshmallow fields
    declared = StoredRecord().fields
    assert schema.names == list(declared)
    for name, field in declared.items():
        assert schema.field(name).nullable is (not field.required)


def test_arrow_schema_types_values_as_int64_lists_with_spec_element_name():
    schema = arrow_schema()
    values = schema.field("values").type
    assert pa.types.is_list(values)
    assert values.value_field.name == "element"
    assert values.value_type == pa.int64()
    assert schema.field("datetime").type == pa.string()
    assert schema.field("descriptor_id").type == pa.string()
    assert schema.metadata[SCHEMA_VERSION_KEY] == str(SCHEMA_VERSION).encode()


def test_parquet_written_with_the_schema_reads_back_in_pandas_as_int64_arrays():
    # given a stored record validated by the contract
    record = validate_stored({**GOOD, "values": [INT64_MIN, 0, INT64_MAX], "descriptor_id": "d1"})
    # when written to parquet with the derived schema and read back by pandas
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([record], schema=arrow_schema()), buffer)
    buffer.seek(0)
    frame = pd.read_parquet(buffer)
    # then the values survive as int64, with the spec's list naming in the file
    assert frame.loc[0, "values"].dtype == "int64"
    assert frame.loc[0, "values"].tolist() == [INT64_MIN, 0, INT64_MAX]
    assert frame.loc[0, "datetime"] == GOOD["datetime"]
    buffer.seek(0)
    parquet_schema = pq.ParquetFile(buffer).schema
    assert "element" in str(parquet_schema)


@pytest.mark.parametrize(
    "document",
    [
        GOOD,
        {**GOOD, "values": []},
        {**GOOD, "datetime": "2020-01-27T07:07:27"},
        {**GOOD, "datetime": "2020-01-27T07:07:27Z"},
        {**GOOD, "datetime": "2020-01-27T07:07:27.5+02:00"},
        {**GOOD, "values": [INT64_MIN, INT64_MAX]},
        {**GOOD, "device_id": "A.b_c-9"},
    ],
    ids=[
        "seed-format",
        "empty-values",
        "no-fraction",
        "utc-z",
        "offset",
        "int64-bounds",
        "device-chars",
    ],
)
def test_validate_reading_accepts_good_documents_unchanged(document):
    assert validate_reading(dict(document)) == document


BAD_CASES = [
    ({k: v for k, v in GOOD.items() if k != "device_id"}, "device_id", "Missing"),
    ({k: v for k, v in GOOD.items() if k != "datetime"}, "datetime", "Missing"),
    ({k: v for k, v in GOOD.items() if k != "values"}, "values", "Missing"),
    ({**GOOD, "extra": 1}, "extra", "Unknown field"),
    ({**GOOD, "datetime": "27/01/2020 07:07"}, "datetime", "not an ISO-8601"),
    ({**GOOD, "datetime": "2020-02-30T07:07:27"}, "datetime", "not a valid date-time"),
    ({**GOOD, "datetime": 1580108847}, "datetime", "Not a valid string"),
    ({**GOOD, "values": [1, 2.5]}, "values", "Element 1 is a float"),
    ({**GOOD, "values": [1.0]}, "values", "Element 0 is a float"),
    ({**GOOD, "values": ["3"]}, "values", "Element 0 is a string"),
    ({**GOOD, "values": [True]}, "values", "Element 0 is a boolean"),
    ({**GOOD, "values": [0, None]}, "values", "Element 1 is null"),
    ({**GOOD, "values": [INT64_MAX + 1]}, "values", "outside int64"),
    ({**GOOD, "values": [7, INT64_MIN - 1]}, "values", "Element 1"),
    ({**GOOD, "values": "1,2"}, "values", "Not a list"),
    ({**GOOD, "values": None}, "values", "null"),
    ({**GOOD, "device_id": ".."}, "device_id", "not a device id"),
    ({**GOOD, "device_id": "a/b"}, "device_id", "not a device id"),
]


@pytest.mark.parametrize(
    ("document", "field", "message"),
    BAD_CASES,
    ids=[
        "missing-device",
        "missing-datetime",
        "missing-values",
        "extra-key",
        "not-iso",
        "impossible-date",
        "datetime-number",
        "float",
        "integral-float",
        "string",
        "boolean",
        "null",
        "above-int64",
        "below-int64",
        "values-string",
        "values-null",
        "dotdot-device",
        "slash-device",
    ],
)
def test_validate_reading_rejects_bad_documents_naming_the_field(document, field, message):
    with pytest.raises(InvalidDocumentError) as caught:
        validate_reading(document)
    assert field in caught.value.errors
    assert caught.value.detail.startswith(f"{field}:") or f"; {field}:" in caught.value.detail
    assert message in caught.value.detail


def test_validate_reading_rejects_a_document_that_is_not_an_object():
    with pytest.raises(InvalidDocumentError, match="list, not an object"):
        validate_reading([GOOD])


def test_int64_list_field_agrees_with_marshmallow_per_element_list_on_random_inputs():
    # marshmallow's own List(Integer(strict=True)) plus range checks is the reference
    class Reference(Schema):
        values = fields.List(fields.Integer(strict=True), required=True)

    rng = random.Random(1)
    pool = [
        0,
        1,
        -1,
        INT64_MAX,
        INT64_MIN,
        INT64_MAX + 1,
        INT64_MIN - 1,
        1.0,
        0.5,
        "1",
        True,
        False,
        None,
        [1],
        {"a": 1},
    ]
    for _ in range(2000):
        values = [rng.choice(pool) for _ in range(rng.randrange(0, 6))]
        try:
            Reference().load({"values": values})
            reference_ok = all(type(v) is int and INT64_MIN <= v <= INT64_MAX for v in values)
        except ValidationError:
            reference_ok = False
        try:
            validate_reading({**GOOD, "values": values})
            ours_ok = True
        except InvalidDocumentError:
            ours_ok = False
        assert ours_ok == reference_ok, values


def test_record_fields_are_the_stored_columns_with_their_arrow_types():
    declared = {name: field.arrow_type for name, field in record_fields().items()}
    assert declared == {
        "device_id": "string",
        "datetime": "string",
        "values": "list<int64>",
        "descriptor_id": "string",
    }
