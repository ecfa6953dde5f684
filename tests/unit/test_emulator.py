"""The emulator's SQS fixes keep moto's semantics: same clock, same retention rule."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from moto import backends as moto_backends
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import sqs_backends

from localstack import emulator


def test_clock_is_wall_time_and_dates_still_convert_as_moto_does():
    assert abs(emulator._unix_time() - time.time()) < 1
    moment = datetime(2026, 11, 27, 9, 0, 0)
    assert emulator._unix_time(moment) == emulator.sqs_models_unix_time(moment)
    assert emulator._unix_time_millis(moment) == emulator.sqs_models_unix_time(moment) * 1000


def test_retention_check_reads_the_queues_period():
    backend = SimpleNamespace(get_queue=lambda name: SimpleNamespace(message_retention_period="60"))
    fresh = SimpleNamespace(sent_timestamp=time.time() * 1000 - 59_000)
    expired = SimpleNamespace(sent_timestamp=time.time() * 1000 - 61_000)
    assert emulator._retained(backend, "q", fresh) is True
    assert emulator._retained(backend, "q", expired) is False


def test_lazy_queue_attributes_equal_what_moto_builds_eagerly():
    # given moto's own queues, one plain and one with a redrive policy and a policy
    backend = sqs_backends["123456789012"]["us-east-1"]
    dead = backend.create_queue("lazy-dlq")
    queue = backend.create_queue(
        "lazy-main",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dead.queue_arn, "maxReceiveCount": "3"}),
        Policy=json.dumps({"Version": "2012-10-17", "Statement": []}),
        VisibilityTimeout="17",
    )
    for subject in (dead, queue):
        # when read lazily, then the same names and values as the eager property
        assert dict(emulator._LazyAttributes(subject)) == subject.attributes


def test_server_reads_moto_modules_once_and_lists_the_same_services():
    # given moto's own list, read before the patch
    listed = list(moto_backends.list_of_moto_modules())
    # when patched twice
    emulator.patch_server()
    first = moto_backends.list_of_moto_modules
    emulator.patch_server()
    # then the same services, and the second patch is a no-op
    assert list(moto_backends.list_of_moto_modules()) == listed
    assert moto_backends.list_of_moto_modules is first
    assert "sqs" in listed and "firehose" in listed


def test_concurrent_consumers_take_each_message_once_and_every_delete_holds():
    # given moto's SQS with the emulator's fixes, and 1,000 messages
    emulator.patch_sqs()
    backend = sqs_backends["123456789012"]["us-east-1"]
    queue = backend.create_queue("race", VisibilityTimeout="60")
    for i in range(1000):
        backend.send_message(queue.name, f"m{i}")
    received: list[str] = []

    def consume() -> None:
        while got := backend.receive_message(queue.name, 10, 0, 60):
            received.extend(m.body for m in got)
            for m in got:
                backend.delete_message(queue.name, m.receipt_handle)

    # when eight consumers receive and delete at once (unfixed, some take the same
    # message, and some deletes are lost)
    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each message was received once and none is left
    assert sorted(received) == sorted(f"m{i}" for i in range(1000))
    assert queue._messages == []


def test_delete_keeps_moto_semantics():
    emulator.patch_sqs()
    backend = sqs_backends["123456789012"]["us-east-1"]
    queue = backend.create_queue("deletes", VisibilityTimeout="60")
    for body in ("a", "b", "c"):
        backend.send_message(queue.name, body)
    [first] = backend.receive_message(queue.name, 1, 0, 60)
    # a message received again keeps its old handles: either deletes it
    backend.change_message_visibility(queue.name, first.receipt_handle, 0)
    [again] = backend.receive_message(queue.name, 1, 0, 60)
    assert again.body == first.body and again.receipt_handle != first.receipt_handle
    backend.delete_message(queue.name, first.receipt_handle)
    assert [m.body for m in queue._messages] == ["b", "c"]
    # deleting twice is fine; a handle never given is not
    backend.delete_message(queue.name, again.receipt_handle)
    with pytest.raises(ReceiptHandleIsInvalid):
        backend.delete_message(queue.name, "never-given")
    assert [m.body for m in queue._messages] == ["b", "c"]
