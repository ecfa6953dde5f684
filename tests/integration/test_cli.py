"""The ``fanout`` command against moto's server over HTTP: backfill, status, redrive, report.

Each test builds a small stack under its own name prefix, shaped as ``infra/`` names it:
``<stack>-requests`` with a redrive policy to ``<stack>-requests-dlq``,
``<stack>-failed-invocations``, and the bucket ``<stack>-<account>-<region>``.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.handler import lambda_handler as consume
from fanout_cli.__main__ import main
from fanout_core.descriptor import RequestDescriptor
from fanout_core.log import JsonFormatter
from tests.conftest import load_event, sqs_event
from tests.integration.conftest import API, REGION
from writer.convert import SCHEMA
from writer.handler import lambda_handler as write

ACCOUNT = "123456789012"


@dataclass
class StackUnderTest:
    name: str
    queue_url: str
    dead_letter_queue_url: str
    failed_url: str
    bucket: str
    stream: str


@pytest.fixture
def stack(client: Callable[[str], Any]) -> StackUnderTest:
    name = f"t{uuid.uuid4().hex[:8]}"
    sqs = client("sqs")
    dead = sqs.create_queue(QueueName=f"{name}-requests-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    requests = sqs.create_queue(
        QueueName=f"{name}-requests",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3})
        },
    )["QueueUrl"]
    failed = sqs.create_queue(QueueName=f"{name}-failed-invocations")["QueueUrl"]
    bucket = f"{name}-{ACCOUNT}-{REGION}"
    client("s3").create_bucket(Bucket=bucket)
    stream = f"{name}-records"
    client("firehose").create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "raw/",
        },
    )
    return StackUnderTest(name, requests, dead, failed, bucket, stream)


def fanout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command; return its exit status, stdout and stderr."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def drain(client: Callable[[str], Any], queue_url: str) -> list[str]:
    """Every message body in the queue, deleting them."""
    sqs, bodies = client("sqs"), []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def put_parquet(client: Callable[[str], Any], bucket: str, key: str, ids: list[str]) -> None:
    table = pa.table(
        {
            "device_id": [i.split(":")[0] for i in ids],
            "datetime": ["2026-11-27T08:00:00"] * len(ids),
            "values": [[1, 2, 3]] * len(ids),
            "descriptor_id": ids,
        },
        schema=SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    client("s3").put_object(Bucket=bucket, Key=key, Body=sink.getvalue())


def put_quarantine(
    client: Callable[[str], Any], bucket: str, key: str, entries: list[dict[str, Any]]
) -> None:
    body = "".join(json.dumps(e) + "\n" for e in entries)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())


def ident(device: str, start: str, end: str) -> str:
    return f"{device}:{start}:{end}"


# backfill


def test_backfill_enqueues_every_device_and_window_and_a_rerun_sends_the_same_ids(
    stack, client, capsys
):
    # given a range of three hourly windows and four devices
    argv = [
        "backfill",
        "--stack",
        stack.name,
        "--start",
        "2026-11-27T06:00:00Z",
        "--end",
        "2026-11-27T09:00:00Z",
        "--devices",
        "dev-00001,dev-00002",
        "--devices",
        "dev-00003,dev-00004",
    ]

    # when it is backfilled twice
    status, out, err = fanout(capsys, *argv)
    again, _, _ = fanout(capsys, *argv)

    # then twelve descriptors went to the request queue each time, with the same ids
    assert (status, again) == (0, 0)
    assert "enqueued 12 descriptors (4 devices x 3 windows" in out
    assert "enqueued 12/12" in err  # the progress bar's last line (no terminal: plain lines)
    bodies = [json.loads(b) for b in drain(client, stack.queue_url)]
    counts = Counter(b["id"] for b in bodies)
    assert len(counts) == 12
    assert set(counts.values()) == {2}
    assert ident("dev-00004", "20261127T080000Z", "20261127T090000Z") in counts


def test_backfill_all_lists_the_devices_from_the_api(stack, client, capsys, api_url):
    # when every device of the API is backfilled for one window
    status, out, _ = fanout(
        capsys,
        "backfill",
        "--stack",
        stack.name,
        "--start",
        "2026-11-27T08:00Z",
        "--end",
        "2026-11-27T09:00Z",
        "--all",
        "--api-base-url",
        api_url,
        "--json",
    )

    # then one descriptor per device the API lists (twelve, over three pages) was enqueued
    assert status == 0
    assert json.loads(out)["enqueued"] == API.devices
    assert len(drain(client, stack.queue_url)) == API.devices


def test_backfill_dry_run_prints_the_plan_and_needs_no_stack(capsys):
    # given no stack at all: the endpoint refuses connections
    status, out, _ = fanout(
        capsys,
        "backfill",
        "--endpoint-url",
        refused_endpoint(),
        "--start",
        "2026-11-27",
        "--end",
        "2026-11-28",
        "--window",
        "6h",
        "--devices",
        "dev-1,dev-2",
        "--dry-run",
        "--show",
        "all",
    )

    # then the plan is printed: 2 devices x 4 windows, each message body
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("would enqueue 8 descriptors: 2 devices x 4 windows of 6h")
    assert json.loads(lines[1]) == {
        "id": "dev-1:20261127T000000Z:20261127T060000Z",
        "device_id": "dev-1",
        "start": "2026-11-27T00:00:00Z",
        "end": "2026-11-27T06:00:00Z",
    }
    assert len(lines) == 9


# status


def test_status_shows_queues_quarantine_and_parquet(stack, client, capsys):
    # given messages waiting, one in flight, two dead-lettered...
    sqs = client("sqs")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    for body in ("d", "e"):
        sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=body)
    # ...quarantine entries of both stages, and parquet files in two partitions
    put_quarantine(
        client,
        stack.bucket,
        "quarantine/consumer/date=2026-11-27/req-1.ndjson",
        [{"reason": "upstream_rejected"}, {"reason": "upstream_rejected"}, {"reason": "bad"}],
    )
    put_quarantine(
        client,
        stack.bucket,
        "quarantine/writer/date=2026-11-28/obj.ndjson",
        [{"reason": "corrupt_line"}],
    )
    put_parquet(client, stack.bucket, "parquet/date=2026-11-27/a.parquet", ["x:1", "x:2", "x:3"])
    put_parquet(client, stack.bucket, "parquet/date=2026-11-27/b.parquet", ["y:1"])
    put_parquet(client, stack.bucket, "parquet/date=2026-11-28/c.parquet", ["z:1", "z:2"])

    # when the status is asked for, as JSON and as a table
    status, out, _ = fanout(capsys, "status", "--stack", stack.name, "--json")
    table_status, table, _ = fanout(capsys, "status", "--stack", stack.name)

    # then every number is there
    assert (status, table_status) == (0, 0)
    found = json.loads(out)
    queues = found["queues"]
    assert (queues["requests"]["waiting"], queues["requests"]["in_flight"]) == (2, 1)
    assert queues["dead_letter"]["waiting"] == 2
    assert queues["failed_invocations"]["waiting"] == 0
    assert found["quarantine"] == [
        {"stage": "consumer", "reason": "bad", "entries": 1},
        {"stage": "consumer", "reason": "upstream_rejected", "entries": 2},
        {"stage": "writer", "reason": "corrupt_line", "entries": 1},
    ]
    assert [(p["date"], p["files"], p["rows"]) for p in found["partitions"]] == [
        ("2026-11-27", 2, 4),
        ("2026-11-28", 1, 2),
    ]
    assert found["totals"]["rows"] == 6
    assert f"{stack.name}-requests-dlq" in table
    assert "date=2026-11-27" in table
    assert "consumer / upstream_rejected" in table


# redrive


def test_redrive_moves_every_dead_letter_back_to_the_request_queue(stack, client, capsys):
    # given 25 dead-lettered descriptors
    sqs = client("sqs")
    bodies = [
        RequestDescriptor(
            f"dev-{i:05d}",
            datetime(2026, 11, 27, 8, tzinfo=UTC),
            datetime(2026, 11, 27, 9, tzinfo=UTC),
        ).to_json()
        for i in range(25)
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=body)

    # when they are redriven with --yes
    status, out, _ = fanout(capsys, "redrive", "--stack", stack.name, "--yes")

    # then all of them are in the request queue, none in the dead-letter queue
    assert status == 0
    assert f"moved 25 messages from {stack.dead_letter_queue_url}" in out
    assert sorted(drain(client, stack.queue_url)) == sorted(bodies)
    assert drain(client, stack.dead_letter_queue_url) == []


def test_redrive_without_a_terminal_or_yes_refuses_and_moves_nothing(stack, client, capsys):
    client("sqs").send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody="x")

    status, _, err = fanout(capsys, "redrive", "--stack", stack.name)

    assert status == 2
    assert "Rerun with --yes" in err
    assert drain(client, stack.queue_url) == []
    assert drain(client, stack.dead_letter_queue_url) == ["x"]


def test_redrive_of_an_empty_dead_letter_queue_says_so(stack, capsys):
    status, out, _ = fanout(capsys, "redrive", "--stack", stack.name)

    assert status == 0
    assert "nothing to redrive" in out


# report


def run_pipeline_in_process(
    stack: StackUnderTest,
    descriptors: list[RequestDescriptor],
    api_url: str,
    client: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
    context: Callable[[], Any],
    log_file: Path,
) -> None:
    """The consumer on one batch, then the writer on what Firehose delivered; the
    consumer's JSON log lines go to ``log_file``."""
    monkeypatch.setenv("FANOUT_API_BASE_URL", api_url)
    monkeypatch.setenv("FANOUT_DELIVERY_STREAM", stack.stream)
    monkeypatch.setenv("FANOUT_BUCKET", stack.bucket)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        assert consume(sqs_event(*descriptors), context()) == {"batchItemFailures": []}
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    raw = client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="raw/")["Contents"]
    for item in raw:
        event = load_event("s3-put")
        event["Records"][0]["s3"]["bucket"]["name"] = stack.bucket
        event["Records"][0]["s3"]["object"]["key"] = item["Key"]
        write(event, context())


def test_report_reconciles_a_range_and_draws_its_page(
    stack, client, capsys, api_url, monkeypatch, context, tmp_path
):
    # given a range of two windows for four devices: the consumer and the writer process
    # six of the eight descriptors (one for a device the API does not know), one waits in
    # the dead-letter queue, and one never happened
    start, middle, end = (datetime(2026, 11, 27, h, tzinfo=UTC) for h in (6, 7, 8))
    devices = ["dev-00001", "dev-00002", "dev-00003", "nobody"]
    processed = [
        RequestDescriptor(d, s, e) for d in devices[:3] for s, e in ((start, middle), (middle, end))
    ] + [RequestDescriptor("nobody", start, middle)]
    logs = tmp_path / "consumer.log"
    run_pipeline_in_process(stack, processed, api_url, client, monkeypatch, context, logs)
    capsys.readouterr()  # the functions' own log lines
    dead = RequestDescriptor("nobody", middle, end)
    client("sqs").send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=dead.to_json())
    page = tmp_path / "report.html"

    # when the range is reported, naming the devices
    status, out, _ = fanout(
        capsys,
        "report",
        "--stack",
        stack.name,
        "--start",
        "2026-11-27T06:00Z",
        "--end",
        "2026-11-27T08:00Z",
        "--devices",
        ",".join(devices),
        "--logs",
        str(logs),
        "--html",
        str(page),
        "--json",
    )

    # then every descriptor is placed: written, quarantined with its reason, dead-lettered
    assert status == 0
    found = json.loads(out)
    assert (
        found["enqueued"],
        found["written"],
        found["quarantined"],
        found["dead_lettered"],
        found["missing"],
    ) == (8, 6, 1, 1, 0)
    assert found["quarantine_reasons"] == {"upstream_rejected": 1}
    assert found["duplicate_rows"] == 0
    # and the consumer's own batch line gives the activity: one batch, a latency per answer
    assert found["activity"]["batches"] == 1
    assert found["activity"]["fetch_latency_ms"]["samples"] == 6
    assert found["activity"]["documents_delivered"] == 6
    # and the page holds the verdict and three well-formed charts
    html = page.read_text()
    assert "All 8 descriptors accounted for." in html
    charts = [f"<svg{part.split('</svg>')[0]}</svg>" for part in html.split("<svg")[1:]]
    assert len(charts) == 3
    for chart in charts:
        ET.fromstring(chart)


def test_report_counts_missing_descriptors_and_reads_activity_from_cloudwatch_logs(
    stack, client, capsys
):
    # given one of two expected descriptors written, and the consumer's batch line in its
    # CloudWatch Logs group
    written = ident("dev-1", "20261127T080000Z", "20261127T090000Z")
    put_parquet(client, stack.bucket, "parquet/date=2026-11-27/a.parquet", [written])
    group = f"/aws/lambda/{stack.name}-consumer"
    now_ms = int(time.time() * 1000)
    logs = client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    line = {
        "message": "batch done",
        "function": "consumer",
        "Function": "consumer",
        "fetched": 1,
        "valid": 1,
        "delivered": 1,
        "quarantined": 0,
        "retry": 0,
        "window_start": "2026-11-27T08:00:00Z",
        "window_end": "2026-11-27T09:00:00Z",
        "FetchLatency": [12.5],
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": "fanout/pipeline",
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": "FetchLatency", "Unit": "Milliseconds"}],
                }
            ],
        },
    }
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now_ms, "message": json.dumps(line)}],
    )

    # when the range is reported for two devices, as text
    status, out, _ = fanout(
        capsys,
        "report",
        "--stack",
        stack.name,
        "--start",
        "2026-11-27T08:00Z",
        "--end",
        "2026-11-27T09:00Z",
        "--devices",
        "dev-1,dev-2",
    )

    # then the other is missing, named, and the activity comes from CloudWatch Logs
    assert status == 0
    assert "missing" in out
    assert ident("dev-2", "20261127T080000Z", "20261127T090000Z") in out
    assert f"activity (CloudWatch Logs {group}): 1 batches" in out
    assert "p50 12.5 ms" in out


# failing clearly


def refused_endpoint() -> str:
    """An http endpoint on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "command",
    [["status"], ["redrive", "--yes"], ["report", "--start", "2026-11-27", "--end", "2026-11-28"]],
    ids=["status", "redrive", "report"],
)
def test_an_endpoint_that_refuses_is_one_clear_line(command, emulator, capsys):
    endpoint = refused_endpoint()

    status, out, err = fanout(capsys, *command, "--endpoint-url", endpoint)

    assert status == 2
    assert out == ""
    assert err.startswith(f"fanout {command[0]}: cannot reach {endpoint}")
    assert "Traceback" not in err


def test_a_stack_that_is_not_there_is_named(emulator, capsys):
    status, _, err = fanout(capsys, "status", "--stack", "nosuchstack")

    assert status == 2
    assert "no queue nosuchstack-requests" in err
    assert "--stack" in err


def test_backfill_to_a_queue_that_is_not_there_is_one_clear_line(emulator, capsys):
    status, _, err = fanout(
        capsys,
        "backfill",
        "--queue-url",
        f"{emulator}/{ACCOUNT}/gone",
        "--start",
        "2026-11-27T08:00Z",
        "--end",
        "2026-11-27T09:00Z",
        "--devices",
        "dev-1",
        "--no-progress",
    )

    assert status == 2
    assert err.startswith("fanout backfill: SendMessageBatch: the queue does not exist")


def test_no_credentials_is_one_clear_line(emulator, capsys, monkeypatch, tmp_path):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    status, _, err = fanout(capsys, "status")

    assert status == 2
    assert err.startswith("fanout status: no AWS credentials")


@pytest.mark.parametrize("command", ["backfill", "status", "redrive", "report"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])

    assert exit_info.value.code == 0
    assert "--stack" in capsys.readouterr().out
