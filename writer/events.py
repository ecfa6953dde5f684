"""Read what the writer's events ask for: the objects an S3 event names, the dates to compact."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from fanout_core.errors import InvalidEventError

log = logging.getLogger(__name__)


def created_objects(event: Mapping[str, Any], raw_prefix: str) -> Iterator[tuple[str, str]]:
    """Yield ``(bucket, key)`` for each ObjectCreated record under ``raw_prefix``.

    Takes S3's notification as S3 sends it to a function, or as an SQS event whose messages
    carry S3's notifications (S3 -> SQS -> Lambda; S3's ``s3:TestEvent`` is skipped). S3
    URL-encodes keys in events (a space arrives as ``+``); they are decoded here. Records for
    other events or other prefixes are logged and skipped.

    Raises:
        InvalidEventError: If ``event`` is not an S3 notification.
    """
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("not an S3 event: no 'Records' list")
    for record in _s3_records(records):
        try:
            name = record["eventName"]
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError) as exc:
            raise InvalidEventError(f"not an S3 event record: missing {exc}") from exc
        if record.get("eventSource") != "aws:s3" or not str(name).startswith("ObjectCreated:"):
            log.warning("skipping %s from %s", name, record.get("eventSource"))
            continue
        if not key.startswith(raw_prefix):
            log.warning("skipping s3://%s/%s: not under %s", bucket, key, raw_prefix)
            continue
        yield bucket, key


def _s3_records(records: list[Any]) -> Iterator[Any]:
    """S3 records, unwrapping those an SQS message carries."""
    for record in records:
        if isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs":
            try:
                inner = json.loads(record["body"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidEventError(f"SQS message is not an S3 notification: {exc}") from exc
            if inner.get("Event") == "s3:TestEvent":
                continue
            yield from inner.get("Records", [])
        else:
            yield record


def compaction_dates(event: Mapping[str, Any]) -> list[str]:
    """The partitions a compaction event asks for, as ``YYYY-MM-DD`` strings.

    EventBridge's Scheduled Event asks for the day before the event's ``time`` and that
    day (UTC), so late records of yesterday are compacted too; ``{"dates": [...]}`` asks
    for the dates it lists.

    Raises:
        InvalidEventError: If ``event`` is neither, or a date is not ``YYYY-MM-DD``.
    """
    if "dates" in event:
        dates = event["dates"]
        if not isinstance(dates, list) or not dates:
            raise InvalidEventError("'dates' must be a non-empty list of YYYY-MM-DD strings")
        for day in dates:
            try:
                if not isinstance(day, str) or len(day) != 10:
                    raise ValueError
                date.fromisoformat(day)
            except ValueError as exc:
                raise InvalidEventError(
                    f"{day!r} in 'dates' is not a date like 2026-11-27"
                ) from exc
        return sorted(set(dates))
    if event.get("detail-type") == "Scheduled Event":
        try:
            moment = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        except (KeyError, ValueError) as exc:
            raise InvalidEventError("Scheduled Event without a valid 'time'") from exc
        today = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
        return [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    raise InvalidEventError(
        "not a compaction event: expected an EventBridge Scheduled Event or {'dates': [...]}"
    )
