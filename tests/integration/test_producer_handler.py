"""The producer's handler against the emulator and the sample API's paginated listing."""

from __future__ import annotations

import json

import pytest

from fanout_core.errors import InvalidEventError
from producer.handler import lambda_handler
from tests.integration.conftest import API


def receive_all(sqs, queue_url: str) -> list[dict]:
    bodies = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(m["Body"]) for m in messages)


@pytest.fixture
def producer_env(monkeypatch, resources, api_url):
    monkeypatch.setenv("FANOUT_QUEUE_URL", resources.queue_url)
    monkeypatch.setenv("FANOUT_API_BASE_URL", api_url)
    monkeypatch.setenv("FANOUT_WINDOW", "1h")
    monkeypatch.delenv("FANOUT_DEVICES", raising=False)
    return resources


def test_scheduled_event_enqueues_the_last_window_for_every_listed_device(
    producer_env, client, golden, context
):
    # given EventBridge's Scheduled Event at 09:05 and an API listing 12 devices in pages of 5
    summary = lambda_handler(golden("eventbridge-scheduled"), context())
    # then one descriptor per device for 08:00-09:00 is on the queue
    bodies = receive_all(client("sqs"), producer_env.queue_url)
    assert summary["enqueued"] == API.devices == len(bodies)
    assert {b["device_id"] for b in bodies} == {f"dev-{i:05d}" for i in range(API.devices)}
    assert {(b["start"], b["end"]) for b in bodies} == {
        ("2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z")
    }


def test_backfilling_the_same_range_twice_enqueues_the_same_ids(producer_env, client, context):
    event = {
        "start": "2026-11-26T00:00:00Z",
        "end": "2026-11-26T03:00:00Z",
        "devices": ["dev-00001", "dev-00002"],
    }
    lambda_handler(event, context())
    first = receive_all(client("sqs"), producer_env.queue_url)
    lambda_handler(event, context())
    second = receive_all(client("sqs"), producer_env.queue_url)
    assert len(first) == 6
    assert sorted(b["id"] for b in first) == sorted(b["id"] for b in second)


def test_a_malformed_backfill_is_refused_and_enqueues_nothing(producer_env, client, context):
    with pytest.raises(InvalidEventError, match="not after start"):
        lambda_handler({"start": "2026-11-26T03:00:00Z", "end": "2026-11-26T00:00:00Z"}, context())
    assert receive_all(client("sqs"), producer_env.queue_url) == []
