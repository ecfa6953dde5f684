"""A sample IoT REST API on 127.0.0.1, deterministic from a seed.

    python -m localstack.sample_api --devices 100 --values 1000 --seed 7 [--port 0]

Routes, under the base path ``/v1``:

* ``GET /v1/devices?limit=N&page_token=T`` answers ``{"devices": [...], "next": T|null}``.
* ``GET /v1/devices/{device_id}/readings?start=ISO&end=ISO`` answers one document,
  ``{"device_id": ..., "datetime": ..., "values": [...]}``.

Every value is a function of (seed, device, window), so a test can recompute what was
served with :func:`expected_document`. ``--faults`` injects the faults of a
:class:`~localstack.faults.FaultPlan`, drawn deterministically from the same seed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import random
import socket
import sys
from array import array
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from fanout_core.descriptor import RequestDescriptor
from localstack.faults import FaultPlan, uniform

BASE_PATH = "/v1"
_CACHE_ENTRIES = 4096


def device_ids(count: int) -> list[str]:
    """The ids of ``count`` devices: ``dev-00000``, ``dev-00001``..."""
    return [f"dev-{index:05d}" for index in range(count)]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def expected_document(
    seed: int, device_id: str, start: datetime, end: datetime, values: int
) -> dict[str, Any]:
    """The document the API serves for ``device_id`` and the window ``[start, end)``.

    The reading's time is a deterministic instant inside the window, written as the seed
    format does (naive ISO with microseconds); values are unsigned 16-bit readings.
    """
    rng = random.Random(f"{seed}|{device_id}|{start.isoformat()}|{end.isoformat()}")  # noqa: S311
    span_us = max(1, int((end - start).total_seconds() * 1_000_000))
    moment = start + timedelta(microseconds=rng.randrange(span_us))
    return {
        "device_id": device_id,
        "datetime": moment.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "values": array("H", rng.randbytes(2 * values)).tolist(),
    }


@dataclass(frozen=True)
class ApiConfig:
    """What the API serves, and which faults it injects (see :mod:`localstack.faults`)."""

    seed: int = 7
    devices: int = 100
    values: int = 1000
    page_size: int = 100
    faults: str = ""
    oversize_bytes: int = 9 * 1024 * 1024
    hang_seconds: float = 60.0


class SampleApi:
    """The aiohttp application and its deterministic data."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.plan = FaultPlan.parse(config.faults, seed=config.seed)
        self.devices = device_ids(config.devices)
        self._known = set(self.devices)
        self._bodies: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._attempts: Counter[str] = Counter()
        self._oversize: bytes | None = None
        self.requests = 0

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get(f"{BASE_PATH}/devices", self.list_devices)
        application.router.add_get(f"{BASE_PATH}/devices/{{device_id}}/readings", self.readings)
        return application

    async def list_devices(self, request: web.Request) -> web.Response:
        try:
            limit = min(int(request.query.get("limit", self.config.page_size)), 1000)
            offset = int(request.query.get("page_token", "0"))
        except ValueError:
            return web.json_response({"error": "limit and page_token are integers"}, status=400)
        page = self.devices[offset : offset + max(1, limit)]
        following = offset + len(page)
        return web.json_response(
            {"devices": page, "next": str(following) if following < len(self.devices) else None}
        )

    async def readings(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        device_id = request.match_info["device_id"]
        if device_id not in self._known:
            return web.json_response({"error": f"unknown device {device_id}"}, status=404)
        try:
            start, end = _instant(request.query["start"]), _instant(request.query["end"])
        except (KeyError, ValueError):
            return web.json_response({"error": "start and end must be ISO-8601"}, status=400)
        if end <= start:
            return web.json_response({"error": "end must be after start"}, status=400)
        if not self.plan:
            return web.Response(
                body=self.body(device_id, start, end), content_type="application/json"
            )
        return await self._faulty(request, device_id, start, end)

    async def _faulty(
        self, request: web.Request, device_id: str, start: datetime, end: datetime
    ) -> web.StreamResponse:
        """Answer as the fault plan says: transient faults per request, terminal per descriptor."""
        descriptor_id = RequestDescriptor(device_id, start, end).id
        self._attempts[descriptor_id] += 1
        if self.plan.latency_ms:
            await asyncio.sleep(self.plan.latency_ms / 1000)
        transient = self.plan.transient_fault(
            device_id, descriptor_id, self._attempts[descriptor_id]
        )
        if transient is not None:
            response = await self._transient(request, transient, descriptor_id)
            if response is not None:
                return response
        body = self.body(device_id, start, end)
        terminal = self.plan.terminal_fault(device_id, descriptor_id)
        if terminal is not None:
            return self._terminal(terminal, body, descriptor_id)
        if self.plan.gzip(descriptor_id):
            return web.Response(
                body=gzip.compress(body, mtime=0),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        return web.Response(body=body, content_type="application/json")

    async def _transient(
        self, request: web.Request, fault: str, descriptor_id: str
    ) -> web.StreamResponse | None:
        """Answer with a transient fault; ``None`` when the fault only delays the answer."""
        if fault == "tail":
            # Long-tailed latency: Pareto with a 50 ms scale, capped at 3 s; the answer is good.
            draw = uniform(self.config.seed, "tail", descriptor_id, self._attempts[descriptor_id])
            await asyncio.sleep(min(3.0, 0.05 * (1 - draw) ** (-1 / 1.5)))
            return None
        if fault == "hang":
            await asyncio.sleep(self.config.hang_seconds)
            return web.json_response({"error": "hung"}, status=504)
        if fault in ("reset", "truncate"):
            body = self.body(*_window_of(request))
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            transport = request.transport
            if transport is not None:
                transport.abort() if fault == "reset" else transport.close()
            return response
        if fault in ("429", "429-date"):
            retry_after = (
                "1"
                if fault == "429"
                else format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
            )
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": retry_after}
            )
        return web.json_response({"error": f"injected {fault}"}, status=int(fault))

    def _terminal(self, fault: str, body: bytes, descriptor_id: str) -> web.Response:
        """Answer with a bad answer that is the same on every request."""
        if fault in ("400", "404", "410"):
            return web.json_response({"error": f"injected {fault}"}, status=int(fault))
        if fault == "oversize":
            return web.Response(body=self._oversize_body(), content_type="application/json")
        if fault == "malformed":
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        document = json.loads(body)
        index = int(uniform(self.config.seed, "index", descriptor_id) * len(document["values"]))
        if fault == "overflow":
            big = 2**64 + 5 if uniform(self.config.seed, "beyond", descriptor_id) < 0.5 else 2**63
            document["values"][index] = big
        elif fault in _WRONG_VALUES:
            document["values"][index] = _WRONG_VALUES[fault]
        elif fault == "missing-key":
            del document["values" if index % 2 else "datetime"]
        elif fault == "extra-key":
            document["unit"] = "mV"
        elif fault == "bad-datetime":
            document["datetime"] = "27/01/2020 07:07:27"
        return web.json_response(document)

    def _oversize_body(self) -> bytes:
        if self._oversize is None:
            filler = ",".join(["65535"] * (self.config.oversize_bytes // 6 + 1))
            self._oversize = (
                f'{{"device_id":"oversize","datetime":"2020-01-01T00:00:00","values":[{filler}]}}'
            ).encode()
        return self._oversize

    def body(self, device_id: str, start: datetime, end: datetime) -> bytes:
        """The serialized document, cached (generation costs more than serving)."""
        key = (device_id, start.isoformat(), end.isoformat())
        cached = self._bodies.get(key)
        if cached is None:
            document = expected_document(
                self.config.seed, device_id, start, end, self.config.values
            )
            cached = json.dumps(document, separators=(",", ":")).encode()
            self._bodies[key] = cached
            if len(self._bodies) > _CACHE_ENTRIES:
                self._bodies.popitem(last=False)
        return cached


_WRONG_VALUES: dict[str, object] = {"float": 1.5, "string": "7", "bool": True, "null": None}


def _window_of(request: web.Request) -> tuple[str, datetime, datetime]:
    return (
        request.match_info["device_id"],
        _instant(request.query["start"]),
        _instant(request.query["end"]),
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def serve(config: ApiConfig, port: int) -> None:
    """Serve until cancelled; print the base URL on stdout once listening."""
    runner = web.AppRunner(SampleApi(config).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"http://127.0.0.1:{bound}{BASE_PATH}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fanout's sample IoT REST API (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--devices", type=int, default=100, help="number of devices")
    parser.add_argument("--values", type=int, default=1000, help="values per document")
    parser.add_argument("--seed", type=int, default=7, help="seed of every value served")
    parser.add_argument("--page-size", type=int, default=100, help="devices per listing page")
    parser.add_argument(
        "--faults", default="", help="fault plan, e.g. 5xx=0.1,bad=0.03 (see faults.py)"
    )
    parser.add_argument(
        "--oversize-bytes", type=int, default=9 * 1024 * 1024, help="size of an oversize body"
    )
    parser.add_argument("--hang-seconds", type=float, default=60.0, help="how long a hang lasts")
    args = parser.parse_args(argv)
    config = ApiConfig(
        args.seed,
        args.devices,
        args.values,
        args.page_size,
        args.faults,
        args.oversize_bytes,
        args.hang_seconds,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
