"""Quarantine: where terminal failures land, with their reason, one object per invocation.

Key layout::

    <prefix><stage>/date=YYYY-MM-DD/<name>.ndjson

Each line is one :class:`QuarantineEntry` as JSON. ``name`` is chosen by the caller: the
consumer uses its invocation's request id, the writer a name derived from the source
object so that a re-delivery overwrites its own entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fanout_core import aws

EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class QuarantineEntry:
    """One input that can never succeed, and why.

    Attributes:
        reason: Stable cause, countable (``invalid_document``, ``upstream_rejected``...).
        detail: Human-readable explanation naming the field or status at fault.
        descriptor_id: The request descriptor's id, when one could be read.
        descriptor: The descriptor (or the raw message body when it was not one).
        status: The HTTP status of the answer, when there was one.
        excerpt: At most ``EXCERPT_BYTES`` of the offending body.
        source: Where the input came from (an SQS message id, or ``s3://bucket/key#line``).
    """

    reason: str
    detail: str
    descriptor_id: str | None = None
    descriptor: Any = None
    status: int | None = None
    excerpt: str | None = None
    source: str | None = None


def excerpt(body: bytes | str | None, limit: int = EXCERPT_BYTES) -> str | None:
    """The first ``limit`` bytes of ``body``, decoded leniently."""
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    text = raw[:limit].decode("utf-8", errors="replace")
    return text + "…" if len(raw) > limit else text


def quarantine_key(prefix: str, stage: str, name: str, now: datetime | None = None) -> str:
    """The key of one quarantine object."""
    moment = now or datetime.now(UTC)
    return f"{prefix}{stage}/date={moment:%Y-%m-%d}/{name}.ndjson"


def write_quarantine(
    entries: Iterable[QuarantineEntry],
    *,
    bucket: str,
    prefix: str,
    stage: str,
    name: str,
    s3: Any = None,
) -> str | None:
    """Write ``entries`` as one NDJSON object; return its key (``None`` when empty)."""
    lines = [json.dumps(asdict(entry), separators=(",", ":"), default=str) for entry in entries]
    if not lines:
        return None
    key = quarantine_key(prefix, stage, name)
    (s3 or aws.client("s3")).put_object(
        Bucket=bucket,
        Key=key,
        Body=("\n".join(lines) + "\n").encode(),
        ContentType="application/x-ndjson",
    )
    return key
