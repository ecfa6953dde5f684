"""Convert one raw NDJSON object from Firehose into parquet, streaming in chunks.

For ``raw/2026/11/27/09/fanout-requests-1-2026-11-27-09-00-00-<uuid>`` the writer writes
``parquet/date=<YYYY-MM-DD>/2026_11_27_09_fanout-requests-1-...-<uuid>.parquet``, one file
per reading date found in the object. The key depends only on the source key, so a
re-delivery of the same object overwrites its own files instead of adding rows.

Memory is bounded by the chunk size: the object is read ``chunk_bytes`` at a time, each
chunk parsed at C speed by ``pyarrow.json`` against the contract's schema and appended to
the open parquet writers as row groups, which go to local files before upload.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from marshmallow import ValidationError

from fanout_core import aws
from fanout_core.arrow import arrow_schema
from fanout_core.contract import DeviceId, IsoDateTime, record_fields, validate_stored
from fanout_core.errors import InvalidDocumentError, TerminalError
from fanout_core.quarantine import QuarantineEntry, excerpt, write_quarantine
from fanout_core.settings import WriterSettings

log = logging.getLogger(__name__)

SCHEMA = arrow_schema()
# Columns whose rules go beyond their Arrow type (patterns, calendar dates): checked per
# value with the contract's own fields after the typed parse.
_CHECKED_COLUMNS = {
    name: f for name, f in record_fields().items() if isinstance(f, DeviceId | IsoDateTime)
}


class NotNdjsonError(TerminalError):
    """A raw object in which no line is a JSON object."""

    reason = "not_ndjson"


@dataclass
class ConvertResult:
    """What one raw object became.

    Attributes:
        source: ``s3://bucket/key`` of the raw object.
        rows: Rows written, after dropping duplicates within each output file.
        files: Parquet keys written, with their row counts.
        duplicates: Rows dropped because their descriptor id was already in the file.
        quarantined: Lines sent to quarantine.
    """

    source: str
    rows: int = 0
    files: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    quarantined: int = 0


def output_name(raw_key: str, raw_prefix: str) -> str:
    """The file name (without extension) derived from a raw object's key."""
    relative = raw_key[len(raw_prefix) :] if raw_key.startswith(raw_prefix) else raw_key
    return relative.strip("/").replace("/", "_")


def parquet_key(parquet_prefix: str, date: str, name: str) -> str:
    """Where the rows of ``date`` from one raw object land."""
    return f"{parquet_prefix}date={date}/{name}.parquet"


def iter_line_blocks(body: Any, chunk_bytes: int) -> Iterator[bytes]:
    """Yield blocks of whole lines, each about ``chunk_bytes``, from a streaming body."""
    tail = b""
    for piece in body.iter_chunks(chunk_size=chunk_bytes):
        buffer = tail + piece
        cut = buffer.rfind(b"\n")
        if cut < 0:
            tail = buffer
            continue
        yield buffer[: cut + 1]
        tail = buffer[cut + 1 :]
    if tail.strip():
        yield tail + b"\n"


class _PartitionWriters:
    """One open parquet writer per reading date, each to a local file."""

    def __init__(self, directory: Path, compression: str) -> None:
        self.directory = directory
        self.compression = None if compression == "none" else compression
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.seen: dict[str, set[str]] = {}
        self.rows: dict[str, int] = {}

    def write(self, table: pa.Table) -> int:
        """Append ``table``'s rows to their date's file; return duplicates dropped."""
        dates = pc.utf8_slice_codeunits(table.column("datetime"), 0, 10)
        duplicates = 0
        for date in pc.unique(dates).to_pylist():
            part = table.filter(pc.equal(dates, date))
            seen = self.seen.setdefault(date, set())
            keep = []
            for descriptor_id in part.column("descriptor_id").to_pylist():
                keep.append(descriptor_id not in seen)
                seen.add(descriptor_id)
            if not all(keep):
                duplicates += keep.count(False)
                part = part.filter(pa.array(keep))
            if part.num_rows == 0:
                continue
            writer = self.writers.get(date)
            if writer is None:
                writer = self.writers[date] = pq.ParquetWriter(
                    self.directory / f"{date}.parquet",
                    SCHEMA,
                    compression=self.compression,
                    use_compliant_nested_type=True,
                )
            writer.write_table(part)
            self.rows[date] = self.rows.get(date, 0) + part.num_rows
        return duplicates

    def close(self) -> dict[str, Path]:
        for writer in self.writers.values():
            writer.close()
        return {date: self.directory / f"{date}.parquet" for date in self.writers}


def parse_block(
    block: bytes, source: str, first_line: int
) -> tuple[pa.Table, list[QuarantineEntry]]:
    """Parse a block of NDJSON lines against the contract.

    The fast path parses the whole block with ``pyarrow.json``; if any line breaks the
    contract, the block is parsed again line by line, and the bad lines come back as
    quarantine entries naming the line and the reason.
    """
    try:
        table = pa_json.read_json(
            io.BytesIO(block),
            read_options=pa_json.ReadOptions(block_size=max(len(block), 1 << 20), use_threads=True),
            parse_options=pa_json.ParseOptions(
                explicit_schema=SCHEMA, unexpected_field_behavior="error"
            ),
        )
        table = table.select(SCHEMA.names).cast(SCHEMA)
        for name, contract_field in _CHECKED_COLUMNS.items():
            for value in pc.unique(table.column(name)).to_pylist():
                contract_field.deserialize(value)
        return table, []
    except (pa.ArrowException, ValidationError) as fast_failure:
        log.info("block needs line-by-line parsing: %s", str(fast_failure)[:200])
    return _parse_lines(block, source, first_line)


def _parse_lines(
    block: bytes, source: str, first_line: int
) -> tuple[pa.Table, list[QuarantineEntry]]:
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineEntry] = []
    for number, line in enumerate(block.split(b"\n"), start=first_line):
        if not line.strip():
            continue
        try:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidDocumentError(f"line is not JSON: {exc}") from exc
            rows.append(validate_stored(record))
        except InvalidDocumentError as exc:
            bad.append(
                QuarantineEntry(
                    reason="corrupt_line" if "not JSON" in exc.detail else exc.reason,
                    detail=f"line {number}: {exc.detail}",
                    descriptor_id=_descriptor_id_of(line),
                    excerpt=excerpt(line),
                    source=f"{source}#L{number}",
                )
            )
    return pa.Table.from_pylist(rows, schema=SCHEMA), bad


def _descriptor_id_of(line: bytes) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    value = record.get("descriptor_id") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


def convert_object(
    bucket: str, key: str, settings: WriterSettings, *, s3: Any = None
) -> ConvertResult:
    """Convert ``s3://bucket/key`` into parquet under the parquet prefix.

    Raises:
        NotNdjsonError: If the object has content and no line of it is a JSON object.
    """
    s3 = s3 or aws.client("s3")
    source = f"s3://{bucket}/{key}"
    result = ConvertResult(source=source)
    name = output_name(key, settings.raw_prefix)
    quarantine: list[QuarantineEntry] = []
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with tempfile.TemporaryDirectory(prefix="fanout-writer-") as directory:
        writers = _PartitionWriters(Path(directory), settings.compression)
        line_number = 1
        for block in iter_line_blocks(body, settings.chunk_bytes):
            table, bad = parse_block(block, source, line_number)
            line_number += block.count(b"\n")
            quarantine.extend(bad)
            result.duplicates += writers.write(table)
        files = writers.close()
        if not files and quarantine and all(e.reason == "corrupt_line" for e in quarantine):
            raise NotNdjsonError(
                f"{source} is not newline-delimited JSON: none of its {len(quarantine)} lines "
                f"parses (first: {quarantine[0].detail})"
            )
        for date, path in sorted(files.items()):
            target = parquet_key(settings.parquet_prefix, date, name)
            s3.upload_file(str(path), settings.bucket, target)
            result.files[target] = writers.rows[date]
            result.rows += writers.rows[date]
    if quarantine:
        write_quarantine(
            quarantine,
            bucket=settings.bucket,
            prefix=settings.quarantine_prefix,
            stage="writer",
            name=name,
            s3=s3,
        )
        result.quarantined = len(quarantine)
    log.info(
        "converted",
        extra={
            "source": source,
            "rows": result.rows,
            "files": len(result.files),
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
        },
    )
    return result
