"""The runner's input transformer shapes a tick as EventBridge does."""

from __future__ import annotations

import pytest

from localstack.eventbridge import find, transform
from producer.produce import parse_event

TICK = {
    "version": "0",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": "2026-11-27T09:05:00Z",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/fanout-schedule-1"],
    "detail": {},
}


def test_paths_take_names_and_indices():
    assert find(TICK, "$.time") == "2026-11-27T09:05:00Z"
    assert find(TICK, "$.resources[0]").endswith("rule/fanout-schedule-1")
    assert find(TICK, "$.resources[3]") is None
    assert find(TICK, "$.detail.missing") is None
    with pytest.raises(ValueError, match=r"only \.name and"):
        find(TICK, "$..time")


def test_quoted_placeholders_take_text_and_bare_ones_json():
    transformer = {
        "InputPathsMap": {"t": "$.time", "r": "$.resources", "d": "$.detail", "n": "$.n"},
        "InputTemplate": '{"at": "<t>", "rules": <r>, "detail": <d>, "n": <n>, "text": "<n>"}',
    }
    assert transform(transformer, {**TICK, "n": 3}) == {
        "at": "2026-11-27T09:05:00Z",
        "rules": TICK["resources"],
        "detail": {},
        "n": 3,
        "text": "3",
    }


def test_a_sharded_tick_is_a_scheduled_event_for_its_shard():
    # given infra/'s template for shard 1 of 3 (input_paths/input_template, as Terraform
    # outputs it)
    transformer = {
        "input_paths": {"time": "$.time", "rule": "$.resources[0]"},
        "input_template": '{"detail-type": "Scheduled Event", "source": "aws.events", '
        '"time": "<time>", "resources": ["<rule>"], "shard": 1, "shards": 3}',
    }
    # when a tick passes through it
    event = transform(transformer, TICK)
    # then the producer reads the tick's window and its shard
    request = parse_event(event, 3600)
    assert request.kind == "schedule"
    assert request.end.isoformat() == "2026-11-27T09:00:00+00:00"
    assert request.shard == (1, 3)
    assert event["resources"] == TICK["resources"]
