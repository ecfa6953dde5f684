"""The local Lambda runner against the emulator: event source semantics, timeouts, async retries.

A probe function (tests/integration/probe_function) is deployed straight through the
Lambda API and run by the runner under the python3.12 runtime, as the stack's are.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from localstack.runner import FunctionPool, LocalLambda, discover
from localstack.runtime import lambda_runtime
from localstack.stack import EMULATOR_CREDENTIALS
from producer.produce import parse_event

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).parent / "probe_function"


def probe_zip(folder: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(PROBE.rglob("*.py")):
            archive.write(path, path.relative_to(PROBE).as_posix())
    target = folder / "probe.zip"
    target.write_bytes(buffer.getvalue())
    return target


@pytest.fixture
def probe(client, emulator, tmp_path):
    """A probe function (timeout 2 s) with an SQS mapping and an S3 trigger, like the stack's."""
    prefix = f"probe{uuid.uuid4().hex[:6]}"
    iam, lam, sqs, s3 = client("iam"), client("lambda"), client("sqs"), client("s3")
    role = iam.create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-requests",
        Attributes={
            "VisibilityTimeout": "3",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    failed_url = sqs.create_queue(QueueName=f"{prefix}-failed")["QueueUrl"]
    failed_arn = sqs.get_queue_attributes(QueueUrl=failed_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    package = probe_zip(tmp_path)
    function = lam.create_function(
        FunctionName=f"{prefix}-probe",
        Runtime="python3.12",
        Role=role,
        Handler="probe.handler.lambda_handler",
        Code={"ZipFile": package.read_bytes()},
        Timeout=2,
    )
    lam.put_function_event_invoke_config(
        FunctionName=function["FunctionName"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": failed_arn}},
    )
    lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=function["FunctionName"],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        Enabled=False,
    )
    bucket = f"{prefix}-bucket"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": function["FunctionArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )
    wiring = discover(client, prefix, "us-east-1")
    pool = FunctionPool(
        wiring,
        package_dir=tmp_path,
        work_dir=tmp_path / "run",
        runtime=lambda_runtime(ROOT / "build" / "runtime"),
        aws_env={**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": emulator, "AWS_REGION": "us-east-1"},
    )
    yield {
        "name": function["FunctionName"],
        "wiring": wiring,
        "pool": pool,
        "queue_url": queue_url,
        "dlq_url": dlq_url,
        "failed_url": failed_url,
        "bucket": bucket,
    }
    pool.close()


def drain(sqs, url: str) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages.extend(batch)
    return messages


def test_discover_reads_the_wiring_from_the_emulator(probe):
    wiring = probe["wiring"]
    (mapping,) = wiring.sqs_mappings
    assert (mapping.batch_size, mapping.window_seconds, mapping.report_batch_item_failures) == (
        10,
        1,
        True,
    )
    (trigger,) = wiring.s3_triggers
    assert (trigger.bucket, trigger.prefix) == (probe["bucket"], "raw/")
    spec = wiring.functions[probe["name"]]
    assert (spec.timeout, spec.max_retry_attempts, spec.handler) == (
        2,
        1,
        "probe.handler.lambda_handler",
    )


def test_remaining_time_counts_down_from_the_function_timeout(probe):
    outcome = probe["pool"].invoke(probe["name"], {"sleep": 0.5})
    assert outcome.ok
    assert 1000 <= outcome.result["remaining_ms"] <= 1500


def test_a_function_past_its_timeout_is_killed_and_the_next_invoke_starts_cold(probe):
    pool = probe["pool"]
    outcome = pool.invoke(probe["name"], {"sleep": 5})
    assert (
        outcome.timed_out and "Task timed out after 2.00 seconds" in outcome.error["errorMessage"]
    )
    assert 2.0 <= outcome.seconds < 3.5
    assert pool.invoke(probe["name"], {}).ok
    assert pool.stats[f"{probe['name']}.cold_starts"] == 2


def test_partial_batch_failures_keep_only_the_named_messages_until_they_dead_letter(probe, client):
    sqs = client("sqs")
    for body in ["ok-1", "ok-2", "ok-3", "fail-item-1"]:
        sqs.send_message(QueueUrl=probe["queue_url"], MessageBody=body)
    with LocalLambda(probe["wiring"], probe["pool"], client) as runner:
        assert runner.wait_idle(timeout=60)
    dead = [m["Body"] for m in drain(sqs, probe["dlq_url"])]
    assert dead == ["fail-item-1"]
    assert runner.stats.batch_item_failures >= 2


def test_a_function_error_returns_the_whole_batch_to_the_queue(probe, client):
    sqs = client("sqs")
    sqs.send_message_batch(
        QueueUrl=probe["queue_url"],
        Entries=[
            {"Id": "1", "MessageBody": "raise"},
            {"Id": "2", "MessageBody": "ok-with-a-bad-neighbour"},
        ],
    )
    with LocalLambda(probe["wiring"], probe["pool"], client) as runner:
        assert runner.wait_idle(timeout=60)
    assert sorted(m["Body"] for m in drain(sqs, probe["dlq_url"])) == [
        "ok-with-a-bad-neighbour",
        "raise",
    ]
    assert runner.stats.failed_batches >= 2


def test_an_s3_event_that_keeps_failing_is_retried_then_dead_lettered_with_its_error(probe, client):
    with LocalLambda(probe["wiring"], probe["pool"], client, poll_seconds=0.2) as runner:
        client("s3").put_object(Bucket=probe["bucket"], Key="raw/a b=c", Body=b"x")
        client("s3").put_object(Bucket=probe["bucket"], Key="elsewhere/x", Body=b"x")
        time.sleep(1)
        assert runner.wait_idle(timeout=60)
    (message,) = drain(client("sqs"), probe["failed_url"])
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "raw/a+b%3Dc"
    assert record["responsePayload"]["errorMessage"] == "cannot convert raw/a+b%3Dc"
    assert runner.stats.async_retries == 1
    assert runner.stats.s3_events == 1


def test_a_rule_with_an_input_transformer_shapes_the_tick_it_fires(probe, client):
    # given a rule like producer_shards' shard 1 of 3: a target with an input transformer
    events, prefix = client("events"), probe["name"].removesuffix("-probe")
    rule_arn = events.put_rule(Name=f"{prefix}-schedule-1", ScheduleExpression="rate(1 hour)")[
        "RuleArn"
    ]
    function_arn = client("lambda").get_function_configuration(FunctionName=probe["name"])[
        "FunctionArn"
    ]
    template = (
        '{"detail-type": "Scheduled Event", "source": "aws.events", "time": "<time>", '
        '"resources": ["<rule>"], "shard": 1, "shards": 3}'
    )
    events.put_targets(
        Rule=f"{prefix}-schedule-1",
        Targets=[
            {
                "Id": "producer-1",
                "Arn": function_arn,
                "InputTransformer": {
                    "InputPathsMap": {"time": "$.time", "rule": "$.resources[0]"},
                    "InputTemplate": template,
                },
            }
        ],
    )
    # when the runner reads the wiring and fires the rule
    wiring = discover(client, prefix, "us-east-1")
    [schedule] = wiring.schedules
    with LocalLambda(wiring, probe["pool"], client) as runner:
        [future] = runner.fire_schedule(schedule, datetime(2026, 11, 27, 9, 5, tzinfo=UTC))
        outcome = future.result(timeout=60)
    # then the function gets the tick shaped by the transformer: its time, rule and shard
    event = outcome.result["event"]
    assert event["resources"] == [rule_arn]
    request = parse_event(event, 3600)
    assert (request.kind, request.end.hour, request.shard) == ("schedule", 9, (1, 3))
