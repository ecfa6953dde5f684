"""Send records to Firehose with PutRecordBatch, retrying only what failed.

Firehose's limits: at most 500 records and 4 MiB per call, 1,000 KiB per record.
A record over the per-record limit can never be delivered and is reported as terminal.
A batch that needs several calls (several streams, or records too many or too large for
one call) makes them from up to :data:`CALL_THREADS` threads: the calls are round trips,
and one after another they would add up to most of a batch's time.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fanout_core import aws
from fanout_core.descriptor import device_shard
from fanout_core.errors import TerminalError

log = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
CALL_THREADS = 8


class RecordTooLargeError(TerminalError):
    """A record larger than Firehose's 1,000 KiB per-record limit."""

    reason = "record_too_large"


@dataclass
class DeliveryReport:
    """Which records made it, by the caller's key.

    Attributes:
        delivered: Keys of records Firehose accepted.
        failed: Keys of records still refused after the last attempt, with the error.
        too_large: Keys of records over the per-record limit (never sent).
        retried: How many record sends were retries.
    """

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    too_large: dict[str, int] = field(default_factory=dict)
    retried: int = 0


def chunks(records: Sequence[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    """Split into calls of at most 500 records and 4 MiB."""
    batches: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for key, data in records:
        if current and (len(current) == MAX_BATCH_RECORDS or size + len(data) > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append((key, data))
        size += len(data)
    if current:
        batches.append(current)
    return batches


def stream_for(descriptor_id: str, streams: Sequence[str]) -> str:
    """The stream a record goes to: chosen by a stable hash of its device id, so the load
    spreads evenly over the streams and one device's records stay together."""
    return streams[device_shard(descriptor_id.split(":", 1)[0], len(streams))]


def deliver(
    records: Sequence[tuple[str, bytes]],
    *,
    streams: Sequence[str],
    firehose: Any = None,
    attempts: int = 4,
    backoff_base: float = 0.1,
    seconds_left: Callable[[], float] = lambda: float("inf"),
) -> DeliveryReport:
    """Put ``(key, data)`` records into their streams; retry failed entries with backoff.

    Args:
        records: Caller's key (a descriptor id) and the record bytes (newline included).
        streams: The delivery streams; each record goes to :func:`stream_for`'s choice.
        firehose: A Firehose client; by default the shared one.
        attempts: Tries per record, counting the first.
        backoff_base: First backoff ceiling in seconds (full jitter, doubling).
        seconds_left: Seconds the caller can still wait; no retry sleeps past it.
    """
    firehose = firehose or aws.client("firehose")
    report = DeliveryReport()
    by_stream: dict[str, list[tuple[str, bytes]]] = {}
    for key, data in records:
        if len(data) > MAX_RECORD_BYTES:
            report.too_large[key] = len(data)
        else:
            by_stream.setdefault(stream_for(key, streams), []).append((key, data))
    calls = [
        (stream, batch) for stream, sendable in by_stream.items() for batch in chunks(sendable)
    ]

    def send(stream: str, batch: list[tuple[str, bytes]]) -> DeliveryReport:
        part = DeliveryReport()
        _deliver_batch(
            firehose,
            stream,
            batch,
            part,
            attempts=attempts,
            backoff_base=backoff_base,
            seconds_left=seconds_left,
        )
        return part

    if len(calls) <= 1:
        parts = [send(*call) for call in calls]
    else:
        with ThreadPoolExecutor(
            max_workers=min(CALL_THREADS, len(calls)), thread_name_prefix="deliver"
        ) as pool:
            # Each call runs in a copy of the caller's context, so its log fields and its
            # trace subsegment nest under the invocation's.
            futures = [
                pool.submit(contextvars.copy_context().run, send, stream, batch)
                for stream, batch in calls
            ]
            parts = [future.result() for future in futures]
    for part in parts:
        report.delivered.extend(part.delivered)
        report.failed.update(part.failed)
        report.retried += part.retried
    return report


def _deliver_batch(
    firehose: Any,
    stream: str,
    batch: list[tuple[str, bytes]],
    report: DeliveryReport,
    *,
    attempts: int,
    backoff_base: float,
    seconds_left: Callable[[], float],
) -> None:
    pending = batch
    errors: dict[str, str] = {}
    for attempt in range(attempts):
        if attempt:
            report.retried += len(pending)
            delay = random.uniform(0, backoff_base * 2**attempt)  # noqa: S311 (jitter)
            if delay > seconds_left():
                break
            time.sleep(delay)
        try:
            response = firehose.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": data} for _, data in pending]
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("PutRecordBatch failed as a whole: %s", exc, extra={"attempt": attempt})
            errors = {key: f"PutRecordBatch: {exc}" for key, _ in pending}
            continue
        if not response.get("FailedPutCount"):
            report.delivered.extend(key for key, _ in pending)
            return
        still: list[tuple[str, bytes]] = []
        errors = {}
        for (key, data), result in zip(pending, response["RequestResponses"], strict=True):
            if "ErrorCode" in result:
                still.append((key, data))
                errors[key] = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
            else:
                report.delivered.append(key)
        log.warning(
            "retrying %d of %d records Firehose refused",
            len(still),
            len(pending),
            extra={"attempt": attempt},
        )
        pending = still
    report.failed.update({key: errors.get(key, "not attempted") for key, _ in pending})
