"""From fetched body to NDJSON record, or a reason naming what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from consumer.validate import MalformedJsonError, to_record
from fanout_core.descriptor import RequestDescriptor
from fanout_core.errors import InvalidDocumentError

DESCRIPTOR = RequestDescriptor(
    "dev-1", datetime(2026, 11, 27, 8, tzinfo=UTC), datetime(2026, 11, 27, 9, tzinfo=UTC)
)


def body(**changes: object) -> bytes:
    document = {"device_id": "dev-1", "datetime": "2026-11-27T08:12:00.123456", "values": [1, 2, 3]}
    document.update(changes)
    return json.dumps(document).encode()


def test_a_valid_document_becomes_one_newline_terminated_line_with_its_descriptor():
    line = to_record(DESCRIPTOR, body())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "device_id": "dev-1",
        "datetime": "2026-11-27T08:12:00.123456",
        "values": [1, 2, 3],
        "descriptor_id": DESCRIPTOR.id,
    }


def test_a_pretty_printed_document_still_makes_a_single_line():
    pretty = json.dumps(json.loads(body()), indent=2).encode()
    assert to_record(DESCRIPTOR, pretty).count(b"\n") == 1


def test_an_integer_beyond_64_bits_is_named_as_out_of_range_not_as_malformed_json():
    with pytest.raises(InvalidDocumentError) as caught:
        to_record(DESCRIPTOR, body(values=[1, 2**70]))
    assert not isinstance(caught.value, MalformedJsonError)
    assert "values: Element 1" in caught.value.detail


def test_malformed_json_is_its_own_reason_with_an_excerpt():
    with pytest.raises(MalformedJsonError) as caught:
        to_record(DESCRIPTOR, b'{"device_id": "dev-1", "values": [1, 2')
    assert caught.value.reason == "malformed_json"
    assert caught.value.excerpt.startswith('{"device_id"')


def test_a_document_for_another_device_is_rejected():
    with pytest.raises(InvalidDocumentError, match="device_id: document is for 'dev-2'"):
        to_record(DESCRIPTOR, body(device_id="dev-2"))


def test_an_invalid_document_keeps_a_bounded_excerpt_of_the_body():
    with pytest.raises(InvalidDocumentError) as caught:
        to_record(DESCRIPTOR, body(values=[0.5] * 5000))
    assert caught.value.reason == "invalid_document"
    assert len(caught.value.excerpt.encode()) <= 1024 + len("…".encode())
