"""``fanout report``: where every descriptor of a range ended, and how the work went.

The reconciliation is exact and reads only what the pipeline left behind:

* expected: every device times every aligned window of the range (the devices given, listed
  by the API, or, by default, found anywhere in the outcome stores for the range);
* written: descriptor ids in the live parquet files of the range's date partitions
  (the ``descriptor_id`` column alone, read with ranged GETs);
* quarantined: quarantine entries written since the range began, by reason;
* dead-lettered: the dead-letter queue's message bodies (read without deleting them);
* missing: the rest. While the request queue still holds messages, some of those are
  simply not done yet: the report says how many messages wait.

How the work went (throughput over time, fetch latency) comes from the consumer's
``batch done`` log lines, each of which names its batch's span of windows and carries its
metrics (EMF): a folder or file of JSON log lines (``--logs``, as the local runner
writes them), or else the consumer's CloudWatch Logs group. Batches are counted when
their windows overlap the range.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from fanout_cli.reconcile import (
    ParquetInventory,
    Reconciliation,
    dead_letters,
    descriptor_id_of_message,
    live_parquet,
    parquet_descriptor_ids,
    quarantine_entries_since,
    reconcile,
    window_of,
)
from fanout_cli.status import queue_depths
from fanout_cli.target import Stack
from fanout_core.descriptor import format_instant
from fanout_core.metrics import samples
from producer.produce import windows_between
from writer.compact import partition_dates

READ_THREADS = 8
BATCH_MESSAGES = ("batch done", "batch done: more samples")


@dataclass(frozen=True)
class Batch:
    """One consumer batch, from its ``batch done`` line."""

    at: datetime
    messages: int
    fetched: int
    valid: int
    delivered: int
    quarantined: int
    redelivered: int
    seconds: float


@dataclass
class Activity:
    """How the work on the range went, from the consumer's log lines."""

    source: str | None = None
    batches: list[Batch] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    lines_read: int = 0


@dataclass
class Report:
    """A range's reconciliation and activity."""

    start: datetime
    end: datetime
    window_seconds: int
    windows: int
    devices: list[str]
    devices_source: str
    reconciliation: Reconciliation
    queue: dict[str, int]
    activity: Activity
    stack: str
    endpoint: str
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        latencies = sorted(self.activity.latencies_ms)
        return {
            "stack": self.stack,
            "endpoint": self.endpoint,
            "start": format_instant(self.start),
            "end": format_instant(self.end),
            "window_seconds": self.window_seconds,
            "windows": self.windows,
            "devices": len(self.devices),
            "devices_source": self.devices_source,
            **self.reconciliation.as_dict(),
            "missing_examples": self.reconciliation.missing[:20],
            "request_queue": self.queue,
            "activity": {
                "source": self.activity.source,
                "batches": len(self.activity.batches),
                "documents_delivered": sum(b.delivered for b in self.activity.batches),
                "fetch_latency_ms": {
                    "samples": len(latencies),
                    "p50": percentile(latencies, 0.5),
                    "p90": percentile(latencies, 0.9),
                    "p99": percentile(latencies, 0.99),
                },
            },
        }


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of sorted ``ordered`` (nearest rank)."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return round(ordered[index], 1)


def in_range(descriptor_id: str, start: datetime, end: datetime) -> bool:
    """Whether the window a descriptor id names starts within ``[start, end)``."""
    window = window_of(descriptor_id)
    return window is not None and start <= window[0] < end


def _days(start: datetime, end: datetime) -> set[str]:
    day, last = (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()
    found = set()
    while day <= last:
        found.add(day.isoformat())
        day += timedelta(days=1)
    return found


def written_in_range(stack: Stack, start: datetime, end: datetime) -> ParquetInventory:
    """Descriptor ids of the range in the lake (partitions a day either side of it)."""
    s3, bucket, prefix = stack.client("s3"), stack.bucket, stack.parquet_prefix
    days = sorted(_days(start, end) & set(partition_dates(s3, bucket, prefix)))
    files = [stored for day in days for stored in live_parquet(s3, bucket, prefix, day)]
    inventory = ParquetInventory()
    with ThreadPoolExecutor(READ_THREADS) as pool:
        columns = pool.map(lambda stored: parquet_descriptor_ids(s3, bucket, stored), files)
        for stored, ids in zip(files, columns, strict=True):
            kept = [i for i in ids if in_range(i, start, end)]
            inventory.files[stored.key] = len(kept)
            inventory.ids.update(kept)
    return inventory


def build(
    stack: Stack,
    *,
    start: datetime,
    end: datetime,
    window_seconds: int,
    devices: list[str] | None,
    devices_source: str,
    logs: Path | None,
) -> Report:
    """Reconcile the range ``[start, end)`` and read how the work on it went."""
    windows = windows_between(start, end, window_seconds)
    first, last = windows[0][0], windows[-1][1]
    inventory = written_in_range(stack, first, last)
    quarantined = [
        entry
        for entry in quarantine_entries_since(
            stack.client("s3"), stack.bucket, stack.quarantine_prefix, first.date()
        )
        if isinstance(entry.get("descriptor_id"), str)
        and in_range(entry["descriptor_id"], first, last)
    ]
    dead = [
        descriptor_id
        for message in dead_letters(stack.client("sqs"), stack.dead_letter_queue_url)
        if (descriptor_id := descriptor_id_of_message(message["Body"]))
        and in_range(descriptor_id, first, last)
    ]
    if devices is None:
        found = {*inventory.ids, *(e["descriptor_id"] for e in quarantined), *dead}
        devices = sorted({d.split(":", 1)[0] for d in found})
    expected = [
        f"{device}:{s:%Y%m%dT%H%M%SZ}:{e:%Y%m%dT%H%M%SZ}" for device in devices for s, e in windows
    ]
    return Report(
        start=first,
        end=last,
        window_seconds=window_seconds,
        windows=len(windows),
        devices=devices,
        devices_source=devices_source,
        reconciliation=reconcile(expected, inventory, quarantined, dead),
        queue=queue_depths(stack, stack.queue_url),
        activity=activity(stack, logs, first, last),
        stack=stack.target.stack,
        endpoint=stack.endpoint,
    )


# Activity, from the consumer's log lines


def log_lines(path: Path) -> Iterator[dict[str, Any]]:
    """JSON objects, one per line, from a file or every ``*.log``/``*.jsonl`` file of a folder."""
    files = [path] if path.is_file() else sorted([*path.glob("*.log"), *path.glob("*.jsonl")])
    for file in files:
        with file.open(errors="replace") as lines:
            for line in lines:
                if line.startswith("{"):
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict):
                        yield entry


def cloudwatch_lines(stack: Stack, since: datetime) -> list[dict[str, Any]] | None:
    """The consumer's batch lines in CloudWatch Logs since ``since`` (``None``: no group)."""
    pages = (
        stack.client("logs")
        .get_paginator("filter_log_events")
        .paginate(
            logGroupName=stack.consumer_log_group,
            startTime=int(since.timestamp() * 1000),
            filterPattern='{ $.message = "batch done*" }',
        )
    )
    entries: list[dict[str, Any]] = []
    try:
        for page in pages:
            for event in page.get("events", []):
                try:
                    entry = json.loads(event["message"])
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return entries


def _overlaps(entry: dict[str, Any], start: datetime, end: datetime) -> bool:
    try:
        window_start = datetime.fromisoformat(str(entry["window_start"]).replace("Z", "+00:00"))
        window_end = datetime.fromisoformat(str(entry["window_end"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    return window_start < end and window_end > start


def _moment(entry: dict[str, Any]) -> datetime:
    stamp = entry.get("_aws", {}).get("Timestamp") if isinstance(entry.get("_aws"), dict) else None
    if isinstance(stamp, int | float):
        return datetime.fromtimestamp(stamp / 1000, UTC)
    return datetime.fromisoformat(str(entry.get("time", "1970-01-01T00:00:00+00:00")))


def activity_from(
    entries: Iterable[dict[str, Any]], start: datetime, end: datetime, source: str
) -> Activity:
    """The consumer's batches (and fetch latencies) whose windows overlap the range."""
    found = Activity(source=source)
    for entry in entries:
        found.lines_read += 1
        if entry.get("message") not in BATCH_MESSAGES or entry.get("Function") != "consumer":
            continue
        if not _overlaps(entry, start, end):
            continue
        found.latencies_ms.extend(samples(entry, "FetchLatency"))
        if entry["message"] == "batch done":
            found.batches.append(
                Batch(
                    at=_moment(entry),
                    messages=int(entry.get("Messages", 0)),
                    fetched=int(entry.get("fetched", 0)),
                    valid=int(entry.get("valid", 0)),
                    delivered=int(entry.get("delivered", 0)),
                    quarantined=int(entry.get("quarantined", 0)),
                    redelivered=int(entry.get("retry", 0)),
                    seconds=float(entry.get("BatchDuration", 0.0)) / 1000,
                )
            )
    found.batches.sort(key=lambda batch: batch.at)
    return found


def activity(stack: Stack, logs: Path | None, start: datetime, end: datetime) -> Activity:
    """Activity from ``logs`` if given, else from the consumer's CloudWatch Logs group."""
    if logs is not None:
        return activity_from(log_lines(logs), start, end, str(logs))
    lines = cloudwatch_lines(stack, start)
    if lines is None:
        return Activity()
    return activity_from(lines, start, end, f"CloudWatch Logs {stack.consumer_log_group}")


# Text


def print_report(report: Report, out: TextIO, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return
    result = report.reconciliation
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(result.quarantine_reasons.items()))
    rows = [
        (
            "expected",
            result.enqueued,
            f"{len(report.devices):,} devices x {report.windows:,} windows",
        ),
        ("written", result.written, ""),
        ("quarantined", result.quarantined, reasons),
        ("dead-lettered", result.dead_lettered, ""),
        ("missing", len(result.missing), ""),
        ("duplicate rows", result.duplicate_rows, ""),
    ]
    lines = [
        f"stack {report.stack!r} at {report.endpoint}: {format_instant(report.start)} to "
        f"{format_instant(report.end)}, windows of {report.window_seconds}s; devices "
        f"{report.devices_source}",
        "",
    ]
    width = max(len(label) for label, _, _ in rows)
    for label, count, note in rows:
        lines.append(f"  {label:<{width}}  {count:>10,}  {note}".rstrip())
    if result.missing:
        waiting = report.queue["waiting"] + report.queue["in_flight"] + report.queue["delayed"]
        if waiting:
            lines.append(
                f"  (the request queue still holds {waiting:,} messages: some missing "
                "descriptors may just not be done yet)"
            )
        lines.append("  missing, first of them: " + ", ".join(result.missing[:5]))
    if report.devices_source == "found in the data":
        lines.append(
            "  (devices with nothing anywhere are not counted: name them with --devices or --all)"
        )
    done = report.activity
    lines.append("")
    if done.source is None:
        lines.append("activity: no consumer logs found (give --logs DIR)")
    else:
        latencies = sorted(done.latencies_ms)
        lines.append(
            f"activity ({done.source}): {len(done.batches):,} batches, "
            f"{sum(b.delivered for b in done.batches):,} documents delivered; fetch latency "
            f"p50 {percentile(latencies, 0.5)} ms, p90 {percentile(latencies, 0.9)} ms, "
            f"p99 {percentile(latencies, 0.99)} ms over {len(latencies):,} fetches"
        )
    out.write("\n".join(lines) + "\n")


def counts_by_reason(report: Report) -> Counter[str]:
    """How many expected descriptors ended in each place: ``written``, a quarantine
    reason, ``dead_lettered``, ``missing``."""
    return Counter(report.reconciliation.placement.values())
