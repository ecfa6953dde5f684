"""Request descriptors: what one SQS message asks the consumer to fetch.

A descriptor names a device and a time window, never a URL; the consumer builds the URL
from its own configured base. Its id is deterministic (device + window), so enqueueing
the same range twice yields the same ids and downstream can drop duplicates.

Message body::

    {"id": "dev-0001:20261127T080000Z:20261127T090000Z",
     "device_id": "dev-0001", "start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z"}
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fanout_core.errors import InvalidDescriptorError

# Starts with a letter or digit, so "." and ".." can never be a device id; the id becomes
# one URL path segment. The record contract checks documents' device ids against it too.
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)

_KEYS = frozenset({"id", "device_id", "start", "end"})
_MAX_BODY = 4096


def device_shard(device_id: str, shards: int) -> int:
    """Which of ``shards`` parts a device belongs to: a stable hash of its id, the same in
    every process and release, so the parts never overlap and always cover every device."""
    return zlib.crc32(device_id.encode()) % shards


def format_instant(moment: datetime) -> str:
    """``2026-11-27T08:00:00Z``: the wire form of a window boundary."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive one is taken as UTC.

    Raises:
        ValueError: If ``text`` is not ISO-8601.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RequestDescriptor:
    """A device and a half-open window ``[start, end)`` in UTC."""

    device_id: str
    start: datetime
    end: datetime
    #: Deterministic id: ``<device>:<start>:<end>`` in compact UTC (computed once).
    id: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        identity = f"{self.device_id}:{self.start:%Y%m%dT%H%M%SZ}:{self.end:%Y%m%dT%H%M%SZ}"
        object.__setattr__(self, "id", identity)

    def to_json(self) -> str:
        """The SQS message body."""
        return json.dumps(
            {
                "id": self.id,
                "device_id": self.device_id,
                "start": format_instant(self.start),
                "end": format_instant(self.end),
            },
            separators=(",", ":"),
        )

    def as_dict(self) -> dict[str, str]:
        """The descriptor as plain JSON values (for quarantine entries and logs)."""
        return {
            "id": self.id,
            "device_id": self.device_id,
            "start": format_instant(self.start),
            "end": format_instant(self.end),
        }

    @classmethod
    def from_json(cls, body: str | bytes) -> RequestDescriptor:
        """Parse and check an SQS message body.

        Raises:
            InvalidDescriptorError: If the body is not a well-formed descriptor.
        """
        if len(body) > _MAX_BODY:
            raise InvalidDescriptorError(f"body of {len(body)} bytes is too long for a descriptor")
        try:
            fields = json.loads(body)
        except ValueError as exc:
            raise InvalidDescriptorError(f"body is not JSON: {exc}") from exc
        if not isinstance(fields, dict):
            raise InvalidDescriptorError(f"body is a JSON {type(fields).__name__}, not an object")
        missing, extra = _KEYS - fields.keys(), fields.keys() - _KEYS
        if missing or extra:
            problems = [f"missing {sorted(missing)}"] if missing else []
            problems += [f"unknown {sorted(extra)}"] if extra else []
            raise InvalidDescriptorError("keys: " + ", ".join(problems))
        device_id, start_text, end_text = fields["device_id"], fields["start"], fields["end"]
        if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.fullmatch(device_id):
            raise InvalidDescriptorError(f"device_id: {str(device_id)[:40]!r} is not a device id")
        try:
            start, end = parse_instant(str(start_text)), parse_instant(str(end_text))
        except ValueError as exc:
            raise InvalidDescriptorError(f"start/end: {exc}") from exc
        if end <= start:
            raise InvalidDescriptorError(f"end {end_text!r} is not after start {start_text!r}")
        descriptor = cls(device_id, start, end)
        if fields["id"] != descriptor.id:
            raise InvalidDescriptorError(
                f"id: {str(fields['id'])[:80]!r} does not match its device and window "
                f"(expected {descriptor.id!r})"
            )
        return descriptor
