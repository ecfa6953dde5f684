"""Account for every descriptor: written to parquet, quarantined, dead-lettered, or missing.

Reads what the pipeline left behind (parquet files, quarantine objects, the dead-letter
queue) through the standard AWS APIs, so it works against an emulator and AWS alike.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from writer.compact import live_keys, partition_dates

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
