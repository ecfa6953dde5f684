"""X-Ray tracing: the functions run as Lambda runs them, a UDP listener plays the daemon.

Each function runs in the local runner's execution environment (``localstack/lambda_worker.py``:
``LAMBDA_TASK_ROOT`` set, ``_X_AMZN_TRACE_ID`` set per invocation) against moto and the
sample API. The listener on 127.0.0.1 receives what the X-Ray SDK sends, and the tests read
the subsegments back: their trace, their parents, their annotations.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fanout_core._xray import DaemonEmitter
from fanout_core.descriptor import RequestDescriptor
from localstack.stack import EMULATOR_CREDENTIALS
from tests.conftest import load_event, sqs_event
from tests.integration.conftest import REGION, Resources, list_keys

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "localstack" / "lambda_worker.py"
START = datetime(2026, 11, 27, 8, tzinfo=UTC)
END = datetime(2026, 11, 27, 9, tzinfo=UTC)
WAIT_SECONDS = 30.0


@dataclass
class Daemon:
    """A UDP listener speaking the X-Ray daemon's protocol: a header line, then a document."""

    address: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[bytes] = field(default_factory=list)

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [d for d in list(self.documents) if d.get("trace_id") == trace_id]

    def wait_for(self, trace_id: str, name: str) -> list[dict[str, Any]]:
        """The trace's documents once one named ``name`` has arrived (UDP gives no order)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            documents = self.of_trace(trace_id)
            if any(d["name"] == name for d in documents):
                time.sleep(0.2)  # let datagrams sent just before it land too
                return self.of_trace(trace_id)
            time.sleep(0.05)
        raise AssertionError(f"no {name!r} subsegment of {trace_id} arrived: {self.documents}")


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    host, port = sock.getsockname()
    listener = Daemon(f"{host}:{port}")
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                datagram = sock.recv(65536)
            except TimeoutError:
                continue
            header, _, body = datagram.partition(b"\n")
            try:
                assert json.loads(header) == {"format": "json", "version": 1}
                listener.documents.append(json.loads(body))
            except (ValueError, AssertionError):
                listener.malformed.append(datagram)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join()
    sock.close()


def silent_address() -> str:
    """A UDP address on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
    return f"{host}:{port}"


class Worker:
    """One execution environment of a function, driven over the runner's worker protocol."""

    def __init__(self, handler: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        environment = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": f"fanout-{handler.split('.', maxsplit=1)[0]}",
            "_HANDLER": handler,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            **EMULATOR_CREDENTIALS,
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-u", str(WORKER)],
            env=environment,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        assert ready["ready"], ready

    def invoke(self, event: dict[str, Any], trace_header: str | None) -> dict[str, Any]:
        request = {
            "request_id": str(uuid.uuid4()),
            "event": event,
            "deadline_ms": int(time.time() * 1000) + 60_000,
            "trace_id": trace_header,
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        response = json.loads(self.process.stdout.readline())
        assert response["ok"], response
        return {"request_id": request["request_id"], **response}

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self._log_file.close()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(handler: str, **env: str) -> Worker:
        started.append(Worker(handler, env, tmp_path / f"{handler}.log"))
        return started[-1]

    yield start
    for each in started:
        each.close()


def new_trace() -> tuple[str, str, str]:
    """A sampled trace header, as the runner (and Lambda) give each invocation."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    parent = uuid.uuid4().hex[:16]
    return f"Root={root};Parent={parent};Sampled=1", root, parent


def consumer_env(resources: Resources, api_url: str, daemon_address: str) -> dict[str, str]:
    return {
        "FANOUT_API_BASE_URL": api_url,
        "FANOUT_DELIVERY_STREAM": resources.stream,
        "FANOUT_BUCKET": resources.bucket,
        "FANOUT_FETCH_CONCURRENCY": "4",
        "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
    }


def named(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["name"] == name]


def test_consumer_sends_an_invocation_subsegment_and_one_per_fetch_under_it(
    daemon, worker, resources, api_url
):
    # given a consumer environment whose daemon is our listener, and a batch of six good
    # descriptors and one for a device the API does not know (404)
    consumer = worker(
        "consumer.handler.lambda_handler", **consumer_env(resources, api_url, daemon.address)
    )
    good = [RequestDescriptor(f"dev-{i:05d}", START, END) for i in range(6)]
    unknown = RequestDescriptor("nobody", START, END)
    header, root, parent = new_trace()

    # when it handles the batch
    answer = consumer.invoke(sqs_event(*good, unknown), header)
    documents = daemon.wait_for(root, "consume")

    # then one subsegment covers the invocation, under Lambda's segment for it
    assert answer["result"] == {"batchItemFailures": []}
    (invocation,) = named(documents, "consume")
    assert invocation["type"] == "subsegment"
    assert invocation["parent_id"] == parent
    assert invocation["annotations"]["request_id"] == answer["request_id"]
    assert invocation["annotations"]["messages"] == 7
    assert invocation["annotations"]["delivered"] == 6
    assert invocation["annotations"]["quarantined"] == 1
    # and one subsegment per fetch, each directly under it (never under another fetch),
    # annotated with its descriptor id and status
    fetches = named(documents, "fetch")
    assert {f["annotations"]["descriptor_id"] for f in fetches} == {d.id for d in [*good, unknown]}
    assert {f["parent_id"] for f in fetches} == {invocation["id"]}
    by_id = {f["annotations"]["descriptor_id"]: f for f in fetches}
    for descriptor in good:
        assert by_id[descriptor.id]["annotations"]["status"] == 200
        assert by_id[descriptor.id]["annotations"]["outcome"] == "valid"
        assert by_id[descriptor.id]["namespace"] == "remote"
    rejected = by_id[unknown.id]
    assert rejected["annotations"]["status"] == 404
    assert rejected["annotations"]["outcome"] == "upstream_rejected"
    assert rejected["http"]["response"]["status"] == 404
    assert rejected.get("error") is True
    # and botocore's calls (Firehose delivery, the quarantine write) hang under it too
    aws_calls = {(d["name"], d["aws"]["operation"]) for d in documents if d["namespace"] == "aws"}
    assert {("firehose", "PutRecordBatch"), ("s3", "PutObject")} <= aws_calls
    assert {d["parent_id"] for d in documents if d["namespace"] == "aws"} == {invocation["id"]}
    assert not daemon.malformed


def test_consecutive_invocations_of_one_environment_land_in_their_own_traces(
    daemon, worker, resources, api_url
):
    # given one warm consumer environment
    consumer = worker(
        "consumer.handler.lambda_handler", **consumer_env(resources, api_url, daemon.address)
    )
    first_header, first_root, first_parent = new_trace()
    second_header, second_root, second_parent = new_trace()

    # when it handles two batches, each with its own trace header
    consumer.invoke(sqs_event(RequestDescriptor("dev-00001", START, END)), first_header)
    consumer.invoke(sqs_event(RequestDescriptor("dev-00002", START, END)), second_header)
    first = daemon.wait_for(first_root, "consume")
    second = daemon.wait_for(second_root, "consume")

    # then each trace holds its own invocation and its own fetch, and nothing of the other
    assert named(first, "consume")[0]["parent_id"] == first_parent
    assert named(second, "consume")[0]["parent_id"] == second_parent
    assert [f["annotations"]["descriptor_id"] for f in named(first, "fetch")] == [
        "dev-00001:20261127T080000Z:20261127T090000Z"
    ]
    assert [f["annotations"]["descriptor_id"] for f in named(second, "fetch")] == [
        "dev-00002:20261127T080000Z:20261127T090000Z"
    ]


def test_an_unsampled_invocation_sends_nothing(daemon, worker, resources, api_url):
    # given a consumer environment and an invocation Lambda did not sample
    consumer = worker(
        "consumer.handler.lambda_handler", **consumer_env(resources, api_url, daemon.address)
    )
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    unsampled = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"
    sampled_header, sampled_root, _ = new_trace()

    # when it handles one unsampled batch, then a sampled one
    consumer.invoke(sqs_event(RequestDescriptor("dev-00003", START, END)), unsampled)
    consumer.invoke(sqs_event(RequestDescriptor("dev-00004", START, END)), sampled_header)
    daemon.wait_for(sampled_root, "consume")

    # then the daemon saw the sampled one only
    assert daemon.of_trace(root) == []


def test_with_no_daemon_listening_the_consumer_works_and_logs_no_error(
    worker, resources, api_url, client
):
    # given a consumer whose daemon address has nobody listening
    consumer = worker(
        "consumer.handler.lambda_handler", **consumer_env(resources, api_url, silent_address())
    )
    descriptors = [RequestDescriptor(f"dev-{i:05d}", START, END) for i in range(5)]

    # when it handles two batches, both sampled
    for _ in range(2):
        answer = consumer.invoke(sqs_event(*descriptors), new_trace()[0])
        assert answer["result"] == {"batchItemFailures": []}

    # then the documents were delivered and its log holds no warning, error or traceback
    assert list_keys(client, resources.bucket, "raw/")
    consumer.close()
    lines = consumer.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e for e in entries if e["level"] in ("WARNING", "ERROR", "CRITICAL")] == []
    assert not [line for line in lines if "Traceback" in line]
    # and every line carries the trace it belongs to
    assert all(e.get("xray_trace_id") for e in entries if e.get("request_id"))


def test_producer_traces_its_invocation_and_its_sqs_calls(daemon, worker, resources):
    # given a producer environment sending to a queue of the emulator
    producer = worker(
        "producer.handler.lambda_handler",
        FANOUT_QUEUE_URL=resources.queue_url,
        FANOUT_DEVICES="dev-00001,dev-00002",
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
    )
    header, root, parent = new_trace()

    # when it handles a backfill of three windows
    answer = producer.invoke(
        {"start": "2026-11-27T06:00:00Z", "end": "2026-11-27T09:00:00Z"}, header
    )
    documents = daemon.wait_for(root, "produce")

    # then its invocation subsegment carries what it did, and SendMessageBatch was traced
    (invocation,) = named(documents, "produce")
    assert invocation["parent_id"] == parent
    assert invocation["annotations"]["enqueued"] == answer["result"]["enqueued"] == 6
    assert invocation["annotations"]["kind"] == "backfill"
    sends = [d for d in documents if d.get("aws", {}).get("operation") == "SendMessageBatch"]
    assert sends
    assert all(d["name"] == "sqs" for d in sends)


def test_writer_traces_its_invocation_and_each_object(daemon, worker, resources, client):
    # given a raw object in the bucket and a writer environment
    record = {
        "descriptor_id": "dev-00001:20261127T080000Z:20261127T090000Z",
        "device_id": "dev-00001",
        "datetime": "2026-11-27T08:00:00",
        "values": [1, 2, 3],
    }
    key = "raw/2026/11/27/08/fanout-records-1-2026-11-27-08-00-00-trace"
    client("s3").put_object(
        Bucket=resources.bucket, Key=key, Body=(json.dumps(record) + "\n").encode()
    )
    event = load_event("s3-put")
    event["Records"][0]["s3"]["bucket"]["name"] = resources.bucket
    event["Records"][0]["s3"]["object"]["key"] = key
    writer = worker(
        "writer.handler.lambda_handler",
        FANOUT_BUCKET=resources.bucket,
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
    )
    header, root, parent = new_trace()

    # when it converts the object
    answer = writer.invoke(event, header)
    documents = daemon.wait_for(root, "write")

    # then the invocation and the object each have a subsegment, the object's under it
    (invocation,) = named(documents, "write")
    (convert,) = named(documents, "convert")
    assert invocation["parent_id"] == parent
    assert convert["parent_id"] == invocation["id"]
    assert convert["annotations"]["key"] == key
    assert convert["annotations"]["rows"] == answer["result"]["rows"] == 1
    assert any(d.get("aws", {}).get("operation") == "GetObject" for d in documents)


class Note:
    """The least a document needs for the emitter: ``serialize``."""

    def __init__(self, number: int) -> None:
        self.number = number

    def serialize(self) -> str:
        return json.dumps({"name": "note", "number": self.number})


def test_the_emitter_pauses_when_nobody_listens_and_keeps_sending_when_a_daemon_does(
    daemon, monkeypatch
):
    # given one emitter aimed where nobody listens, one at our daemon
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", silent_address())
    nobody = DaemonEmitter()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", daemon.address)
    listened = DaemonEmitter()

    # when each sends a few documents
    for number in range(3):
        nobody.send_entity(Note(number))
        listened.send_entity(Note(number))

    # then the first has stopped (the kernel refused its datagrams), the second has not,
    # and every one of its documents arrived
    assert not nobody.listening
    assert listened.listening
    deadline = time.monotonic() + WAIT_SECONDS
    while len(daemon.documents) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(d["number"] for d in daemon.documents) == [0, 1, 2]
