"""Each handler's event parsing, fed AWS's own sample event shapes (tests/events/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fanout_core.descriptor import RequestDescriptor
from fanout_core.errors import InvalidEventError
from localstack.runner import ScheduleTrigger, s3_event, scheduled_event, sqs_event_record
from producer.produce import parse_event
from tests.conftest import sqs_record
from writer.events import created_objects


def test_writer_reads_the_s3_put_event_and_decodes_its_key(golden):
    objects = list(created_objects(golden("s3-put"), "raw/"))
    assert objects == [
        ("fanout-data", "raw/2026/11/27/09/fanout-records-1-2026-11-27-09-06-11 batch=1")
    ]


def test_writer_skips_records_outside_the_raw_prefix_and_other_events(golden):
    event = golden("s3-put")
    deleted = golden("s3-put")["Records"][0] | {"eventName": "ObjectRemoved:Delete"}
    elsewhere = golden("s3-put")["Records"][0]
    elsewhere["s3"]["object"]["key"] = "parquet/x.parquet"
    event["Records"] += [deleted, elsewhere]
    assert len(list(created_objects(event, "raw/"))) == 1


def test_writer_rejects_an_event_that_is_not_from_s3():
    with pytest.raises(InvalidEventError, match="Records"):
        list(created_objects({"detail-type": "Scheduled Event"}, "raw/"))


def test_sqs_golden_event_bodies_are_descriptors(golden):
    for record in golden("sqs-receive-message")["Records"]:
        assert RequestDescriptor.from_json(record["body"]).device_id.startswith("dev-")


def test_runner_builds_sqs_records_with_the_golden_events_keys(golden):
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "2",
        },
    }
    record = sqs_event_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    expected = golden("sqs-receive-message")["Records"][0]
    assert record.keys() == expected.keys()
    assert record["attributes"].keys() == expected["attributes"].keys()
    assert record["attributes"]["ApproximateReceiveCount"] == "2"


def test_runner_builds_s3_events_like_s3_with_url_encoded_keys(golden):
    event = s3_event("bucket", "raw/a b/c=d:e", 10, '"etag"', "us-east-1")
    expected = golden("s3-put")["Records"][0]
    record = event["Records"][0]
    assert record.keys() == expected.keys()
    assert record["s3"]["object"].keys() == expected["s3"]["object"].keys()
    assert record["s3"]["object"]["key"] == "raw/a+b/c%3Dd%3Ae"
    assert list(created_objects(event, "raw/")) == [("bucket", "raw/a b/c=d:e")]


def test_runner_builds_the_scheduled_event_the_producer_reads(golden):
    rule = ScheduleTrigger(
        "r", "arn:aws:events:us-east-1:123456789012:rule/r", "rate(1 hour)", ("p",)
    )
    event = scheduled_event(
        rule, "us-east-1", "123456789012", datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
    )
    assert event.keys() == golden("eventbridge-scheduled").keys()
    assert parse_event(event, 3600) == parse_event(golden("eventbridge-scheduled"), 3600)


def test_writer_reads_s3_notifications_that_arrive_through_sqs(golden):
    # given S3 -> SQS -> writer: SQS records whose bodies are S3's notification (and its test event)
    s3_notification = json.dumps(golden("s3-put"))
    test_event = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "fanout-data"}
    )
    event = {"Records": [sqs_record(test_event), sqs_record(s3_notification)]}
    # then the object is read as if S3 had invoked the writer itself
    assert list(created_objects(event, "raw/")) == list(created_objects(golden("s3-put"), "raw/"))
