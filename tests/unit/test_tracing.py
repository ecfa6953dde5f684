"""Tracing's pure parts: off outside Lambda, and a context that keeps asyncio tasks apart.

The context is exercised through a recorder of its own (never the SDK's global one), with
an emitter that keeps what it is given: no socket, no daemon.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aws_xray_sdk.core import AWSXRayRecorder

from fanout_core import tracing
from fanout_core._xray import TaskLocalLambdaContext

HEADER = "Root=1-6745d2a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


class KeepingEmitter:
    """Keeps every document the recorder sends."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(json.loads(entity.serialize()))


def recorder() -> tuple[AWSXRayRecorder, KeepingEmitter]:
    emitter = KeepingEmitter()
    own = AWSXRayRecorder()
    own.configure(context=TaskLocalLambdaContext(), emitter=emitter, streaming_threshold=0)
    return own, emitter


def test_outside_lambda_tracing_stays_off_and_spans_do_nothing(monkeypatch):
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)

    assert not tracing.setup_tracing()
    assert not tracing.enabled()
    span = tracing.span("fetch", leaf=True, descriptor_id="d")
    span.begin()
    span.annotate(status=200)
    span.end()
    assert not span.recording


def test_concurrent_tasks_open_their_subsegments_under_the_invocation_not_each_other(
    monkeypatch,
):
    # given Lambda's trace header and an invocation subsegment open in the handler
    monkeypatch.setenv("_X_AMZN_TRACE_ID", HEADER)
    own, emitter = recorder()
    invocation = own.begin_subsegment("consume")

    async def fetch(number: int) -> None:
        own.begin_subsegment(f"fetch-{number}")
        await asyncio.sleep(0.001 * (number % 3))  # interleave the tasks
        own.end_subsegment()

    async def batch() -> None:
        await asyncio.gather(*(fetch(n) for n in range(8)))

    # when eight fetches run concurrently in one event loop, then the invocation ends
    asyncio.run(batch())
    own.end_subsegment()

    # then each fetch is a child of the invocation, which is a child of Lambda's segment
    by_name = {d["name"]: d for d in emitter.documents}
    assert {by_name[f"fetch-{n}"]["parent_id"] for n in range(8)} == {invocation.id}
    assert by_name["consume"]["parent_id"] == "53995c3f42cd8ad8"
    assert {d["trace_id"] for d in emitter.documents} == {"1-6745d2a0-0123456789abcdef01234567"}


def test_a_new_trace_header_starts_a_new_trace_and_drops_what_the_last_left_open(
    monkeypatch,
):
    # given an invocation that left a subsegment open (a crash, say)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", HEADER)
    own, emitter = recorder()
    own.begin_subsegment("left-open")

    # when the next invocation's header arrives and it opens its own subsegment
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-6745d2a1-fedcba9876543210fedcba98;Parent=1111111111111111;Sampled=1",
    )
    own.begin_subsegment("next")
    own.end_subsegment()

    # then it hangs under the new invocation's segment, in the new trace
    (document,) = emitter.documents
    assert (document["name"], document["parent_id"], document["trace_id"]) == (
        "next",
        "1111111111111111",
        "1-6745d2a1-fedcba9876543210fedcba98",
    )


def test_an_unsampled_or_missing_header_records_nothing(monkeypatch):
    own, emitter = recorder()
    for header in (HEADER.replace("Sampled=1", "Sampled=0"), ""):
        monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
        own.begin_subsegment("consume")
        own.end_subsegment()

    assert emitter.documents == []
