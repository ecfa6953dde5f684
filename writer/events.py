"""Read the objects an S3 event names."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from fanout_core.errors import InvalidEventError

log = logging.getLogger(__name__)


def created_objects(event: Mapping[str, Any], raw_prefix: str) -> Iterator[tuple[str, str]]:
    """Yield ``(bucket, key)`` for each ObjectCreated record under ``raw_prefix``.

    S3 URL-encodes keys in events (a space arrives as ``+``); they are decoded here.
    Records for other events or other prefixes are logged and skipped.

    Raises:
        InvalidEventError: If ``event`` is not an S3 notification.
    """
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("not an S3 event: no 'Records' list")
    for record in records:
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
