"""The producer: windows, events, deterministic descriptors, and enqueueing with retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fanout_core.errors import DeliveryError, InvalidEventError
from fanout_core.settings import ProducerSettings
from producer.produce import (
    align_down,
    descriptors_for,
    enqueue,
    parse_event,
    produce,
    windows_between,
)
from tests.fakes import FakeSqs

HOUR = 3600
SETTINGS = ProducerSettings(
    queue_url="http://queue",
    api_base_url=None,
    devices=("dev-a", "dev-b"),
    window_seconds=HOUR,
    send_threads=2,
)


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_windows_are_aligned_to_the_window_length_and_cover_the_range():
    windows = windows_between(at(8, 30), at(10, 15), HOUR)
    assert windows == [(at(8), at(9)), (at(9), at(10)), (at(10), at(11))]
    assert align_down(at(8, 59), 15 * 60) == at(8, 45)


def test_scheduled_event_asks_for_the_last_complete_window(golden):
    # given EventBridge's payload fired at 09:05
    request = parse_event(golden("eventbridge-scheduled"), HOUR)
    # then the window is 08:00-09:00 for every device
    assert (request.start, request.end, request.devices, request.kind) == (
        at(8),
        at(9),
        None,
        "schedule",
    )


def test_backfill_event_with_devices_and_window():
    request = parse_event(
        {
            "start": "2026-11-27T08:00:00Z",
            "end": "2026-11-27T09:00:00Z",
            "devices": ["x", "y", "x"],
            "window": "30m",
        },
        HOUR,
    )
    assert request.devices == ("x", "y")
    assert request.window_seconds == 1800


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"start": "yesterday", "end": "2026-11-27T09:00:00Z"}, "unparseable date"),
        ({"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T08:00:00Z"}, "not after start"),
        (
            {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z", "device": ["x"]},
            "unknown keys ['device']",
        ),
        ({"end": "2026-11-27T09:00:00Z"}, "'start' must be"),
        (
            {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z", "devices": []},
            "non-empty list",
        ),
        (
            {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z", "devices": ["../x"]},
            "not device ids",
        ),
        (
            {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z", "window": "1w"},
            "window",
        ),
        ({"detail-type": "Scheduled Event", "time": "noon"}, "'time'"),
        (
            {"detail-type": "Scheduled Event", "time": "2026-11-27T09:05:00Z", "shard": 3},
            "got shard=3, shards=None",
        ),
        (
            {
                "start": "2026-11-27T08:00:00Z",
                "end": "2026-11-27T09:00:00Z",
                "shard": 2,
                "shards": 2,
            },
            "0 <= shard < shards <= 1000",
        ),
        (
            {
                "start": "2026-11-27T08:00:00Z",
                "end": "2026-11-27T09:00:00Z",
                "shard": True,
                "shards": 2,
            },
            "must be whole numbers",
        ),
        (["start", "end"], "not an object"),
    ],
    ids=[
        "bad-date",
        "end-before-start",
        "unknown-key",
        "no-start",
        "empty-devices",
        "bad-device",
        "bad-window",
        "bad-schedule-time",
        "shard-without-shards",
        "shard-out-of-range",
        "shard-not-a-number",
        "not-object",
    ],
)
def test_malformed_events_are_rejected_and_nothing_is_enqueued(event, message):
    sqs = FakeSqs()
    with pytest.raises(InvalidEventError) as caught:
        produce(event, SETTINGS, sqs=sqs)
    assert message in str(caught.value)
    assert sqs.calls == 0


def test_enqueueing_the_same_range_twice_yields_the_same_ids():
    event = {"start": "2026-11-27T00:00:00Z", "end": "2026-11-28T00:00:00Z"}
    first, second = FakeSqs(), FakeSqs()
    produce(event, SETTINGS, sqs=first)
    produce(event, SETTINGS, sqs=second)
    ids = [json.loads(body)["id"] for body in first.messages]
    assert len(ids) == 48 == len(set(ids))
    assert sorted(ids) == sorted(json.loads(body)["id"] for body in second.messages)


def test_schedule_and_backfill_of_the_same_window_agree(golden):
    scheduled, backfilled = FakeSqs(), FakeSqs()
    produce(golden("eventbridge-scheduled"), SETTINGS, sqs=scheduled)
    produce(
        {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T09:00:00Z"}, SETTINGS, sqs=backfilled
    )
    assert sorted(scheduled.messages) == sorted(backfilled.messages)


def test_devices_come_from_the_api_listing_when_none_are_configured(golden):
    sqs = FakeSqs()
    settings = ProducerSettings("http://queue", "http://api/v1", (), HOUR, 1)
    summary = produce(
        golden("eventbridge-scheduled"),
        settings,
        sqs=sqs,
        device_lister=lambda url: ["p", "q", "r"],
    )
    assert summary["devices"] == 3
    assert {json.loads(b)["device_id"] for b in sqs.messages} == {"p", "q", "r"}


def test_enqueue_sends_batches_of_ten_and_retries_only_failed_entries():
    # given SQS that throttles every third entry on the first attempt of each call
    seen: set[str] = set()

    def refuse(entry, call):
        if entry["MessageBody"] in seen:
            return None
        seen.add(entry["MessageBody"])
        return "ThrottlingException" if int(entry["Id"]) % 3 == 0 else None

    sqs = FakeSqs(refuse)
    descriptors = parse_event(
        {"start": "2026-11-27T00:00:00Z", "end": "2026-11-27T05:00:00Z"}, HOUR
    )
    batch = descriptors_for(
        ["a", "b", "c"], windows_between(descriptors.start, descriptors.end, HOUR)
    )
    result = enqueue(batch, queue_url="q", sqs=sqs, threads=3)
    # then every descriptor is enqueued exactly once
    assert result.enqueued == 15
    assert result.retried_entries == 6
    assert sorted(sqs.messages) == sorted(d.to_json() for d in batch)


def test_enqueue_raises_on_a_sender_fault():
    sqs = FakeSqs(lambda entry, call: "InvalidMessageContents")
    request = parse_event({"start": "2026-11-27T00:00:00Z", "end": "2026-11-27T01:00:00Z"}, HOUR)
    with pytest.raises(DeliveryError, match="rejected"):
        enqueue(descriptors_for(["a"], [(request.start, request.end)]), queue_url="q", sqs=sqs)


def test_shards_split_the_devices_without_overlap_or_gap(golden):
    # given 200 devices and a tick split over 3 shards, as producer_shards = 3 sends it
    devices = [f"dev-{i:04d}" for i in range(200)]
    settings = ProducerSettings("http://queue", None, tuple(devices), HOUR, 2)
    tick = golden("eventbridge-scheduled")
    whole = FakeSqs()
    produce(tick, settings, sqs=whole)
    parts = []
    for shard in range(3):
        sqs = FakeSqs()
        summary = produce({**tick, "shard": shard, "shards": 3}, settings, sqs=sqs)
        assert summary["shard"] == f"{shard}/3"
        parts.append(sorted(sqs.messages))
    # then each shard has its share, and together they are the unsharded tick, once each
    assert all(40 < len(part) < 95 for part in parts)
    assert sorted(m for part in parts for m in part) == sorted(whole.messages)
