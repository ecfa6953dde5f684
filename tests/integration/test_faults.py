"""Every fault the sample API and the stack inject, met by the real consumer.

The sample API runs in its own process with one device pinned to each fault; the consumer
handler fetches them over real sockets, delivers through the Firehose fault proxy to the
emulator, and must sort each into delivered, quarantined (with the right reason) or
retried.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.request import urlopen

import pytest

from consumer.deliver import deliver
from consumer.handler import lambda_handler
from fanout_core import aws
from fanout_core.descriptor import RequestDescriptor
from localstack.faults import EXPECTED_REASON, TERMINAL, TRANSIENT
from localstack.processes import fault_proxy, sample_api
from localstack.runner import sqs_event_record
from localstack.sample_api import ApiConfig
from tests.integration.conftest import list_keys, read

START = datetime(2026, 11, 27, 8, tzinfo=UTC)
END = datetime(2026, 11, 27, 9, tzinfo=UTC)
DEVICES = 40
# dev-00000.. carry one fault each; the rest answer well (gzip-encoded).
FAULTS = {f"dev-{i:05d}": fault for i, fault in enumerate([*TRANSIENT, *TERMINAL])}
HEALTHY = [f"dev-{i:05d}" for i in range(len(FAULTS), DEVICES)]


@pytest.fixture(scope="module")
def faulty_api(tmp_path_factory):
    spec = ",".join(["gzip=1.0", *(f"device:{d}={f}" for d, f in FAULTS.items())])
    config = ApiConfig(
        seed=3, devices=DEVICES, values=300, faults=spec, oversize_bytes=300_000, hang_seconds=8
    )
    with sample_api(config, tmp_path_factory.mktemp("faulty-api")) as server:
        yield server.url


def sqs_event_from_queue(sqs, queue_url: str, count: int) -> dict:
    """Receive ``count`` real messages and shape them as Lambda's SQS event."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    arn = attributes["Attributes"]["QueueArn"]
    messages: list[dict] = []
    while len(messages) < count:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        messages += response["Messages"]
    return {"Records": [sqs_event_record(m, arn, "us-east-1") for m in messages]}


@pytest.fixture
def fresh_clients():
    """These tests point boto3 at a proxy through the environment: no cached clients."""
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_each_fault_ends_where_it_must(
    faulty_api, resources, client, monkeypatch, context, tmp_path, fresh_clients
):
    # given every fault of the API and Firehose refusing a third of the records
    sqs = client("sqs")
    descriptors = {d: RequestDescriptor(d, START, END) for d in [*FAULTS, *HEALTHY]}
    for start in range(0, DEVICES, 10):
        chunk = list(descriptors.values())[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=resources.queue_url,
            Entries=[{"Id": str(i), "MessageBody": d.to_json()} for i, d in enumerate(chunk)],
        )
    event = sqs_event_from_queue(sqs, resources.queue_url, DEVICES)
    with fault_proxy(client("s3").meta.endpoint_url, "firehose-partial=0.3", 1, tmp_path) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_FIREHOSE", proxy.url)
        monkeypatch.setenv("FANOUT_API_BASE_URL", faulty_api)
        monkeypatch.setenv("FANOUT_DELIVERY_STREAM", resources.stream)
        monkeypatch.setenv("FANOUT_BUCKET", resources.bucket)
        monkeypatch.setenv("FANOUT_REQUEST_TIMEOUT", "2")
        monkeypatch.setenv("FANOUT_MAX_BODY_BYTES", "200000")
        monkeypatch.setenv("FANOUT_REDELIVERY_BASE_SECONDS", "40")
        # when the consumer handles the batch
        response = lambda_handler(event, context(60))
        injected = json.load(urlopen(f"{proxy.url}/_fault_proxy/stats"))

    device_of = {r["messageId"]: json.loads(r["body"])["device_id"] for r in event["Records"]}
    retried = {device_of[item["itemIdentifier"]] for item in response["batchItemFailures"]}
    delivered = [
        json.loads(line)["device_id"]
        for key in list_keys(client, resources.bucket, "raw/")
        for line in read(client, resources.bucket, key).splitlines()
    ]
    (quarantine_key,) = list_keys(client, resources.bucket, "quarantine/consumer/")
    entries = map(json.loads, read(client, resources.bucket, quarantine_key).splitlines())
    quarantined = {e["descriptor"]["device_id"]: e for e in entries}

    # then: slow answers and gzip land once each, despite Firehose refusing records
    transient = {d for d, f in FAULTS.items() if f in TRANSIENT and f != "tail"}
    assert injected["records_failed"] > 0
    assert sorted(delivered) == sorted([*HEALTHY, *(d for d, f in FAULTS.items() if f == "tail")])
    # transient faults go back to SQS, deferred by the configured backoff
    assert retried == transient
    # terminal faults are quarantined with the reason their fault must produce
    assert {d: e["reason"] for d, e in quarantined.items()} == {
        d: EXPECTED_REASON[f] for d, f in FAULTS.items() if f in TERMINAL
    }
    assert all(len(e["excerpt"] or "") <= 1030 for e in quarantined.values())
    assert quarantined[next(d for d, f in FAULTS.items() if f == "404")]["status"] == 404
    visible = sqs.receive_message(
        QueueUrl=resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    assert visible.get("Messages", []) == [], "deferred messages stay invisible for 40 s"


def test_firehose_failing_whole_calls_and_records_still_lands_each_record_once(
    resources, client, tmp_path
):
    records = [(f"d{i}", json.dumps({"i": i}).encode() + b"\n") for i in range(300)]
    plan = "firehose-partial=0.2,firehose-call=0.3"
    with fault_proxy(client("s3").meta.endpoint_url, plan, 2, tmp_path) as proxy:
        firehose = aws.new_client("firehose", "us-east-1", attempts=1, endpoint_url=proxy.url)
        started = time.monotonic()
        report = deliver(
            records, streams=[resources.stream], firehose=firehose, attempts=10, backoff_base=0.01
        )
        injected = json.load(urlopen(f"{proxy.url}/_fault_proxy/stats"))
    assert time.monotonic() - started < 60
    assert injected["calls_failed"] > 0 and injected["records_failed"] > 0
    assert sorted(report.delivered) == sorted(key for key, _ in records)
    landed = [
        line
        for key in list_keys(client, resources.bucket, "raw/")
        for line in read(client, resources.bucket, key).splitlines()
    ]
    assert sorted(landed) == sorted(data.rstrip(b"\n") for _, data in records)
