"""Compaction on moto's S3: small files merged, repeated rows dropped, readers told the truth."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from fanout_core import aws
from fanout_core.errors import InvalidEventError
from tests.integration.conftest import list_keys, read
from writer.compact import (
    COMPACTION_KEY,
    compact_partition,
    list_partition,
    live_keys,
)
from writer.convert import SCHEMA
from writer.handler import compact_handler, lambda_handler

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-27"
PARTITION = f"parquet/date={DAY}/"


def values_of(descriptor_id: str, count: int = 50) -> list[int]:
    seed = sum(descriptor_id.encode())
    return [(seed * 7919 + i * 104729) % 65536 for i in range(count)]


def raw_object(ids: list[str], day: str = DAY, count: int = 50) -> bytes:
    lines = [
        json.dumps(
            {
                "device_id": "dev-1",
                "datetime": f"{day}T{index % 24:02d}:00:00.000001",
                "values": values_of(descriptor_id, count),
                "descriptor_id": descriptor_id,
            }
        )
        for index, descriptor_id in enumerate(ids)
    ]
    return ("\n".join(lines) + "\n").encode()


def s3_event(golden, bucket: str, key: str) -> dict:
    event = golden("s3-put")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


@pytest.fixture
def lake(monkeypatch, resources, client, golden, context):
    """Land raw objects through the writer: ``lake(name, ids)`` writes one small file."""
    monkeypatch.setenv("FANOUT_BUCKET", resources.bucket)

    def land(name: str, ids: list[str], day: str = DAY, count: int = 50) -> None:
        key = f"raw/2026/11/27/09/{name}"
        client("s3").put_object(Bucket=resources.bucket, Key=key, Body=raw_object(ids, day, count))
        lambda_handler(s3_event(golden, resources.bucket, key), context())

    land.bucket = resources.bucket  # type: ignore[attr-defined]
    return land


def rows_of(client, bucket: str, keys: list[str]) -> Counter[str]:
    """Descriptor ids in ``keys``, with how many times each appears; values checked."""
    found: Counter[str] = Counter()
    for key in keys:
        table = pq.read_table(io.BytesIO(read(client, bucket, key)))
        for row in table.to_pylist():
            assert row["values"] == values_of(row["descriptor_id"], len(row["values"]))
            found[row["descriptor_id"]] += 1
    return found


def parquet_files(client, bucket: str) -> list[str]:
    """The data files of the partition, as a plain reader lists them (records are hidden)."""
    return [
        key
        for key in list_keys(client, bucket, PARTITION)
        if key.endswith(".parquet") and not key.rsplit("/", 1)[1].startswith("_")
    ]


def ids(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}{index:04d}" for index in range(start, start + count)]


def test_compaction_merges_small_files_and_keeps_each_row_once(lake, client):
    # given five small files whose descriptor ids overlap (Firehose delivered some twice)
    for number in range(5):
        lake(f"object-{number}", ids("d", 30, start=number * 20))
    inputs = parquet_files(client, lake.bucket)
    assert len(inputs) == 5
    assert sum(rows_of(client, lake.bucket, inputs).values()) == 150
    # when the partition is compacted
    result = compact_partition(lake.bucket, "parquet/", DAY)
    # then one output holds every id once, the inputs are gone, and the record is hidden
    assert result.inputs == inputs
    assert (result.rows, result.duplicates) == (110, 40)
    (output,) = result.outputs
    assert output.startswith(f"{PARTITION}compacted-")
    assert rows_of(client, lake.bucket, [output]) == Counter(ids("d", 110))
    assert list_keys(client, lake.bucket, PARTITION) == [result.record, output]
    assert result.record is not None and result.record.split("/")[-1].startswith("_")
    assert live_keys(lake.bucket, "parquet/", DAY) == [output]
    footer = pq.read_metadata(io.BytesIO(read(client, lake.bucket, output))).metadata
    assert footer[b"fanout.schema_version"] == b"1"
    assert COMPACTION_KEY in footer


def test_compaction_cuts_outputs_near_the_target_size_in_row_groups(lake, client):
    for number in range(4):
        lake(f"object-{number}", ids("d", 150, start=number * 150), count=1000)
    target = 200 * 1024
    result = compact_partition(
        lake.bucket, "parquet/", DAY, target_bytes=target, row_group_bytes=128 * 1024
    )
    sizes = {
        key: client("s3").head_object(Bucket=lake.bucket, Key=key)["ContentLength"]
        for key in result.outputs
    }
    assert len(sizes) >= 3
    assert all(size <= target * 1.1 for size in sizes.values())
    assert all(size >= target // 2 for key, size in sizes.items() if key != max(sizes))
    assert rows_of(client, lake.bucket, list(sizes)) == Counter(ids("d", 600))
    first = pq.ParquetFile(io.BytesIO(read(client, lake.bucket, min(sizes))))
    assert first.num_row_groups >= 2


def test_a_retried_compaction_overwrites_its_own_outputs(lake, client):
    # given a compaction whose outputs were uploaded but that died before committing
    for number in range(3):
        lake(f"object-{number}", ids("d", 20, start=number * 10))
    saved = {key: read(client, lake.bucket, key) for key in parquet_files(client, lake.bucket)}
    first = compact_partition(lake.bucket, "parquet/", DAY)
    s3 = client("s3")
    assert first.record is not None
    s3.delete_object(Bucket=lake.bucket, Key=first.record)
    for key, body in saved.items():
        s3.put_object(Bucket=lake.bucket, Key=key, Body=body)
    # then a reader that follows the records reads the inputs, each row once
    assert live_keys(lake.bucket, "parquet/", DAY) == sorted(saved)
    assert max(rows_of(client, lake.bucket, live_keys(lake.bucket, "parquet/", DAY)).values()) == 2
    # when the compaction runs again on the same inputs
    second = compact_partition(lake.bucket, "parquet/", DAY)
    # then it writes the same keys over its earlier outputs, and nothing is left twice
    assert second.outputs == first.outputs
    assert parquet_files(client, lake.bucket) == sorted(second.outputs)
    assert rows_of(client, lake.bucket, list(second.outputs)) == Counter(ids("d", 40))


def test_a_run_that_died_after_committing_is_finished_by_the_next(lake, client):
    # given a committed compaction whose inputs were not deleted
    for number in range(3):
        lake(f"object-{number}", ids("d", 20, start=number * 10))
    saved = {key: read(client, lake.bucket, key) for key in parquet_files(client, lake.bucket)}
    first = compact_partition(lake.bucket, "parquet/", DAY)
    for key, body in saved.items():
        client("s3").put_object(Bucket=lake.bucket, Key=key, Body=body)
    # then a plain reader sees rows twice, a reader that follows the records does not
    plain = rows_of(client, lake.bucket, parquet_files(client, lake.bucket))
    assert max(plain.values()) > 1
    live = live_keys(lake.bucket, "parquet/", DAY)
    assert live == sorted(first.outputs)
    assert rows_of(client, lake.bucket, live) == Counter(ids("d", 40))
    # when the next run starts, it deletes the leftovers first
    second = compact_partition(lake.bucket, "parquet/", DAY)
    assert second.settled == 3 and second.outputs == {}
    assert parquet_files(client, lake.bucket) == sorted(first.outputs)


class WriterLandsDuringCompaction:
    """The real S3 client; the writer lands a new file just as compaction reads an input."""

    def __init__(self, s3: Any, land) -> None:
        self._s3 = s3
        self._land = land
        self.landed = False

    def get_object(self, **kwargs: Any) -> Any:
        if not self.landed and kwargs.get("IfMatch"):
            self.landed = True
            self._land("late-object", ids("late", 5))
        return self._s3.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_files_the_writer_lands_during_compaction_are_not_deleted(lake, client):
    for number in range(2):
        lake(f"object-{number}", ids("d", 10, start=number * 10))
    s3 = WriterLandsDuringCompaction(client("s3"), lake)
    result = compact_partition(lake.bucket, "parquet/", DAY, s3=s3)
    assert s3.landed
    late = f"{PARTITION}2026_11_27_09_late-object.parquet"
    assert late not in result.inputs
    assert late in parquet_files(client, lake.bucket)
    live = live_keys(lake.bucket, "parquet/", DAY)
    assert rows_of(client, lake.bucket, live) == Counter(ids("d", 20) + ids("late", 5))


def test_big_compacted_files_stay_and_later_repeats_of_their_rows_are_dropped(lake, client):
    # given a partition compacted into files at the target size
    for number in range(3):
        lake(f"object-{number}", ids("d", 150, start=number * 150), count=1000)
    target = 200 * 1024
    options = {"target_bytes": target, "row_group_bytes": 128 * 1024}
    first = compact_partition(lake.bucket, "parquet/", DAY, **options)
    # and a late re-delivery repeating some of their rows, plus new ones
    lake("redelivered", ids("d", 20) + ids("new", 10), count=1000)
    # when compaction runs again
    second = compact_partition(lake.bucket, "parquet/", DAY, **options)
    # then the big files are left as they are, and each row is there once
    assert second.kept and set(second.kept) <= set(first.outputs)
    assert second.duplicates == 20
    live = live_keys(lake.bucket, "parquet/", DAY)
    assert set(second.kept) <= set(live)
    assert rows_of(client, lake.bucket, live) == Counter(ids("d", 450) + ids("new", 10))
    assert parquet_files(client, lake.bucket) == live


def test_uncommitted_outputs_are_removed_once_old_enough(lake, client):
    # given a run that died after uploading outputs, and a new file since
    for number in range(2):
        lake(f"object-{number}", ids("d", 10, start=number * 5))
    saved = {key: read(client, lake.bucket, key) for key in parquet_files(client, lake.bucket)}
    dead = compact_partition(lake.bucket, "parquet/", DAY)
    assert dead.record is not None
    client("s3").delete_object(Bucket=lake.bucket, Key=dead.record)
    for key, body in saved.items():
        client("s3").put_object(Bucket=lake.bucket, Key=key, Body=body)
    lake("object-2", ids("d", 5, start=15))
    assert list_partition(client("s3"), lake.bucket, PARTITION).uncommitted() == sorted(
        dead.outputs
    )
    # when compaction runs with the orphans past their age
    result = compact_partition(lake.bucket, "parquet/", DAY, orphan_age=timedelta(0))
    # then they are gone, and the partition holds each row once
    assert result.settled == len(dead.outputs)
    assert not set(dead.outputs) & set(parquet_files(client, lake.bucket))
    assert rows_of(client, lake.bucket, parquet_files(client, lake.bucket)) == Counter(ids("d", 20))


def test_a_single_file_partition_is_left_alone(lake, client):
    lake("only", ids("d", 10))
    before = parquet_files(client, lake.bucket)
    result = compact_partition(lake.bucket, "parquet/", DAY)
    assert (result.outputs, result.record) == ({}, None)
    assert parquet_files(client, lake.bucket) == before


def test_compact_handler_compacts_yesterday_and_today_on_a_schedule_tick(
    lake, client, golden, context
):
    for day in ("2026-11-25", "2026-11-26", "2026-11-27"):
        lake(f"{day}-a", ids("d", 10), day=day)
        lake(f"{day}-b", ids("d", 10, start=5), day=day)
    summary = compact_handler(golden("eventbridge-scheduled"), context())
    assert summary["dates"] == ["2026-11-26", "2026-11-27"]
    assert (summary["partitions"], summary["inputs"], summary["rows"]) == (2, 4, 30)
    untouched = list_keys(client, lake.bucket, "parquet/date=2026-11-25/")
    assert len(untouched) == 2 and not any("compacted-" in key for key in untouched)


def test_compact_handler_takes_explicit_dates_and_refuses_bad_ones(lake, context):
    lake("a", ids("d", 3))
    lake("b", ids("d", 3, start=1))
    summary = compact_handler({"dates": [DAY, "2026-01-01"]}, context())
    assert (summary["partitions"], summary["rows"], summary["duplicates"]) == (1, 4, 2)
    with pytest.raises(InvalidEventError, match="not a date"):
        compact_handler({"dates": ["27/11/2026"]}, context())


def test_the_compact_command_honours_aws_endpoint_url(lake, client):
    lake("a", ids("d", 4))
    lake("b", ids("d", 4, start=2))
    completed = subprocess.run(
        [sys.executable, "-m", "writer.compact", "--bucket", lake.bucket, "--date", DAY],
        cwd=ROOT,
        env={**os.environ, "AWS_ENDPOINT_URL": aws.client("s3").meta.endpoint_url},
        capture_output=True,
        text=True,
        check=True,
    )
    (result,) = json.loads(completed.stdout)
    assert (result["rows"], result["duplicates"], len(result["inputs"])) == (6, 2, 2)
    assert parquet_files(client, lake.bucket) == sorted(result["outputs"])
    assert (
        SCHEMA.names
        == pq.read_schema(
            io.BytesIO(read(client, lake.bucket, next(iter(result["outputs"]))))
        ).names
    )
