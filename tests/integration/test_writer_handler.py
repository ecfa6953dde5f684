"""The writer's handler: S3 put events in, partitioned parquet out, read back by pandas/pyarrow."""

from __future__ import annotations

import io
import json
from urllib.parse import quote_plus

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import list_keys, read
from writer.convert import NotNdjsonError
from writer.handler import lambda_handler

RAW_KEY = "raw/2026/11/27/09/fanout-records-1-2026-11-27 09:06:11+x=1"


def record(descriptor_id: str, when: str, values: list[int]) -> bytes:
    document = {
        "device_id": "dev-1",
        "datetime": when,
        "values": values,
        "descriptor_id": descriptor_id,
    }
    return json.dumps(document).encode() + b"\n"


def put_event(golden, bucket: str, key: str) -> dict:
    event = golden("s3-put")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    return event


@pytest.fixture
def writer_env(monkeypatch, resources):
    monkeypatch.setenv("FANOUT_BUCKET", resources.bucket)
    monkeypatch.setenv("FANOUT_CHUNK_BYTES", str(64 * 1024))
    return resources


def test_a_raw_object_becomes_parquet_partitioned_by_reading_date(
    writer_env, client, golden, context
):
    # given a raw object (key with spaces and symbols) holding readings of two dates
    rows = [
        record("d1", "2026-11-27T23:59:59.999999", [1, 2**40, -5]),
        record("d2", "2026-11-28T00:00:00", list(range(3000))),
        record("d3", "2026-11-28T07:00:00+02:00", []),
    ]
    client("s3").put_object(Bucket=writer_env.bucket, Key=RAW_KEY, Body=b"".join(rows * 40)[:-1])
    # when S3's event (with the key URL-encoded) reaches the writer
    summary = lambda_handler(put_event(golden, writer_env.bucket, RAW_KEY), context())
    # then one file per date, at keys derived from the source, each descriptor once
    name = "2026_11_27_09_fanout-records-1-2026-11-27 09:06:11+x=1"
    assert summary["files"] == [
        f"parquet/date=2026-11-27/{name}.parquet",
        f"parquet/date=2026-11-28/{name}.parquet",
    ]
    assert list_keys(client, writer_env.bucket, "parquet/") == summary["files"]
    assert summary["rows"] == 3 and summary["duplicates"] == 117
    frame = pd.concat(
        pd.read_parquet(io.BytesIO(read(client, writer_env.bucket, key)))
        for key in summary["files"]
    ).set_index("descriptor_id")
    assert frame.loc["d1", "values"].dtype == "int64"
    assert frame.loc["d1", "values"].tolist() == [1, 2**40, -5]
    assert frame.loc["d2", "values"].tolist() == list(range(3000))
    assert frame.loc["d3", "datetime"] == "2026-11-28T07:00:00+02:00"
    parquet = pq.read_table(io.BytesIO(read(client, writer_env.bucket, summary["files"][0])))
    assert parquet.schema.field("values").type.value_type == "int64"
    assert parquet.schema.metadata[b"fanout.schema_version"] == b"1"


def test_a_redelivered_object_overwrites_its_own_files(
    writer_env, client, golden, context, tmp_path
):
    client("s3").put_object(
        Bucket=writer_env.bucket, Key=RAW_KEY, Body=record("d1", "2026-11-27T10:00:00", [7])
    )
    event = put_event(golden, writer_env.bucket, RAW_KEY)
    first = lambda_handler(event, context())
    second = lambda_handler(event, context())
    assert first == second
    for key in list_keys(client, writer_env.bucket, "parquet/"):
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read(client, writer_env.bucket, key))
    table = ds.dataset(tmp_path / "parquet", format="parquet", partitioning="hive").to_table()
    assert table.column("descriptor_id").to_pylist() == ["d1"]


def test_corrupt_lines_go_to_quarantine_and_the_rest_is_written(
    writer_env, client, golden, context
):
    body = (
        record("good", "2026-11-27T10:00:00", [1])
        + b"not json at all\n"
        + record("bad", "2026-11-27T10:00:00", [1]).replace(b"[1]", b"[1.5]")
    )
    client("s3").put_object(Bucket=writer_env.bucket, Key=RAW_KEY, Body=body)
    summary = lambda_handler(put_event(golden, writer_env.bucket, RAW_KEY), context())
    assert (summary["rows"], summary["quarantined"]) == (1, 2)
    (key,) = list_keys(client, writer_env.bucket, "quarantine/writer/")
    entries = [json.loads(line) for line in read(client, writer_env.bucket, key).splitlines()]
    assert [(e["reason"], e["source"].rsplit("#", 1)[1]) for e in entries] == [
        ("corrupt_line", "L2"),
        ("invalid_document", "L3"),
    ]


def test_an_object_that_is_not_ndjson_fails_with_its_key_named(writer_env, client, golden, context):
    client("s3").put_object(Bucket=writer_env.bucket, Key=RAW_KEY, Body=b"\x89PNG\r\n\x1a\nbinary")
    with pytest.raises(NotNdjsonError, match="is not newline-delimited JSON") as caught:
        lambda_handler(put_event(golden, writer_env.bucket, RAW_KEY), context())
    assert RAW_KEY in str(caught.value)
