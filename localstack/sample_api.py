"""A sample IoT REST API on 127.0.0.1, deterministic from a seed.

    python -m localstack.sample_api --devices 100 --values 1000 --seed 7 [--port 0]

Routes, under the base path ``/v1``:

* ``GET /v1/devices?limit=N&page_token=T`` answers ``{"devices": [...], "next": T|null}``.
* ``GET /v1/devices/{device_id}/readings?start=ISO&end=ISO`` answers one document,
  ``{"device_id": ..., "datetime": ..., "values": [...]}``.

Every value is a function of (seed, device, window), so a test can recompute what was
served with :func:`expected_document`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import sys
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

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
    """What the API serves."""

    seed: int = 7
    devices: int = 100
    values: int = 1000
    page_size: int = 100


class SampleApi:
    """The aiohttp application and its deterministic data."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.devices = device_ids(config.devices)
        self._known = set(self.devices)
        self._bodies: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
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

    async def readings(self, request: web.Request) -> web.Response:
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
        return web.Response(body=self.body(device_id, start, end), content_type="application/json")

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
    args = parser.parse_args(argv)
    config = ApiConfig(args.seed, args.devices, args.values, args.page_size)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
