"""The consumer's handler: SQS-shaped events, a real HTTP API, Firehose and S3 in the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiohttp import web

from consumer.handler import lambda_handler
from fanout_core.descriptor import RequestDescriptor
from localstack.sample_api import expected_document
from tests.conftest import sqs_event
from tests.integration.conftest import API, list_keys, read
from tests.servers import serve_app

START = datetime(2026, 11, 27, 8, tzinfo=UTC)
END = datetime(2026, 11, 27, 9, tzinfo=UTC)


def descriptor(device: str) -> RequestDescriptor:
    return RequestDescriptor(device, START, END)


def faulty_api() -> web.Application:
    """Answers by the device's name: ok-*, gone-* (410), busy-* (503), float-*, broken-*."""

    async def readings(request: web.Request) -> web.Response:
        device = request.match_info["device_id"]
        kind = device.split("-")[0]
        document = expected_document(3, device, START, END, 20)
        if kind == "gone":
            return web.json_response({"error": "device retired"}, status=410)
        if kind == "busy":
            return web.json_response(
                {"error": "try later"}, status=503, headers={"Retry-After": "0"}
            )
        if kind == "float":
            document["values"][5] = 2.5
        if kind == "broken":
            return web.Response(
                body=b'{"device_id": "' + device.encode(), content_type="application/json"
            )
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/v1/devices/{device_id}/readings", readings)
    return app


@pytest.fixture
def consumer_env(monkeypatch, resources):
    monkeypatch.setenv("FANOUT_DELIVERY_STREAM", resources.stream)
    monkeypatch.setenv("FANOUT_BUCKET", resources.bucket)
    monkeypatch.setenv("FANOUT_REQUEST_TIMEOUT", "5")
    return resources


def delivered_lines(client, bucket: str) -> list[dict]:
    lines = []
    for key in list_keys(client, bucket, "raw/"):
        body = read(client, bucket, key)
        assert body.endswith(b"\n"), "every record is newline-terminated"
        lines.extend(json.loads(line) for line in body.splitlines())
    return lines


def quarantined(client, bucket: str) -> list[dict]:
    keys = list_keys(client, bucket, "quarantine/consumer/")
    return [json.loads(line) for key in keys for line in read(client, bucket, key).splitlines()]


def test_a_batch_of_good_descriptors_lands_in_firehose_as_ndjson(
    consumer_env, client, api_url, monkeypatch, context
):
    # given the sample API and a batch of 6 descriptors
    monkeypatch.setenv("FANOUT_API_BASE_URL", api_url)
    devices = [f"dev-{i:05d}" for i in range(6)]
    event = sqs_event(*(descriptor(d) for d in devices))
    # when the consumer handles it
    response = lambda_handler(event, context())
    # then nothing is retried and every document arrives once, with its descriptor id
    assert response == {"batchItemFailures": []}
    lines = delivered_lines(client, consumer_env.bucket)
    assert sorted(line["descriptor_id"] for line in lines) == sorted(
        descriptor(d).id for d in devices
    )
    for line in lines:
        expected = expected_document(API.seed, line["device_id"], START, END, API.values)
        assert {k: line[k] for k in expected} == expected
    assert quarantined(client, consumer_env.bucket) == []


def test_failures_are_sorted_into_retry_and_quarantine(consumer_env, client, monkeypatch, context):
    not_a_descriptor = '{"id": "nonsense"}'
    with serve_app(faulty_api()) as base:
        monkeypatch.setenv("FANOUT_API_BASE_URL", f"{base}/v1")
        event = sqs_event(
            descriptor("ok-1"),
            descriptor("gone-1"),
            descriptor("busy-1"),
            descriptor("float-1"),
            descriptor("broken-1"),
            not_a_descriptor,
            descriptor("ok-2"),
        )
        response = lambda_handler(event, context())

    message_of = {r["body"]: r["messageId"] for r in event["Records"]}
    # transient: only the 503 goes back to SQS
    assert response == {
        "batchItemFailures": [{"itemIdentifier": message_of[descriptor("busy-1").to_json()]}]
    }
    # delivered: the two good ones
    assert sorted(line["device_id"] for line in delivered_lines(client, consumer_env.bucket)) == [
        "ok-1",
        "ok-2",
    ]
    # quarantined: one object for the invocation, with reasons, statuses and excerpts
    assert len(list_keys(client, consumer_env.bucket, "quarantine/consumer/")) == 1
    entries = {
        e["descriptor_id"] or e["source"]: e for e in quarantined(client, consumer_env.bucket)
    }
    assert entries[descriptor("gone-1").id]["reason"] == "upstream_rejected"
    assert entries[descriptor("gone-1").id]["status"] == 410
    assert "device retired" in entries[descriptor("gone-1").id]["excerpt"]
    assert entries[descriptor("float-1").id]["reason"] == "invalid_document"
    assert "values: Element 5 is a float" in entries[descriptor("float-1").id]["detail"]
    assert entries[descriptor("broken-1").id]["reason"] == "malformed_json"
    invalid = entries[f"sqs:{message_of[not_a_descriptor]}"]
    assert invalid["reason"] == "invalid_descriptor"
    assert len(entries) == 4


def test_the_same_descriptor_twice_in_a_batch_is_fetched_and_delivered_once(
    consumer_env, client, api_url, monkeypatch, context
):
    monkeypatch.setenv("FANOUT_API_BASE_URL", api_url)
    response = lambda_handler(
        sqs_event(descriptor("dev-00003"), descriptor("dev-00003")), context()
    )
    assert response == {"batchItemFailures": []}
    assert len(delivered_lines(client, consumer_env.bucket)) == 1
