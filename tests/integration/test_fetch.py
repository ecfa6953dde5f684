"""Fetching over real sockets: statuses, Retry-After, gzip, the size cap, timeouts, time left."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from datetime import UTC, datetime

import pytest
from aiohttp import web

from consumer.fetch import (
    BodyTooLargeError,
    Fetched,
    FetchPolicy,
    OutOfTimeError,
    UnsafeRequestError,
    fetch_all,
    request_url,
    retry_after_seconds,
)
from fanout_core.descriptor import RequestDescriptor
from fanout_core.errors import UpstreamRejectedError, UpstreamUnavailableError
from tests.servers import serve_app

START = datetime(2026, 11, 27, 8, tzinfo=UTC)
END = datetime(2026, 11, 27, 9, tzinfo=UTC)
DOC = {"device_id": "x", "datetime": "2026-11-27T08:00:00", "values": list(range(100))}


class Api:
    """Behaviour by device name; counts requests per device."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    async def readings(self, request: web.Request) -> web.StreamResponse:
        device = request.match_info["device_id"]
        self.hits[device] = self.hits.get(device, 0) + 1
        attempt = self.hits[device]
        if device == "gzip":
            body = gzip.compress(json.dumps(DOC).encode())
            return web.Response(
                body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )
        if device == "huge":
            return web.Response(body=b"[" + b"1," * 400_000 + b"1]")
        if device == "huge-chunked":
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"1," * 10_000)
            return response
        if device == "hang":
            await asyncio.sleep(30)
        if device == "redirect":
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere")
        if device == "throttled-once" and attempt == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if device == "down":
            return web.Response(status=502)
        if device == "missing":
            return web.json_response({"error": "no such device"}, status=404)
        return web.json_response(DOC)


@pytest.fixture
def api():
    behaviour = Api()
    app = web.Application()
    app.router.add_get("/v1/devices/{device_id}/readings", behaviour.readings)
    with serve_app(app) as base:
        yield behaviour, f"{base}/v1"


def fetch(base: str, devices: list[str], seconds_left=lambda: 60.0, **policy) -> dict:
    descriptors = [RequestDescriptor(d, START, END) for d in devices]
    outcomes = asyncio.run(
        fetch_all(
            descriptors,
            api_base_url=base,
            policy=FetchPolicy(**{"backoff_base": 0.01, **policy}),
            seconds_left=seconds_left,
        )
    )
    return {d.device_id: outcomes[d.id] for d in descriptors}


def test_fetch_reads_gzip_bodies_and_plain_ones(api):
    _, base = api
    outcomes = fetch(base, ["plain", "gzip"])
    assert all(isinstance(o, Fetched) and json.loads(o.data) == DOC for o in outcomes.values())


def test_fetch_sorts_statuses_into_terminal_and_transient(api):
    behaviour, base = api
    outcomes = fetch(base, ["missing", "down", "redirect"], attempts=2)
    assert (
        isinstance(outcomes["missing"], UpstreamRejectedError) and outcomes["missing"].status == 404
    )
    assert "no such device" in outcomes["missing"].excerpt
    assert isinstance(outcomes["down"], UpstreamUnavailableError) and outcomes["down"].status == 502
    assert behaviour.hits["down"] == 2, "transient failures are retried up to the attempt bound"
    assert (
        isinstance(outcomes["redirect"], UpstreamRejectedError)
        and outcomes["redirect"].status == 302
    )
    assert behaviour.hits["redirect"] == 1


def test_fetch_honours_retry_after_before_trying_again(api):
    _, base = api
    started = time.monotonic()
    outcome = fetch(base, ["throttled-once"])["throttled-once"]
    assert isinstance(outcome, Fetched) and outcome.attempts == 2
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("device", ["huge", "huge-chunked"], ids=["content-length", "chunked"])
def test_fetch_stops_reading_at_the_size_cap(api, device):
    _, base = api
    outcome = fetch(base, [device], max_body_bytes=100_000)[device]
    assert isinstance(outcome, BodyTooLargeError)
    assert outcome.reason == "body_too_large"


def test_a_hanging_answer_times_out_as_transient(api):
    _, base = api
    started = time.monotonic()
    outcome = fetch(base, ["hang"], request_timeout=0.5, attempts=1)["hang"]
    assert isinstance(outcome, UpstreamUnavailableError)
    assert "timed out" in str(outcome)
    assert time.monotonic() - started < 5


def test_no_fetch_starts_without_time_to_finish_it(api):
    behaviour, base = api
    outcome = fetch(base, ["plain"], seconds_left=lambda: 0.2)["plain"]
    assert isinstance(outcome, OutOfTimeError)
    assert behaviour.hits == {}


def test_request_url_stays_under_the_base():
    descriptor = RequestDescriptor("dev-1", START, END)
    assert request_url("http://127.0.0.1:8080/v1", descriptor) == (
        "http://127.0.0.1:8080/v1/devices/dev-1/readings?start=2026-11-27T08%3A00%3A00Z&end=2026-11-27T09%3A00%3A00Z"
    )
    with pytest.raises(UnsafeRequestError):
        request_url("http://127.0.0.1:8080/v1", RequestDescriptor("..", START, END))


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Fri, 27 Nov 2026 09:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Fri, 27 Nov 2026 08:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
