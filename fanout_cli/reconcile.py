"""Account for every descriptor: written to parquet, quarantined, dead-lettered, or missing.

Reads what the pipeline left behind (parquet files, quarantine objects, the dead-letter
queue) through the standard AWS APIs, so it works against an emulator and AWS alike.
Parquet files are read with ranged GETs: a footer for a row count, one column for ids.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow.parquet as pq

from writer.compact import RangedObject, live_keys, partition_dates

WRITTEN = "written"
DEAD_LETTERED = "dead_lettered"
MISSING = "missing"


@dataclass
class ParquetInventory:
    """The parquet files under a prefix and the descriptor ids in them."""

    files: dict[str, int] = field(default_factory=dict)
    ids: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return sum(self.files.values())


def _keys(s3: Any, bucket: str, prefix: str, suffix: str = "") -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(suffix):
                yield item["Key"]


def parquet_inventory(s3: Any, bucket: str, prefix: str) -> ParquetInventory:
    """Read the ``descriptor_id`` column of every live parquet file under ``prefix``.

    "Live" follows the lake's reader rule (:func:`writer.compact.live_keys`): compaction
    records, the inputs they retired and uncommitted outputs are not read, so a row is
    counted once at every moment of a compaction.
    """
    inventory = ParquetInventory()
    keys = [
        key
        for day in partition_dates(s3, bucket, prefix)
        for key in live_keys(bucket, prefix, day, s3=s3)
    ]
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        ids = pq.read_table(io.BytesIO(body), columns=["descriptor_id"]).column(0).to_pylist()
        inventory.files[key] = len(ids)
        inventory.ids.update(ids)
    return inventory


def quarantine_entries(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every quarantine entry (one JSON object per line) under ``prefix``."""
    entries: list[dict[str, Any]] = []
    for key in _keys(s3, bucket, prefix, ".ndjson"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        entries.extend(
            {**json.loads(line), "quarantine_key": key}
            for line in body.splitlines()
            if line.strip()
        )
    return entries


def dead_letters(sqs: Any, queue_url: str, peek_seconds: int = 30) -> list[dict[str, Any]]:
    """Every message in a dead-letter queue, read without deleting it.

    Messages stay invisible for ``peek_seconds`` after being read, then return.
    """
    seen: dict[str, dict[str, Any]] = {}
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=peek_seconds,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return list(seen.values())
        for message in messages:
            seen[message["MessageId"]] = message


@dataclass
class Reconciliation:
    """Where every enqueued descriptor ended.

    ``enqueued == written + quarantined + dead_lettered + missing`` always holds; a
    healthy run has ``missing == 0`` and ``duplicate_rows == 0``.
    """

    enqueued: int
    written: int
    quarantined: int
    dead_lettered: int
    missing: list[str]
    duplicate_rows: int
    unexpected: list[str]
    quarantine_reasons: dict[str, int]
    placement: dict[str, str]

    @property
    def balanced(self) -> bool:
        return not self.missing and not self.duplicate_rows and not self.unexpected

    def as_dict(self) -> dict[str, Any]:
        return {
            "enqueued": self.enqueued,
            "written": self.written,
            "quarantined": self.quarantined,
            "dead_lettered": self.dead_lettered,
            "missing": len(self.missing),
            "duplicate_rows": self.duplicate_rows,
            "unexpected": len(self.unexpected),
            "quarantine_reasons": self.quarantine_reasons,
        }


def descriptor_id_of_message(body: str) -> str | None:
    """The descriptor id in an SQS message body, if it has one."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def reconcile(
    enqueued: Iterable[str],
    parquet: ParquetInventory,
    quarantined: Iterable[dict[str, Any]],
    dead_lettered: Iterable[str],
) -> Reconciliation:
    """Place each enqueued id in exactly one outcome: written, else quarantined, else
    dead-lettered, else missing. ``placement`` maps each id to ``written``, its quarantine
    reason, ``dead_lettered`` or ``missing``."""
    expected = set(enqueued)
    written = expected & parquet.ids.keys()
    reasons: dict[str, str] = {}
    for entry in quarantined:
        descriptor_id = entry.get("descriptor_id")
        if descriptor_id in expected and descriptor_id not in written:
            reasons.setdefault(descriptor_id, entry.get("reason", "unknown"))
    dead = (expected & set(dead_lettered)) - written - reasons.keys()
    missing = sorted(expected - written - reasons.keys() - dead)
    placement = {
        **dict.fromkeys(written, WRITTEN),
        **reasons,
        **dict.fromkeys(dead, DEAD_LETTERED),
        **dict.fromkeys(missing, MISSING),
    }
    return Reconciliation(
        enqueued=len(expected),
        written=len(written),
        quarantined=len(reasons),
        dead_lettered=len(dead),
        missing=missing,
        duplicate_rows=sum(count - 1 for count in parquet.ids.values() if count > 1),
        unexpected=sorted(parquet.ids.keys() - expected),
        quarantine_reasons=dict(Counter(reasons.values())),
        placement=placement,
    )


# Reading the lake and the quarantine without downloading them whole (status, report).

_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class StoredParquet:
    """A live parquet file of the lake."""

    key: str
    size: int
    last_modified: datetime


def live_parquet(s3: Any, bucket: str, prefix: str, day: str) -> list[StoredParquet]:
    """The live files of one partition (the reader rule of :func:`writer.compact.live_keys`)."""
    keys = set(live_keys(bucket, prefix, day, s3=s3))
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}date={day}/"
    ):
        for item in page.get("Contents", []):
            if item["Key"] in keys:
                found.append(StoredParquet(item["Key"], item["Size"], item["LastModified"]))
    return sorted(found, key=lambda stored: stored.key)


def parquet_rows(s3: Any, bucket: str, stored: StoredParquet) -> int:
    """Rows in a parquet file, from its footer (one ranged GET for most files)."""
    metadata = pq.read_metadata(RangedObject(s3, bucket, stored.key, stored.size))
    return int(metadata.num_rows)


def parquet_descriptor_ids(s3: Any, bucket: str, stored: StoredParquet) -> list[str]:
    """The ``descriptor_id`` column of a parquet file, read alone with ranged GETs."""
    source = io.BufferedReader(RangedObject(s3, bucket, stored.key, stored.size), 1024 * 1024)
    table = pq.ParquetFile(source).read(columns=["descriptor_id"])
    ids: list[str] = table.column(0).to_pylist()
    return ids


def window_of(descriptor_id: str) -> tuple[datetime, datetime] | None:
    """The window ``[start, end)`` a descriptor id names (``<device>:<start>:<end>``)."""
    _, _, window = descriptor_id.partition(":")
    start_text, _, end_text = window.partition(":")
    try:
        start = datetime.strptime(start_text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        end = datetime.strptime(end_text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return start, end


def quarantine_entries_since(
    s3: Any, bucket: str, prefix: str, day: date | None = None
) -> list[dict[str, Any]]:
    """Quarantine entries written on ``day`` or later (every entry without ``day``), each
    with its ``quarantine_key`` and ``stage`` (``consumer``, ``writer``)."""
    entries: list[dict[str, Any]] = []
    for key in _keys(s3, bucket, prefix, ".ndjson"):
        stage, _, rest = key[len(prefix) :].partition("/")
        written = rest.removeprefix("date=")[:10]
        if day is not None and written < day.isoformat():
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        entries.extend(
            {**json.loads(line), "quarantine_key": key, "stage": stage}
            for line in body.splitlines()
            if line.strip()
        )
    return entries
