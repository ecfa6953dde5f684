"""One SQS batch: parse, fetch, validate, deliver, quarantine, and say what to retry.

Every message ends in exactly one place: delivered to Firehose (deleted by SQS),
quarantined (deleted, never retried), or named in ``batchItemFailures`` (redelivered by
SQS, and dead-lettered after the queue's receive limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.deliver import RecordTooLargeError, deliver
from consumer.fetch import Fetched, FetchPolicy, Outcome, fetch_all
from consumer.validate import to_record
from fanout_core import aws
from fanout_core.descriptor import RequestDescriptor, format_instant
from fanout_core.errors import InvalidDescriptorError, TerminalError, TransientError
from fanout_core.metrics import MILLISECONDS, Metric
from fanout_core.quarantine import QuarantineEntry, excerpt, write_quarantine
from fanout_core.settings import ConsumerSettings

log = logging.getLogger(__name__)

#: Time kept back from fetching for delivery and the quarantine write.
RESERVE_SECONDS = 3.0
#: SQS's ceiling on a message's visibility timeout (12 hours).
MAX_VISIBILITY_SECONDS = 43200


@dataclass
class BatchResult:
    """What became of one batch.

    Attributes:
        retry_message_ids: Messages to report in ``batchItemFailures``.
        delivered: Descriptor ids whose record Firehose accepted.
        quarantined: Reason by descriptor id (or message id when unreadable).
        retried: Descriptor ids that needed more than one fetch attempt.
        fetched: How many descriptors got a complete 200 answer.
        valid: How many of those passed the record contract.
        quarantine_key: The quarantine object written, if any.
        fetch_seconds: Latency of each complete answer, first request to last byte.
        dead_lettered: Messages reported for retry on their last receive, which SQS moves
            to the dead-letter queue instead of redelivering (``None``: limit unknown).
        windows: The earliest window start and latest window end in the batch.
    """

    retry_message_ids: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    retried: list[str] = field(default_factory=list)
    fetched: int = 0
    valid: int = 0
    quarantine_key: str | None = None
    fetch_seconds: list[float] = field(default_factory=list)
    dead_lettered: int | None = None
    windows: tuple[str, str] | None = None

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response."""
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.retry_message_ids]}

    def counts(self) -> dict[str, int]:
        """Sizes, for logs and summaries."""
        return {
            "fetched": self.fetched,
            "valid": self.valid,
            "delivered": len(self.delivered),
            "quarantined": len(self.quarantined),
            "retry": len(self.retry_message_ids),
            "retried_fetches": len(self.retried),
        }

    def window_fields(self) -> dict[str, str]:
        """The batch's span of windows, for log lines (``window_start``, ``window_end``)."""
        if self.windows is None:
            return {}
        return {"window_start": self.windows[0], "window_end": self.windows[1]}

    def metrics(self, messages: int, seconds: float) -> dict[str, Metric]:
        """The batch's metrics (counts, fetch latency samples, duration) for EMF."""
        found = {
            "Messages": Metric(messages),
            "Fetched": Metric(self.fetched),
            "Valid": Metric(self.valid),
            "Delivered": Metric(len(self.delivered)),
            "Quarantined": Metric(len(self.quarantined)),
            "Retried": Metric(len(self.retried)),
            "Redelivered": Metric(len(self.retry_message_ids)),
            "FetchLatency": Metric([s * 1000 for s in self.fetch_seconds], MILLISECONDS),
            "BatchDuration": Metric(seconds * 1000, MILLISECONDS),
        }
        if self.dead_lettered is not None:
            found["DeadLettered"] = Metric(self.dead_lettered)
        return found


@dataclass
class _Messages:
    """An SQS batch read into descriptors; unreadable messages already quarantined."""

    descriptors: dict[str, RequestDescriptor] = field(default_factory=dict)
    message_ids: dict[str, list[str]] = field(default_factory=dict)
    unreadable: dict[str, QuarantineEntry] = field(default_factory=dict)
    receipt_handles: dict[str, str] = field(default_factory=dict)
    receive_counts: dict[str, int] = field(default_factory=dict)
    hints: dict[str, float | None] = field(default_factory=dict)
    queue_arn: str | None = None


def read_messages(records: Sequence[Mapping[str, Any]]) -> _Messages:
    """Parse each record's body as a descriptor; the same descriptor twice is fetched once."""
    batch = _Messages()
    for record in records:
        message_id = str(record.get("messageId"))
        batch.queue_arn = batch.queue_arn or record.get("eventSourceARN")
        if record.get("receiptHandle"):
            batch.receipt_handles[message_id] = str(record["receiptHandle"])
        try:
            batch.receive_counts[message_id] = int(record["attributes"]["ApproximateReceiveCount"])
        except (KeyError, TypeError, ValueError):
            batch.receive_counts[message_id] = 1
        try:
            descriptor = RequestDescriptor.from_json(record.get("body") or "")
        except InvalidDescriptorError as exc:
            batch.unreadable[message_id] = QuarantineEntry(
                reason=exc.reason,
                detail=exc.detail,
                descriptor=excerpt(record.get("body")),
                source=f"sqs:{message_id}",
            )
            continue
        batch.message_ids.setdefault(descriptor.id, []).append(message_id)
        batch.descriptors[descriptor.id] = descriptor
    return batch


def consume_batch(
    records: Sequence[Mapping[str, Any]],
    settings: ConsumerSettings,
    *,
    invocation_id: str,
    remaining_seconds: Callable[[], float] = lambda: 900.0,
    firehose: Any = None,
    s3: Any = None,
    sqs: Any = None,
) -> BatchResult:
    """Process the ``Records`` of one SQS event.

    Args:
        records: SQS records (``messageId``, ``body``...), as Lambda delivers them.
        settings: The consumer's settings.
        invocation_id: Names the quarantine object (the Lambda request id).
        remaining_seconds: Seconds until the function times out.
        firehose: A Firehose client; by default one that leaves retries to us.
        s3: An S3 client for quarantine; by default the shared one.
        sqs: An SQS client to defer redeliveries; by default the shared one.
    """
    result = BatchResult()
    batch = read_messages(records)
    if batch.descriptors:
        result.windows = (
            format_instant(min(d.start for d in batch.descriptors.values())),
            format_instant(max(d.end for d in batch.descriptors.values())),
        )
    outcomes = asyncio.run(
        fetch_all(
            batch.descriptors.values(),
            api_base_url=settings.api_base_url,
            policy=FetchPolicy(
                concurrency=settings.concurrency,
                connect_timeout=settings.connect_timeout,
                request_timeout=settings.request_timeout,
                max_body_bytes=settings.max_body_bytes,
                attempts=settings.fetch_attempts,
            ),
            seconds_left=lambda: remaining_seconds() - RESERVE_SECONDS,
            transform=to_record,
        )
    )
    lines, terminal, transient = _sort_outcomes(outcomes, result)

    # Our own retries, bounded by the deadline, replace botocore's: one attempt per call,
    # and a second kept back for the quarantine write.
    report = deliver(
        lines,
        streams=settings.delivery_streams,
        firehose=firehose or aws.client("firehose", attempts=1, read_timeout=10),
        seconds_left=lambda: remaining_seconds() - 1.0,
    )
    result.delivered = report.delivered
    for descriptor_id, size in report.too_large.items():
        terminal[descriptor_id] = RecordTooLargeError(
            f"record of {size} bytes exceeds Firehose's 1,000 KiB record limit"
        )
    for descriptor_id, refusal in report.failed.items():
        transient[descriptor_id] = TransientError(f"Firehose refused the record: {refusal}")

    quarantine = dict(batch.unreadable)
    for descriptor_id, exc in terminal.items():
        quarantine[descriptor_id] = QuarantineEntry(
            reason=exc.reason,
            detail=exc.detail,
            descriptor_id=descriptor_id,
            descriptor=batch.descriptors[descriptor_id].as_dict(),
            status=exc.status,
            excerpt=exc.excerpt,
            source=",".join(f"sqs:{m}" for m in batch.message_ids[descriptor_id]),
        )
    try:
        result.quarantine_key = write_quarantine(
            quarantine.values(),
            bucket=settings.bucket,
            prefix=settings.quarantine_prefix,
            stage="consumer",
            name=invocation_id,
            s3=s3 or aws.client("s3"),
        )
        result.quarantined = {key: entry.reason for key, entry in quarantine.items()}
        for key, entry in quarantine.items():
            log.info(
                "quarantined",
                extra={
                    "descriptor_id": entry.descriptor_id,
                    "message_id": None if entry.descriptor_id else key,
                    "reason": entry.reason,
                    "status": entry.status,
                },
            )
    except Exception:
        # Without its quarantine entry a terminal failure would vanish: retry it instead.
        log.exception("quarantine write failed; reporting its messages for retry")
        for key in quarantine:
            for message_id in batch.message_ids.get(key, [key]):
                result.retry_message_ids.append(message_id)
                batch.hints[message_id] = None

    for descriptor_id, error in transient.items():
        log.info("will retry", extra={"descriptor_id": descriptor_id, "reason": str(error)[:300]})
        for message_id in batch.message_ids[descriptor_id]:
            result.retry_message_ids.append(message_id)
            batch.hints[message_id] = error.retry_after
    if result.retry_message_ids:
        defer_redelivery(batch, result.retry_message_ids, settings, sqs=sqs)
        result.dead_lettered = last_receives(batch, result.retry_message_ids, sqs=sqs)
    else:
        result.dead_lettered = 0
    return result


_RECEIVE_LIMITS: dict[str, int | None] = {}


def last_receives(batch: _Messages, message_ids: Sequence[str], *, sqs: Any = None) -> int | None:
    """How many of ``message_ids`` failed on their queue's last allowed receive: SQS moves
    them to the dead-letter queue rather than deliver them again.

    The queue's ``maxReceiveCount`` is read once per queue and execution environment;
    ``None`` when it cannot be read (the count is then unknown, not zero).
    """
    if not batch.queue_arn:
        return None
    if batch.queue_arn not in _RECEIVE_LIMITS:
        try:
            limit = _receive_limit(batch.queue_arn, sqs or aws.client("sqs"))
        except Exception:
            log.warning("could not read the queue's redrive policy", exc_info=True)
            return None
        _RECEIVE_LIMITS[batch.queue_arn] = limit
    limit = _RECEIVE_LIMITS[batch.queue_arn]
    if limit is None:
        return None
    return sum(1 for m in message_ids if batch.receive_counts.get(m, 1) >= limit)


def _receive_limit(queue_arn: str, sqs: Any) -> int | None:
    """The queue's ``maxReceiveCount`` (``None``: the queue has no dead-letter queue)."""
    _, _, _, _, account, name = queue_arn.split(":", 5)
    queue_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    policy = attributes.get("Attributes", {}).get("RedrivePolicy")
    return int(json.loads(policy)["maxReceiveCount"]) if policy else None


def redelivery_delay(
    receive_count: int, retry_after: float | None, settings: ConsumerSettings
) -> int:
    """Seconds before SQS shows a failed message again: the server's ``Retry-After`` when it
    gave one, else a base that doubles with every receive, capped."""
    backoff = settings.redelivery_base_seconds * 2 ** max(0, receive_count - 1)
    wanted = max(backoff, math.ceil(retry_after or 0))
    return int(min(wanted, settings.redelivery_max_seconds, MAX_VISIBILITY_SECONDS))


def defer_redelivery(
    batch: _Messages, message_ids: Sequence[str], settings: ConsumerSettings, *, sqs: Any = None
) -> None:
    """Set each failed message's visibility so SQS redelivers it after its backoff.

    Best effort: when this fails the queue's own visibility timeout applies.
    """
    if not settings.redelivery_max_seconds or not batch.queue_arn:
        return
    sqs = sqs or aws.client("sqs")
    try:
        _, _, _, _, account, name = batch.queue_arn.split(":", 5)
        queue_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        entries = [
            {
                "Id": str(index),
                "ReceiptHandle": batch.receipt_handles[message_id],
                "VisibilityTimeout": redelivery_delay(
                    batch.receive_counts.get(message_id, 1), batch.hints.get(message_id), settings
                ),
            }
            for index, message_id in enumerate(message_ids)
            if message_id in batch.receipt_handles
        ]
        for start in range(0, len(entries), 10):
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries[start : start + 10]
            )
            if response.get("Failed"):
                log.warning("could not defer %d redeliveries", len(response["Failed"]))
    except Exception:
        log.warning(
            "could not defer redeliveries; the queue's visibility timeout applies", exc_info=True
        )


def _sort_outcomes(
    outcomes: Mapping[str, Outcome], result: BatchResult
) -> tuple[list[tuple[str, bytes]], dict[str, TerminalError], dict[str, TransientError]]:
    """Split outcomes into records to deliver, terminal failures and transient ones."""
    lines: list[tuple[str, bytes]] = []
    terminal: dict[str, TerminalError] = {}
    transient: dict[str, TransientError] = {}
    for descriptor_id, outcome in outcomes.items():
        if isinstance(outcome, Fetched):
            result.fetched += 1
            result.fetch_seconds.append(outcome.seconds)
            if outcome.attempts > 1:
                result.retried.append(descriptor_id)
            if outcome.rejected is not None:
                terminal[descriptor_id] = outcome.rejected
            elif outcome.data is not None:
                lines.append((descriptor_id, outcome.data))
        elif isinstance(outcome, TerminalError):
            terminal[descriptor_id] = outcome
        elif isinstance(outcome, TransientError):
            transient[descriptor_id] = outcome
    result.valid = len(lines)
    return lines, terminal, transient
