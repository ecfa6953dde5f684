"""Turn a fetched body into a stored record, or say exactly why it cannot be one."""

from __future__ import annotations

import json
from typing import Any

import orjson

from fanout_core.contract import validate_reading
from fanout_core.descriptor import RequestDescriptor
from fanout_core.errors import InvalidDocumentError
from fanout_core.quarantine import excerpt


class MalformedJsonError(InvalidDocumentError):
    """The body is not JSON at all."""

    reason = "malformed_json"


def parse_body(body: bytes) -> Any:
    """Parse JSON at C speed; fall back to ``json`` for what orjson refuses but is JSON.

    orjson rejects integers beyond 64 bits; ``json`` reads them, so the contract can name
    the out-of-range element instead of calling the document malformed.

    Raises:
        MalformedJsonError: If the body is not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedJsonError(
            f"body is not JSON: {exc}", {"_schema": ["Not JSON."]}, excerpt=excerpt(body)
        ) from exc


def to_record(descriptor: RequestDescriptor, body: bytes) -> bytes:
    """Validate ``body`` as the document for ``descriptor``; return one NDJSON line.

    The line is the document plus ``descriptor_id``, newline-terminated, ready for
    Firehose (which adds no separator of its own).

    Raises:
        InvalidDocumentError: Naming every failing field, with an excerpt of the body.
    """
    document = parse_body(body)
    try:
        reading = validate_reading(document)
    except InvalidDocumentError as exc:
        raise InvalidDocumentError(exc.detail, exc.errors, excerpt=excerpt(body)) from exc
    if reading["device_id"] != descriptor.device_id:
        raise InvalidDocumentError(
            f"device_id: document is for {reading['device_id']!r}, "
            f"the request was for {descriptor.device_id!r}",
            {"device_id": ["Does not match the request."]},
            excerpt=excerpt(body),
        )
    reading["descriptor_id"] = descriptor.id
    return orjson.dumps(reading, option=orjson.OPT_APPEND_NEWLINE)
