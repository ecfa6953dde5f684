"""Request descriptors: deterministic ids, strict parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fanout_core.descriptor import RequestDescriptor, parse_instant
from fanout_core.errors import InvalidDescriptorError

START = datetime(2026, 11, 27, 8, tzinfo=UTC)
END = datetime(2026, 11, 27, 9, tzinfo=UTC)


def test_descriptor_id_is_deterministic_from_device_and_window():
    first = RequestDescriptor("dev-00001", START, END)
    again = RequestDescriptor("dev-00001", START, END)
    assert first.id == again.id == "dev-00001:20261127T080000Z:20261127T090000Z"
    assert RequestDescriptor("dev-00002", START, END).id != first.id


def test_descriptor_round_trips_through_its_message_body():
    descriptor = RequestDescriptor("dev-00001", START, END)
    assert RequestDescriptor.from_json(descriptor.to_json()) == descriptor


def _body(**changes: object) -> str:
    fields = json.loads(RequestDescriptor("dev-00001", START, END).to_json())
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (_body(id=...), "missing ['id']"),
        (_body(url="http://elsewhere/"), "unknown ['url']"),
        (_body(device_id="../etc"), "not a device id"),
        (_body(device_id=7), "not a device id"),
        (_body(start="yesterday"), "start/end"),
        (_body(end="2026-11-27T07:00:00Z"), "is not after start"),
        (_body(id="dev-00009:20261127T080000Z:20261127T090000Z"), "does not match"),
        ("x" * 5000, "too long"),
    ],
    ids=[
        "not-json",
        "array",
        "missing-id",
        "extra-url",
        "path-device",
        "numeric-device",
        "bad-start",
        "end-before-start",
        "forged-id",
        "oversized",
    ],
)
def test_from_json_rejects_what_is_not_a_descriptor(body, message):
    with pytest.raises(InvalidDescriptorError) as caught:
        RequestDescriptor.from_json(body)
    assert message in caught.value.detail
    assert caught.value.reason == "invalid_descriptor"


def test_parse_instant_reads_naive_times_as_utc():
    assert parse_instant("2026-11-27T08:00:00") == START
    assert parse_instant("2026-11-27T10:00:00+02:00") == START
