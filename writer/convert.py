"""Convert one raw NDJSON object from Firehose into parquet, streaming in chunks.

For ``raw/2026/11/27/09/fanout-requests-1-2026-11-27-09-00-00-<uuid>`` the writer writes
``parquet/date=<YYYY-MM-DD>/2026_11_27_09_fanout-requests-1-...-<uuid>.parquet``, one file
per reading date found in the object. The key depends only on the source key, so a
re-delivery of the same object overwrites its own files instead of adding rows.

Memory is bounded by the chunk size and the row-group size: the object is read
``chunk_bytes`` at a time, each chunk parsed at C speed by ``pyarrow.json`` against the
contract's schema, and its rows held per reading date until they make a row group of
about ``row_group_bytes`` (uncompressed), which goes to a local file before upload.
Corrupt lines are spooled to a local file too, so a garbage object cannot fill memory.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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
from fanout_core.quarantine import QuarantineEntry, excerpt, quarantine_key
from fanout_core.settings import WriterSettings

log = logging.getLogger(__name__)

SCHEMA = arrow_schema()
# Columns whose rules go beyond their Arrow type (patterns, calendar dates): checked per
# value with the contract's own fields after the typed parse.
_CHECKED_COLUMNS = {
    name: f for name, f in record_fields().items() if isinstance(f, DeviceId | IsoDateTime)
}
# pyarrow parses a chunk in blocks of this size, on several threads where there are
# cores; it is above Firehose's 1,000 KiB record limit, so a record fits in one block.
_PARSE_BLOCK_BYTES = 2 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# JSON text never holds a raw NUL byte; one in the first bytes means a binary object.
_SNIFF_BYTES = 4096


class NotNdjsonError(TerminalError):
    """A raw object that is not newline-delimited JSON: binary, or no line is a JSON object."""

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


@dataclass
class LocalConversion:
    """What one raw body became on local disk, before upload.

    Attributes:
        files: Reading date to the local parquet file holding its rows.
        rows: Reading date to the rows in its file.
        duplicates: Rows dropped because their descriptor id was already in the file.
        quarantine: Local NDJSON file of quarantine entries (``None`` when there are none).
        quarantined: Entries in ``quarantine``.
    """

    files: dict[str, Path]
    rows: dict[str, int]
    duplicates: int
    quarantine: Path | None
    quarantined: int


def output_name(raw_key: str, raw_prefix: str) -> str:
    """The file name (without extension) derived from a raw object's key."""
    relative = raw_key[len(raw_prefix) :] if raw_key.startswith(raw_prefix) else raw_key
    return relative.strip("/").replace("/", "_")


def parquet_key(parquet_prefix: str, date: str, name: str) -> str:
    """Where the rows of ``date`` from one raw object land."""
    return f"{parquet_prefix}date={date}/{name}.parquet"


def iter_line_blocks(body: Any, chunk_bytes: int) -> Iterator[bytes]:
    """Yield blocks of whole lines, each about ``chunk_bytes``, from a streaming body.

    ``body`` is anything with ``iter_chunks(chunk_size=...)``, as botocore's
    ``StreamingBody``. A last line without a newline gets one.
    """
    pending: list[bytes] = []
    for piece in body.iter_chunks(chunk_size=chunk_bytes):
        cut = piece.rfind(b"\n")
        if cut < 0:
            # No line ends in this piece: keep it without copying what came before.
            pending.append(piece)
            continue
        pending.append(piece[: cut + 1])
        yield b"".join(pending)
        pending = [piece[cut + 1 :]]
    tail = b"".join(pending)
    if tail.strip():
        yield tail + b"\n"


def drop_seen(table: pa.Table, seen: set[str]) -> tuple[pa.Table, int]:
    """Drop rows whose descriptor id is in ``seen`` or repeats an earlier row; add the rest.

    Returns:
        The rows kept, and how many were dropped.
    """
    keep = []
    for descriptor_id in table.column("descriptor_id").to_pylist():
        keep.append(descriptor_id not in seen)
        seen.add(descriptor_id)
    if all(keep):
        return table, 0
    return table.filter(pa.array(keep)), keep.count(False)


class RowGroupWriter:
    """One parquet file, written in row groups of about ``row_group_bytes`` uncompressed.

    Tables handed to :meth:`write` are held until they add up to a row group, so the
    file's row groups do not follow the size of the chunks they came in.
    """

    def __init__(
        self,
        path: Path,
        *,
        compression: str,
        row_group_bytes: int,
        metadata: dict[bytes, bytes] | None = None,
    ) -> None:
        self.path = path
        self.rows = 0
        self.row_groups = 0
        self._row_group_bytes = row_group_bytes
        schema = SCHEMA.with_metadata({**(SCHEMA.metadata or {}), **(metadata or {})})
        self._writer = pq.ParquetWriter(
            path,
            schema,
            compression=None if compression == "none" else compression,
            use_compliant_nested_type=True,
        )
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0

    @property
    def bytes_written(self) -> int:
        """Bytes of complete row groups on disk so far."""
        return self.path.stat().st_size

    @property
    def pending_bytes(self) -> int:
        """Uncompressed bytes held for the next row group."""
        return self._pending_bytes

    def write(self, table: pa.Table) -> None:
        """Add ``table``'s rows; write every row group they complete."""
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_bytes >= self._row_group_bytes:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        per_group = max(1, table.num_rows * self._row_group_bytes // max(table.nbytes, 1))
        whole = table.num_rows if final else table.num_rows - table.num_rows % per_group
        if whole:
            self._writer.write_table(table.slice(0, whole), row_group_size=per_group)
            self.row_groups += -(-whole // per_group)
        rest = table.slice(whole)
        self._pending = [rest] if rest.num_rows else []
        self._pending_bytes = rest.nbytes if rest.num_rows else 0

    def close(self) -> None:
        """Write what is held as the last row group and the footer."""
        self._flush(final=True)
        self._writer.close()


class _PartitionWriters:
    """One open parquet file per reading date, each on local disk."""

    def __init__(
        self, directory: Path, compression: str, row_group_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.directory = directory
        self.compression = compression
        self.row_group_bytes = row_group_bytes
        self.writers: dict[str, RowGroupWriter] = {}
        self.seen: dict[str, set[str]] = {}

    @property
    def rows(self) -> dict[str, int]:
        return {date: writer.rows for date, writer in self.writers.items()}

    def write(self, table: pa.Table) -> int:
        """Append ``table``'s rows to their date's file; return duplicates dropped."""
        dates = pc.utf8_slice_codeunits(table.column("datetime"), 0, 10)
        unique_dates = pc.unique(dates).to_pylist()
        duplicates = 0
        for date in unique_dates:
            part = table if len(unique_dates) == 1 else table.filter(pc.equal(dates, date))
            part, dropped = drop_seen(part, self.seen.setdefault(date, set()))
            duplicates += dropped
            if part.num_rows == 0:
                continue
            writer = self.writers.get(date)
            if writer is None:
                writer = self.writers[date] = RowGroupWriter(
                    self.directory / f"{date}.parquet",
                    compression=self.compression,
                    row_group_bytes=self.row_group_bytes,
                )
            writer.write(part)
        return duplicates

    def close(self) -> dict[str, Path]:
        for writer in self.writers.values():
            writer.close()
        return {date: writer.path for date, writer in self.writers.items()}


class _QuarantineSpool:
    """Quarantine entries appended to a local NDJSON file, in ``write_quarantine``'s format."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.corrupt = 0
        self.first: QuarantineEntry | None = None
        self._file: io.BufferedWriter | None = None

    def extend(self, entries: list[QuarantineEntry]) -> None:
        for entry in entries:
            if self._file is None:
                self._file = self.path.open("wb")
                self.first = entry
            line = json.dumps(asdict(entry), separators=(",", ":"), default=str)
            self._file.write(line.encode() + b"\n")
            self.count += 1
            self.corrupt += entry.reason == "corrupt_line"

    def close(self) -> Path | None:
        if self._file is None:
            return None
        self._file.close()
        return self.path


def parse_block(
    block: bytes, source: str, first_line: int
) -> tuple[pa.Table, list[QuarantineEntry]]:
    """Parse a block of NDJSON lines against the contract.

    The fast path parses the whole block with ``pyarrow.json``; if any line breaks the
    contract, the block is parsed again line by line, and the bad lines come back as
    quarantine entries naming the line and the reason: ``corrupt_line`` for a line that
    is not a JSON object, ``invalid_document`` for an object that breaks the contract.
    """
    try:
        table = pa_json.read_json(
            io.BytesIO(block),
            read_options=pa_json.ReadOptions(block_size=_PARSE_BLOCK_BYTES, use_threads=True),
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
    good: list[bytes] = []
    bad: list[QuarantineEntry] = []
    for number, line in enumerate(block.split(b"\n"), start=first_line):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append(_corrupt(line, number, source, f"line is not JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            kind = type(record).__name__
            bad.append(_corrupt(line, number, source, f"line is a JSON {kind}, not an object"))
            continue
        try:
            validate_stored(record)
        except InvalidDocumentError as exc:
            descriptor_id = record.get("descriptor_id")
            bad.append(
                QuarantineEntry(
                    reason=exc.reason,
                    detail=f"line {number}: {exc.detail}",
                    descriptor_id=descriptor_id if isinstance(descriptor_id, str) else None,
                    excerpt=excerpt(line),
                    source=f"{source}#L{number}",
                )
            )
            continue
        good.append(line)
    if not good:
        return SCHEMA.empty_table(), bad
    try:
        # The lines that passed the contract parse at C speed, like the fast path's.
        table = pa_json.read_json(
            io.BytesIO(b"\n".join(good)),
            read_options=pa_json.ReadOptions(
                block_size=max(_PARSE_BLOCK_BYTES, max(map(len, good)) + 1)
            ),
            parse_options=pa_json.ParseOptions(explicit_schema=SCHEMA),
        )
        return table.select(SCHEMA.names).cast(SCHEMA), bad
    except pa.ArrowException:
        # JSON that orjson and the contract accept but pyarrow reads otherwise (a repeated
        # key, say): build the rows from what the contract saw.
        return pa.Table.from_pylist([orjson.loads(line) for line in good], schema=SCHEMA), bad


def _corrupt(line: bytes, number: int, source: str, detail: str) -> QuarantineEntry:
    return QuarantineEntry(
        reason="corrupt_line",
        detail=f"line {number}: {detail}",
        excerpt=excerpt(line),
        source=f"{source}#L{number}",
    )


def convert_stream(
    body: Any, source: str, directory: Path, settings: WriterSettings
) -> LocalConversion:
    """Convert a streaming NDJSON body into per-date parquet files under ``directory``.

    Args:
        body: Anything with ``iter_chunks(chunk_size=...)`` (botocore's ``StreamingBody``).
        source: Where the body comes from, for quarantine entries and errors.
        directory: A local folder for the parquet files and the quarantine spool.
        settings: Chunk size, row-group size and compression.

    Raises:
        NotNdjsonError: If the body is binary, or has content and no line of it is a JSON
            object.
    """
    writers = _PartitionWriters(directory, settings.compression, settings.row_group_bytes)
    spool = _QuarantineSpool(directory / "quarantine.ndjson")
    duplicates = 0
    line_number = 1
    for block in iter_line_blocks(body, settings.chunk_bytes):
        if line_number == 1:
            _refuse_binary(block, source)
        table, bad = parse_block(block, source, line_number)
        line_number += block.count(b"\n")
        spool.extend(bad)
        duplicates += writers.write(table)
    files = writers.close()
    quarantine = spool.close()
    if not files and spool.count and spool.corrupt == spool.count:
        first = spool.first.detail if spool.first else ""
        raise NotNdjsonError(
            f"{source} is not newline-delimited JSON: none of its {spool.count} lines "
            f"is a JSON object (first: {first})"
        )
    return LocalConversion(
        files=files,
        rows=writers.rows,
        duplicates=duplicates,
        quarantine=quarantine,
        quarantined=spool.count,
    )


def _refuse_binary(head: bytes, source: str) -> None:
    if head.startswith(_GZIP_MAGIC):
        raise NotNdjsonError(
            f"{source} is gzip-compressed, not newline-delimited JSON: the writer reads "
            "uncompressed objects (set the delivery stream's compression to UNCOMPRESSED)"
        )
    if b"\x00" in head[:_SNIFF_BYTES]:
        raise NotNdjsonError(
            f"{source} is binary, not newline-delimited JSON: a NUL byte in its first "
            f"{_SNIFF_BYTES} bytes"
        )


def convert_object(
    bucket: str, key: str, settings: WriterSettings, *, s3: Any = None
) -> ConvertResult:
    """Convert ``s3://bucket/key`` into parquet under the parquet prefix.

    An empty object, or one of blank lines only, holds no records: nothing is written.

    Raises:
        NotNdjsonError: If the object is binary, or has content and no line of it is a
            JSON object.
    """
    s3 = s3 or aws.client("s3")
    source = f"s3://{bucket}/{key}"
    result = ConvertResult(source=source)
    name = output_name(key, settings.raw_prefix)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with tempfile.TemporaryDirectory(prefix="fanout-writer-") as directory:
        local = convert_stream(body, source, Path(directory), settings)
        for date, path in sorted(local.files.items()):
            target = parquet_key(settings.parquet_prefix, date, name)
            s3.upload_file(str(path), settings.bucket, target)
            result.files[target] = local.rows[date]
            result.rows += local.rows[date]
        result.duplicates = local.duplicates
        if local.quarantine is not None:
            s3.upload_file(
                str(local.quarantine),
                settings.bucket,
                quarantine_key(settings.quarantine_prefix, "writer", name),
                ExtraArgs={"ContentType": "application/x-ndjson"},
            )
            result.quarantined = local.quarantined
    if not result.files and not result.quarantined:
        log.warning("no records", extra={"source": source})
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
