"""Compact a date partition's small parquet files into files of a target size, once per row.

The writer lands one file per raw object and reading date; Firehose delivers many small
objects, and sometimes the same records twice. Compaction rewrites a partition's files
into ``compacted-<digest>-<n>.parquet`` files of about ``target_bytes`` each, dropping
every row whose descriptor id is already in the partition's output, so a reader of the
partition never sees a row twice and never misses one.

One run, in order:

1. **Settle** what an earlier run left: delete the leftover inputs of a committed run,
   delete outputs no commit record names once they are older than ``orphan_age`` (a run
   that died before committing), and delete records nothing refers to any more.
2. **Choose**: the live files (see :func:`live_files`) minus the compacted files already
   at least half the target, which stay as they are and only seed the set of seen ids.
3. **Write** the outputs, streaming: inputs are read one row group at a time, only the
   descriptor ids seen so far stay in memory, and each output is uploaded as soon as it
   is full. ``<digest>`` hashes the input keys and ETags, so a retried run with the same
   inputs overwrites its own outputs.
4. **Commit**: write ``_compaction-<digest>.parquet``, a file of no rows whose footer names
   the inputs and the outputs.
5. **Delete** exactly the inputs that were read; a file the writer added meanwhile is
   not among them.

Readers. Between steps 3 and 5 a reader that takes every ``*.parquet`` file of the
partition (Athena, Spark, DuckDB on a glob) can see an input and the output that holds
its rows, so some rows twice; and a reader that listed before step 5 and opens a file
after it gets a missing-file error, which a retry cures. The window is the upload of the
outputs plus one delete call per thousand inputs. A reader that applies the commit rule
of :func:`live_files` to one listing of the partition (:func:`live_keys` does) sees every
row exactly once at every moment: outputs count only once a record names them, and
their inputs stop counting at that same moment (exact for a listing of one page, up to 1,000
keys; a longer listing is taken again while it shows uncommitted outputs). Records are
parquet files of no rows whose names start with ``_``: Hive, Spark, Athena and pyarrow
hide them, and DuckDB or polars read them as empty.

Runs of the same partition must not overlap (give the scheduled function a reserved
concurrency of 1): overlapping runs lose no row, but may leave duplicates until the
next run removes them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from fanout_core import aws
from fanout_core.arrow import SCHEMA_VERSION_KEY
from fanout_core.errors import TerminalError, TransientError
from writer.convert import SCHEMA, RowGroupWriter, drop_seen

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_TARGET_BYTES = 128 * MIB
DEFAULT_ROW_GROUP_BYTES = 64 * MIB
DEFAULT_ORPHAN_AGE = timedelta(hours=1)
COMPACTED_PREFIX = "compacted-"
RECORD_PREFIX = "_compaction-"
COMPACTION_KEY = b"fanout.compaction"
_COMPACTED = re.compile(r"compacted-(?P<digest>[0-9a-f]{16})-(?P<number>\d+)\.parquet")
_RECORD = re.compile(r"_compaction-(?P<digest>[0-9a-f]{16})\.parquet")
RECORD_KEY = b"fanout.compaction.record"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DELETE_BATCH = 1000
_RELISTS = 3


class PartitionChangedError(TransientError):
    """An input changed or vanished while it was being compacted; a new run starts over."""

    reason = "partition_changed"


class IncompatibleFileError(TerminalError):
    """A file of the partition was written with another schema version than this code's."""

    reason = "incompatible_file"


@dataclass(frozen=True)
class StoredFile:
    """One parquet object of a partition, as the listing shows it."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class CompactionRecord:
    """The commit of one compaction run: its outputs replace its inputs."""

    key: str
    digest: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass
class PartitionListing:
    """One listing of a partition: its parquet files and its commit records."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    records: dict[str, CompactionRecord] = field(default_factory=dict)
    pages: int = 0

    def committed(self) -> set[str]:
        """The compacted outputs some commit record names."""
        return {key for record in self.records.values() for key in record.outputs}

    def uncommitted(self) -> list[str]:
        """Compacted outputs no commit record names (a run in flight, or one that died)."""
        committed = self.committed()
        return [
            key
            for key in sorted(self.files)
            if compacted_digest(key) is not None and key not in committed
        ]


@dataclass
class CompactResult:
    """What compacting one partition did.

    Attributes:
        partition: The partition's prefix (``parquet/date=YYYY-MM-DD/``).
        inputs: Files read and then deleted.
        kept: Compacted files left as they were (at least half the target size).
        outputs: Files written, with their row counts.
        rows: Rows written.
        duplicates: Rows dropped because their descriptor id was already written.
        record: Key of the commit record (``None`` when there was nothing to do).
        settled: Objects an earlier run left behind, deleted before starting.
    """

    partition: str
    inputs: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    outputs: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    duplicates: int = 0
    record: str | None = None
    settled: int = 0


def partition_prefix(parquet_prefix: str, day: str) -> str:
    """The prefix of one date partition."""
    return f"{parquet_prefix}date={day}/"


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def compacted_digest(key: str) -> str | None:
    """The run digest in a compacted file's name, or ``None`` for any other file."""
    match = _COMPACTED.fullmatch(_name(key))
    return match["digest"] if match else None


def live_files(listing: PartitionListing) -> list[str]:
    """The files that hold a partition's rows, each row once, per the commit rule.

    A file is live unless a commit record names it as an input, or it is a compacted
    output that no commit record names (its run has not committed, or never will).
    """
    superseded = {key for record in listing.records.values() for key in record.inputs}
    hidden = superseded | set(listing.uncommitted())
    return [key for key in sorted(listing.files) if key not in hidden]


def list_partition(s3: Any, bucket: str, prefix: str) -> PartitionListing:
    """List a partition once and read its commit records."""
    listing = PartitionListing()
    record_keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        listing.pages += 1
        for item in page.get("Contents", []):
            key = item["Key"]
            name = key[len(prefix) :]
            if "/" in name:
                continue
            if _RECORD.fullmatch(name):
                record_keys.append(key)
            elif name.endswith(".parquet"):
                listing.files[key] = StoredFile(
                    key, item["Size"], item["ETag"].strip('"'), item["LastModified"]
                )
    for key in record_keys:
        record = _read_record(s3, bucket, key)
        if record is not None:
            listing.records[record.digest] = record
    return listing


def _read_record(s3: Any, bucket: str, key: str) -> CompactionRecord | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None  # removed since the listing: nothing refers to it any more
    document = json.loads(pq.read_metadata(io.BytesIO(body)).metadata[RECORD_KEY])
    match = _RECORD.fullmatch(_name(key))
    assert match is not None
    return CompactionRecord(
        key=key,
        digest=match["digest"],
        inputs=tuple(document["inputs"]),
        outputs=tuple(document["outputs"]),
    )


def live_keys(bucket: str, parquet_prefix: str, day: str, *, s3: Any = None) -> list[str]:
    """The keys a reader should read for one partition to see each row exactly once."""
    s3 = s3 or aws.client("s3")
    prefix = partition_prefix(parquet_prefix, day)
    listing = list_partition(s3, bucket, prefix)
    for _ in range(_RELISTS):
        # Pages of one listing are taken at different moments; a commit that landed
        # between them shows up as outputs without their record, so list again.
        if listing.pages <= 1 or not listing.uncommitted():
            break
        listing = list_partition(s3, bucket, prefix)
    return live_files(listing)


def compact_partition(
    bucket: str,
    parquet_prefix: str,
    day: str,
    *,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    compression: str = "zstd",
    orphan_age: timedelta = DEFAULT_ORPHAN_AGE,
    s3: Any = None,
) -> CompactResult:
    """Compact ``s3://bucket/<parquet_prefix>date=<day>/`` (see the module's docstring).

    Args:
        bucket: The data bucket.
        parquet_prefix: Root of the partitioned tree (``parquet/``).
        day: The partition's date, ``YYYY-MM-DD``.
        target_bytes: Size on disk at which an output file is closed.
        row_group_bytes: Uncompressed bytes per row group of the outputs.
        compression: Parquet compression of the outputs.
        orphan_age: How old an uncommitted output must be before it is deleted.
        s3: An S3 client; the shared one by default.

    Raises:
        PartitionChangedError: If an input changed or vanished while being read.
        IncompatibleFileError: If a file has another schema version than this code's.
    """
    s3 = s3 or aws.client("s3")
    prefix = partition_prefix(parquet_prefix, _checked_date(day))
    result = CompactResult(partition=prefix)
    listing = list_partition(s3, bucket, prefix)
    result.settled = _settle(s3, bucket, listing, orphan_age)
    if result.settled:
        listing = list_partition(s3, bucket, prefix)
    live = live_files(listing)
    big = {
        key
        for key in live
        if compacted_digest(key) is not None and listing.files[key].size >= target_bytes // 2
    }
    with tempfile.TemporaryDirectory(prefix="fanout-compact-") as directory:
        seen: set[str] = set()
        result.kept = kept = _seed_seen(s3, bucket, [listing.files[k] for k in sorted(big)], seen)
        inputs = [key for key in live if key not in kept]
        # One file never repeats a row of its own (the writer and compaction both drop
        # repeats), so a lone input needs work only if it repeats a kept file's rows.
        lone = len(inputs) == 1 and (
            not seen or seen.isdisjoint(_ids(s3, bucket, listing.files[inputs[0]]))
        )
        if not inputs or lone:
            log.info("nothing to compact", extra={"partition": prefix, "files": len(live)})
            return result
        digest = _digest(listing.files[key] for key in inputs)
        outputs = _OutputFiles(
            Path(directory),
            prefix,
            digest,
            target_bytes=target_bytes,
            row_group_bytes=row_group_bytes,
            compression=compression,
        )
        for key in inputs:
            result.duplicates += _copy_new_rows(
                s3,
                bucket,
                listing.files[key],
                directory=Path(directory),
                seen=seen,
                outputs=outputs,
            )
            for done in outputs.completed():
                _upload(s3, bucket, done, result)
        outputs.close()
        for done in outputs.completed():
            _upload(s3, bucket, done, result)
    _check_outputs_exist(s3, bucket, prefix, result.outputs)
    result.record = _write_record(s3, bucket, prefix, digest=digest, inputs=inputs, result=result)
    _delete(s3, bucket, inputs)
    result.inputs = inputs
    result.settled += _settle(s3, bucket, list_partition(s3, bucket, prefix), orphan_age)
    log.info(
        "compacted",
        extra={
            "partition": prefix,
            "inputs": len(inputs),
            "kept": len(kept),
            "outputs": len(result.outputs),
            "rows": result.rows,
            "duplicates": result.duplicates,
        },
    )
    return result


def compact(
    bucket: str,
    parquet_prefix: str,
    *,
    dates: Sequence[str] | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    compression: str = "zstd",
    orphan_age: timedelta = DEFAULT_ORPHAN_AGE,
    s3: Any = None,
) -> list[CompactResult]:
    """Compact the partitions of ``dates`` (every partition when ``None``), one by one.

    A date without a partition is skipped.
    """
    s3 = s3 or aws.client("s3")
    existing = partition_dates(s3, bucket, parquet_prefix)
    wanted = existing if dates is None else [_checked_date(day) for day in dates]
    return [
        compact_partition(
            bucket,
            parquet_prefix,
            day,
            target_bytes=target_bytes,
            row_group_bytes=row_group_bytes,
            compression=compression,
            orphan_age=orphan_age,
            s3=s3,
        )
        for day in wanted
        if day in existing
    ]


def partition_dates(s3: Any, bucket: str, parquet_prefix: str) -> list[str]:
    """The dates that have a partition under ``parquet_prefix``."""
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{parquet_prefix}date=", Delimiter="/"
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            day = common["Prefix"][len(parquet_prefix) + len("date=") :].rstrip("/")
            if _DATE.fullmatch(day):
                found.append(day)
    return sorted(found)


def _checked_date(day: str) -> str:
    try:
        if _DATE.fullmatch(day) and date.fromisoformat(day):
            return day
    except ValueError:
        pass
    raise ValueError(f"{day!r} is not a date like 2026-11-27")


def _digest(files: Iterable[StoredFile]) -> str:
    text = "\n".join(f"{stored.key} {stored.etag}" for stored in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _settle(s3: Any, bucket: str, listing: PartitionListing, orphan_age: timedelta) -> int:
    """Finish or clean up what earlier runs left; return the objects deleted."""
    leftovers = sorted(
        {key for record in listing.records.values() for key in record.inputs} & listing.files.keys()
    )
    cutoff = datetime.now(UTC) - orphan_age
    orphans = [key for key in listing.uncommitted() if listing.files[key].last_modified <= cutoff]
    remaining = listing.files.keys() - set(leftovers) - set(orphans)
    unreferenced = [
        record.key
        for record in listing.records.values()
        if not remaining.intersection(record.inputs) and not remaining.intersection(record.outputs)
    ]
    if leftovers or orphans:
        log.warning(
            "settling an earlier run", extra={"leftover_inputs": leftovers, "orphans": orphans}
        )
    # Inputs and orphans go before the records that could make them count again.
    _delete(s3, bucket, [*leftovers, *orphans])
    _delete(s3, bucket, sorted(unreferenced))
    return len(leftovers) + len(orphans) + len(unreferenced)


def _seed_seen(s3: Any, bucket: str, files: list[StoredFile], seen: set[str]) -> list[str]:
    """Add the descriptor ids of the big compacted files to ``seen``; return those kept.

    A big file that repeats an id of another (two runs overlapped) is not kept: it is
    rewritten with the inputs instead.
    """
    kept = []
    for stored in files:
        ids = _ids(s3, bucket, stored)
        if seen.isdisjoint(ids) and len(set(ids)) == len(ids):
            seen.update(ids)
            kept.append(stored.key)
        else:
            log.warning("compacted file repeats rows; rewriting it", extra={"key": stored.key})
    return kept


def _ids(s3: Any, bucket: str, stored: StoredFile) -> list[str]:
    """The descriptor ids of one parquet object, read without downloading the rest."""
    with RangedObject(s3, bucket, stored.key, stored.size) as source:
        column = pq.ParquetFile(source).read(columns=["descriptor_id"]).column(0)
    ids: list[str] = column.to_pylist()
    return ids


def _copy_new_rows(
    s3: Any,
    bucket: str,
    stored: StoredFile,
    *,
    directory: Path,
    seen: set[str],
    outputs: _OutputFiles,
) -> int:
    """Append the rows of one input not seen before; return the rows dropped."""
    local = directory / "input.parquet"
    try:
        body = s3.get_object(Bucket=bucket, Key=stored.key, IfMatch=stored.etag)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "PreconditionFailed"):
            raise PartitionChangedError(
                f"s3://{bucket}/{stored.key} changed or vanished while compacting"
            ) from exc
        raise
    with local.open("wb") as copy:
        for piece in body.iter_chunks(chunk_size=8 * MIB):
            copy.write(piece)
    dropped = 0
    try:
        source = pq.ParquetFile(local)
        version = (source.schema_arrow.metadata or {}).get(SCHEMA_VERSION_KEY)
        expected = (SCHEMA.metadata or {}).get(SCHEMA_VERSION_KEY)
        if version != expected:
            raise IncompatibleFileError(
                f"s3://{bucket}/{stored.key} has schema version {version!r}, "
                f"this code writes {expected!r}"
            )
        for index in range(source.num_row_groups):
            table = source.read_row_group(index).cast(SCHEMA)
            table, repeated = drop_seen(table, seen)
            dropped += repeated
            outputs.write(table)
    finally:
        local.unlink(missing_ok=True)
    return dropped


@dataclass(frozen=True)
class _Output:
    key: str
    path: Path
    rows: int


class _OutputFiles:
    """Outputs ``compacted-<digest>-<n>.parquet``, each closed near ``target_bytes``."""

    def __init__(
        self,
        directory: Path,
        prefix: str,
        digest: str,
        *,
        target_bytes: int,
        row_group_bytes: int,
        compression: str,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.digest = digest
        self.target_bytes = target_bytes
        self.row_group_bytes = row_group_bytes
        self.compression = compression
        self._number = 0
        self._current: RowGroupWriter | None = None
        self._done: list[_Output] = []

    def write(self, table: pa.Table) -> None:
        """Append ``table``, a row group's worth at a time, closing files as they fill."""
        if table.num_rows == 0:
            return
        step = max(1, table.num_rows * self.row_group_bytes // max(table.nbytes, 1))
        for start in range(0, table.num_rows, step):
            self._write_slice(table.slice(start, step))

    def _write_slice(self, table: pa.Table) -> None:
        if self._current is None:
            self._current = RowGroupWriter(
                self.directory / f"output-{self._number}.parquet",
                compression=self.compression,
                row_group_bytes=self.row_group_bytes,
                metadata={COMPACTION_KEY: self.digest.encode()},
            )
        current = self._current
        current.write(table)
        if current.row_groups:
            # Close the file when one more row group of the size seen so far would pass
            # the target: what is held (less than a row group) is its last one.
            per_group = current.bytes_written / current.row_groups
            if current.bytes_written + per_group >= self.target_bytes:
                self._finish()

    def _finish(self) -> None:
        current = self._current
        if current is None:
            return
        current.close()
        name = f"{COMPACTED_PREFIX}{self.digest}-{self._number:04d}.parquet"
        self._done.append(_Output(self.prefix + name, current.path, current.rows))
        self._current = None
        self._number += 1

    def completed(self) -> list[_Output]:
        """The outputs closed since the last call."""
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._finish()


def _upload(s3: Any, bucket: str, output: _Output, result: CompactResult) -> None:
    s3.upload_file(str(output.path), bucket, output.key)
    output.path.unlink()
    result.outputs[output.key] = output.rows
    result.rows += output.rows


def _check_outputs_exist(s3: Any, bucket: str, prefix: str, outputs: dict[str, int]) -> None:
    # Only a run that overlapped this one for longer than orphan_age could have removed
    # them; committing without them would lose their rows.
    present = list_partition(s3, bucket, prefix).files
    missing = sorted(set(outputs) - present.keys())
    if missing:
        raise PartitionChangedError(f"outputs removed before the commit: {missing}")


def _write_record(
    s3: Any, bucket: str, prefix: str, *, digest: str, inputs: list[str], result: CompactResult
) -> str:
    key = f"{prefix}{RECORD_PREFIX}{digest}.parquet"
    document = {
        "inputs": inputs,
        "outputs": sorted(result.outputs),
        "kept": result.kept,
        "rows": result.rows,
        "duplicates": result.duplicates,
        "committed": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # A parquet file of no rows, the commit in its footer: engines that do not hide
    # ``_`` files read it as empty, and polars refuses a folder holding other files.
    schema = SCHEMA.with_metadata({**(SCHEMA.metadata or {}), RECORD_KEY: json.dumps(document)})
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer, use_compliant_nested_type=True)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return key


def _delete(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            raise PartitionChangedError(f"could not delete {len(errors)} objects: {errors[:3]}")


#: Bytes read from the end of a parquet file at once: its footer, in one ranged GET.
TAIL_BYTES = 64 * 1024


class RangedObject(io.RawIOBase):
    """An S3 object read with ranged GETs; the last :data:`TAIL_BYTES` are fetched once,
    so a parquet footer costs one request and a column one more per row group."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._size = s3, bucket, key, size
        self._position = 0
        self._tail_start = max(0, size - TAIL_BYTES)
        self._tail: bytes | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def _get(self, start: int, end: int) -> bytes:
        response = self._s3.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end - 1}"
        )
        data: bytes = response["Body"].read()
        return data

    def readinto(self, buffer: Any) -> int:
        end = min(self._position + len(buffer), self._size)
        if end <= self._position:
            return 0
        if self._position >= self._tail_start:
            if self._tail is None:
                self._tail = self._get(self._tail_start, self._size)
            data = self._tail[self._position - self._tail_start : end - self._tail_start]
        else:
            data = self._get(self._position, end)
        memoryview(buffer)[: len(data)] = data
        self._position += len(data)
        return len(data)


def main(argv: list[str] | None = None) -> int:
    """``python -m writer.compact``: compact partitions and print what was done as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m writer.compact",
        description="Compact date partitions of the parquet lake (AWS_ENDPOINT_URL honoured).",
    )
    parser.add_argument("--bucket", required=True, help="the data bucket")
    parser.add_argument("--prefix", default="parquet/", help="root of the parquet tree")
    parser.add_argument(
        "--date",
        action="append",
        dest="dates",
        metavar="YYYY-MM-DD",
        help="a partition to compact (repeatable; default: every partition)",
    )
    parser.add_argument("--target-bytes", type=int, default=DEFAULT_TARGET_BYTES)
    parser.add_argument("--row-group-bytes", type=int, default=DEFAULT_ROW_GROUP_BYTES)
    parser.add_argument("--compression", default="zstd", choices=["zstd", "snappy", "gzip", "none"])
    args = parser.parse_args(argv)
    prefix = args.prefix if args.prefix.endswith("/") else args.prefix + "/"
    try:
        results = compact(
            args.bucket,
            prefix,
            dates=args.dates,
            target_bytes=args.target_bytes,
            row_group_bytes=args.row_group_bytes,
            compression=args.compression,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps([asdict(result) for result in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
