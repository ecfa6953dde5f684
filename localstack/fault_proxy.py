"""A proxy in front of the emulator's Firehose that fails what a fault plan says.

    python -m localstack.fault_proxy --target http://127.0.0.1:5000 --faults firehose-partial=0.1

Every request is forwarded unchanged, except PutRecordBatch: with probability
``firehose-call`` the whole call fails (503 ServiceUnavailableException, as Firehose answers
when it is overloaded); otherwise each record is refused with probability
``firehose-partial`` (an ``ErrorCode`` in its slot and ``FailedPutCount`` in the answer) and
only the others are forwarded. The consumer talks to it through
``AWS_ENDPOINT_URL_FIREHOSE``, so its code is the code that runs in AWS.

``GET /_fault_proxy/stats`` answers what was injected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from localstack.faults import FaultPlan

_JSON = "application/x-amz-json-1.1"
_DROP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
_RECORD_ERRORS = ("ServiceUnavailableException", "InternalFailure", "ThrottlingException")


class FaultProxy:
    """Forwards to ``target``; fails PutRecordBatch records and calls per the plan."""

    def __init__(self, target: str, plan: FaultPlan) -> None:
        self.target = target.rstrip("/")
        self.plan = plan
        self.random = random.Random(plan.seed)  # noqa: S311 (fault draws, not secrets)
        self.stats: Counter[str] = Counter()
        self.session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        application = web.Application(client_max_size=64 * 1024 * 1024)
        application.router.add_get("/_fault_proxy/stats", self.report)
        application.router.add_route("*", "/{tail:.*}", self.handle)
        application.on_startup.append(self._open)
        application.on_cleanup.append(self._close)
        return application

    async def _open(self, _: web.Application) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)

    async def _close(self, _: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def report(self, _: web.Request) -> web.Response:
        return web.json_response(dict(self.stats))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("X-Amz-Target", "").endswith(".PutRecordBatch"):
            return await self._put_record_batch(request, body)
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        async with self.session.request(
            request.method, f"{self.target}{request.path_qs}", headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            reply = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP}
            return web.Response(status=upstream.status, body=payload, headers=reply)

    async def _put_record_batch(self, request: web.Request, body: bytes) -> web.Response:
        self.stats["put_record_batch_calls"] += 1
        if self.random.random() < self.plan.rate("firehose-call"):
            self.stats["calls_failed"] += 1
            return web.Response(
                status=503,
                body=json.dumps(
                    {"__type": "ServiceUnavailableException", "message": "injected: slow down"}
                ),
                content_type=_JSON,
            )
        payload = json.loads(body)
        records = payload["Records"]
        refused = [self.random.random() < self.plan.rate("firehose-partial") for _ in records]
        kept = [record for record, no in zip(records, refused, strict=True) if not no]
        forwarded: list[dict[str, Any]] = []
        if kept:
            upstream = await self._forward(
                request, json.dumps({**payload, "Records": kept}).encode()
            )
            if upstream.status != 200:
                return upstream
            assert isinstance(upstream.body, bytes)
            forwarded = json.loads(upstream.body)["RequestResponses"]
        answers = iter(forwarded)
        responses = [
            {"ErrorCode": self.random.choice(_RECORD_ERRORS), "ErrorMessage": "injected"}
            if no
            else next(answers)
            for no in refused
        ]
        failed = sum(refused)
        self.stats["records"] += len(records)
        self.stats["records_failed"] += failed
        return web.Response(
            body=json.dumps(
                {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}
            ),
            content_type=_JSON,
        )


async def serve(target: str, plan: FaultPlan, port: int) -> None:
    """Serve until cancelled; print the proxy's URL once listening."""
    runner = web.AppRunner(FaultProxy(target, plan).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Firehose fault proxy (127.0.0.1 only)")
    parser.add_argument("--target", required=True, help="the emulator's URL")
    parser.add_argument("--faults", default="", help="fault plan (firehose-partial, firehose-call)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.target, FaultPlan.parse(args.faults, args.seed), args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
