"""The lake as five independent readers see it: same rows, same values, same types.

The tree is made by the real writer (S3 events on moto) and the real compaction, so it
holds raw-derived files, compacted files and a commit record, as a deployed lake does.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import fastparquet
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import list_keys, read
from writer.compact import compact_partition
from writer.handler import lambda_handler

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# (descriptor_id, datetime as received, values); the first three repeat across objects.
READINGS = [
    ("dev-1:a", "2026-11-27T00:00:00", [1, 2, 3]),
    ("dev-1:b", "2026-11-27T08:12:00.744489", [INT64_MAX, INT64_MIN, 0, -5, 2**40]),
    ("dev-2:c", "2026-11-27T23:59:59.999999Z", []),
    ("dev-2:d", "2026-11-27T12:00:00+02:00", list(range(1000))),
    ("dev-3:e", "2026-11-28T00:00:00.000001", [65535] * 7),
    ("dev-3:f", "2026-11-28T07:00:00-05:00", [42]),
]
OBJECTS = {
    "object-0": READINGS[0:3],
    "object-1": READINGS[0:4],  # repeats a, b and c: Firehose delivered them twice
    "object-2": READINGS[4:5],
    "object-3": READINGS[5:6],
}
EXPECTED = {(descriptor_id, when, tuple(values)) for descriptor_id, when, values in READINGS}


def ndjson(readings: list[tuple[str, str, list[int]]]) -> bytes:
    return b"".join(
        json.dumps(
            {
                "device_id": descriptor_id.split(":")[0],
                "datetime": when,
                "values": values,
                "descriptor_id": descriptor_id,
            }
        ).encode()
        + b"\n"
        for descriptor_id, when, values in readings
    )


@pytest.fixture
def tree(monkeypatch, resources, client, golden, context, tmp_path) -> Path:
    """The parquet tree after the writer and one compaction, copied to a local folder."""
    monkeypatch.setenv("FANOUT_BUCKET", resources.bucket)
    for name, readings in OBJECTS.items():
        key = f"raw/2026/11/27/09/{name}"
        client("s3").put_object(Bucket=resources.bucket, Key=key, Body=ndjson(readings))
        event = golden("s3-put")
        event["Records"][0]["s3"]["bucket"]["name"] = resources.bucket
        event["Records"][0]["s3"]["object"]["key"] = key
        lambda_handler(event, context())
    compact_partition(resources.bucket, "parquet/", "2026-11-27")
    keys = list_keys(client, resources.bucket, "parquet/")
    assert any("/_compaction-" in key for key in keys), "the tree should hold a commit record"
    for key in keys:
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read(client, resources.bucket, key))
    return tmp_path / "parquet"


def rows(frame: pd.DataFrame) -> list[tuple[str, str, tuple[int, ...]]]:
    return sorted(
        (row.descriptor_id, row.datetime, tuple(int(v) for v in row.values))
        for row in frame.itertuples()
    )


def check(found: list[tuple[str, str, tuple[int, ...]]]) -> None:
    assert len(found) == len(READINGS), "every reading once, none twice"
    assert set(found) == EXPECTED


def test_pandas_reads_every_row_once_with_int64_values(tree):
    frame = pd.read_parquet(tree)
    check(rows(frame))
    assert {str(value.dtype) for value in frame["values"]} == {"int64"}
    assert set(frame["date"].astype(str)) == {"2026-11-27", "2026-11-28"}


def test_pyarrow_dataset_reads_the_partitioned_tree_with_the_contract_schema(tree):
    table = ds.dataset(tree, format="parquet", partitioning="hive").to_table()
    check(rows(table.to_pandas()))
    assert table.schema.field("values").type == pa.list_(pa.field("element", pa.int64(), False))
    assert table.schema.field("datetime").type == pa.string()


def test_duckdb_reads_the_tree_by_glob_with_bigint_lists(tree):
    relation = duckdb.sql(
        f"SELECT descriptor_id, datetime, values, date "
        f"FROM read_parquet('{tree}/**/*.parquet', hive_partitioning = true)"
    )
    check(rows(relation.df()))
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert (types["values"], types["datetime"]) == ("BIGINT[]", "VARCHAR")


def test_polars_reads_the_folder_with_list_of_int64(tree):
    frame = pl.read_parquet(tree, hive_partitioning=True)
    check(rows(frame.to_pandas()))
    assert frame.schema["values"] == pl.List(pl.Int64)
    assert frame.schema["datetime"] == pl.String


def test_fastparquet_an_independent_reader_agrees(tree):
    frames = []
    for path in sorted(tree.rglob("*.parquet")):
        if path.name.startswith("_"):
            continue  # a commit record: hidden, as Hive's readers hide it
        with path.open("rb") as source:
            parquet = fastparquet.ParquetFile(source)
            assert parquet.key_value_metadata["fanout.schema_version"] == "1"
            frames.append(parquet.to_pandas())
    check(rows(pd.concat(frames)))


def test_values_use_the_spec_list_naming_and_datetime_stays_a_string(tree):
    for path in tree.rglob("*.parquet"):
        schema = pq.ParquetFile(path).schema
        columns = {schema.column(i).path: schema.column(i) for i in range(len(schema))}
        assert list(columns) == ["device_id", "datetime", "values.list.element", "descriptor_id"]
        values = columns["values.list.element"]
        assert (values.physical_type, values.max_repetition_level) == ("INT64", 1)
        when = columns["datetime"]
        assert (when.physical_type, str(when.logical_type)) == ("BYTE_ARRAY", "String")
