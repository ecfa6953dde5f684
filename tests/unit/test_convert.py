"""The writer's conversion pieces: line blocks, contract-checked parsing, per-date files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fanout_core.settings import WriterSettings
from writer.convert import (
    SCHEMA,
    NotNdjsonError,
    RowGroupWriter,
    _PartitionWriters,
    convert_stream,
    iter_line_blocks,
    output_name,
    parquet_key,
    parse_block,
)


def line(
    descriptor_id: str,
    when: str = "2026-11-27T08:12:00.5",
    values: object = (1, 2),
    **extra: object,
) -> bytes:
    record = {
        "device_id": "dev-1",
        "datetime": when,
        "values": list(values) if isinstance(values, tuple) else values,
        "descriptor_id": descriptor_id,
        **extra,
    }
    return json.dumps(record).encode() + b"\n"


class Body:
    """A streaming body that yields what it holds in pieces of the asked size."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunks(self, chunk_size: int):
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]


def test_iter_line_blocks_never_splits_a_line_and_keeps_a_last_line_without_newline():
    data = b"".join(line(f"d{i}") for i in range(50)) + line("last").rstrip(b"\n")
    blocks = list(iter_line_blocks(Body(data), chunk_bytes=300))
    assert b"".join(blocks) == data + b"\n"
    assert all(block.endswith(b"\n") for block in blocks)
    assert len(blocks) > 5


def test_parse_block_fast_path_keeps_every_row_and_the_schema():
    block = line("a") + line("b", values=(2**63 - 1, -(2**63)))
    table, bad = parse_block(block, "s3://b/k", 1)
    assert bad == []
    assert table.schema.equals(SCHEMA, check_metadata=False)
    assert table.column("values").to_pylist() == [[1, 2], [2**63 - 1, -(2**63)]]


def test_parse_block_sends_each_corrupt_line_to_quarantine_and_keeps_the_rest():
    block = (
        line("a")
        + b"{not json\n"
        + line("b", values=[1.5])
        + line("c", when="soon")
        + line("d", extra=1)
        + line("e")
    )
    table, bad = parse_block(block, "s3://b/k", 10)
    assert table.column("descriptor_id").to_pylist() == ["a", "e"]
    assert [(entry.reason, entry.source) for entry in bad] == [
        ("corrupt_line", "s3://b/k#L11"),
        ("invalid_document", "s3://b/k#L12"),
        ("invalid_document", "s3://b/k#L13"),
        ("invalid_document", "s3://b/k#L14"),
    ]
    assert "values: Element 0 is a float" in bad[1].detail
    assert "datetime:" in bad[2].detail
    assert bad[1].descriptor_id == "b"


def test_partition_writers_split_by_reading_date_and_drop_repeated_descriptors(tmp_path: Path):
    writers = _PartitionWriters(tmp_path, "zstd")
    first, _ = parse_block(
        line("a", "2026-11-27T23:59:59") + line("b", "2026-11-28T00:00:00"), "s", 1
    )
    again, _ = parse_block(
        line("a", "2026-11-27T23:59:59")
        + line("c", "2026-11-28T00:00:01")
        + line("c", "2026-11-28T00:00:01"),
        "s",
        3,
    )
    assert writers.write(first) == 0
    assert writers.write(again) == 2
    files = writers.close()
    assert sorted(files) == ["2026-11-27", "2026-11-28"]
    assert pq.read_table(files["2026-11-27"]).column("descriptor_id").to_pylist() == ["a"]
    assert pq.read_table(files["2026-11-28"]).column("descriptor_id").to_pylist() == ["b", "c"]


def test_output_keys_derive_from_the_source_key_only():
    name = output_name("raw/2026/11/27/09/fanout-records-1-2026-11-27-09-06-11-abc", "raw/")
    assert name == "2026_11_27_09_fanout-records-1-2026-11-27-09-06-11-abc"
    assert parquet_key("parquet/", "2026-11-27", name) == f"parquet/date=2026-11-27/{name}.parquet"


def settings(**env: str) -> WriterSettings:
    return WriterSettings.from_env({"FANOUT_BUCKET": "b", **env})


def test_row_groups_follow_the_configured_size_not_the_chunks(tmp_path: Path):
    # given many small chunks, each of a few rows of 1,000 values (about 8 KB in Arrow)
    data = b"".join(line(f"d{i:03d}", values=tuple(range(1000))) for i in range(200))
    chosen = settings(FANOUT_CHUNK_BYTES=str(64 * 1024), FANOUT_ROW_GROUP_BYTES=str(400 * 1024))
    # when the body is converted
    local = convert_stream(Body(data), "s3://b/k", tmp_path, chosen)
    # then row groups hold about 400 KiB of rows each, whatever the chunks were
    metadata = pq.read_metadata(local.files["2026-11-27"])
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 200
    assert len(set(sizes[:-1])) == 1 and 40 <= sizes[0] <= 55
    assert len(list(iter_line_blocks(Body(data), 64 * 1024))) > metadata.num_row_groups


def test_the_schema_version_is_in_the_file_footer(tmp_path: Path):
    writer = RowGroupWriter(tmp_path / "x.parquet", compression="zstd", row_group_bytes=1 << 20)
    writer.write(parse_block(line("a"), "s", 1)[0])
    writer.close()
    footer = pq.read_metadata(tmp_path / "x.parquet")
    assert footer.metadata[b"fanout.schema_version"] == b"1"
    assert footer.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("data", [b"", b"\n\n   \n\r\n"], ids=["empty-object", "blank-lines-only"])
def test_an_object_without_records_writes_nothing_and_is_no_error(tmp_path: Path, data: bytes):
    local = convert_stream(Body(data), "s3://b/k", tmp_path, settings())
    assert (local.files, local.quarantined) == ({}, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(line("a") * 100), "s3://b/raw/k is gzip-compressed"),
        (b"PAR1\x00\x00\x15\x04" * 50, "s3://b/raw/k is binary"),
        (b"[" + line("a").strip() + b"," + line("b").strip() + b"]\n", "none of its 1 lines"),
        (json.dumps([json.loads(line("a"))], indent=2).encode(), "none of its 11 lines"),
        (b"device_id,datetime,values\ndev-1,2026-11-27,1\n", "is not newline-delimited JSON"),
    ],
    ids=["gzip", "binary", "json-array-one-line", "json-array-pretty", "csv"],
)
def test_an_object_that_is_not_ndjson_fails_with_its_key_named(
    tmp_path: Path, data: bytes, message: str
):
    with pytest.raises(NotNdjsonError, match=message.replace("[", "\\[")):
        convert_stream(Body(data), "s3://b/raw/k", tmp_path, settings())


def test_a_json_array_line_among_records_is_a_corrupt_line(tmp_path: Path):
    data = line("a") + b'[{"descriptor_id": "x"}]\n' + line("b")
    local = convert_stream(Body(data), "s3://b/k", tmp_path, settings())
    assert local.rows == {"2026-11-27": 2}
    assert local.quarantine is not None
    (entry,) = [json.loads(text) for text in local.quarantine.read_text().splitlines()]
    assert entry["reason"] == "corrupt_line"
    assert entry["detail"] == "line 2: line is a JSON list, not an object"
