"""The consumer's fetch → validate → serialize path against a plain aiohttp + json.loads loop.

Both sides fetch the same documents from the sample API with the same concurrency, in
the same run, on one core each: the measured client is pinned to one CPU and the API to
the other. Each side runs several times, interleaved; the median counts. A fresh process
then runs one 1,000-message batch of 10,000-value documents through the consumer path
and reports its peak resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from consumer.fetch import FetchPolicy, fetch_all, request_url
from consumer.validate import to_record
from fanout_core.descriptor import RequestDescriptor
from localstack.processes import sample_api
from localstack.sample_api import ApiConfig

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
SIZES = {"1k": 1000, "10k": 10000}
DOCUMENTS = {"1k": 4000, "10k": 1000}
REPEATS = 5
START = datetime(2026, 11, 1, tzinfo=UTC)


def descriptors(count: int, devices: int) -> list[RequestDescriptor]:
    """``count`` distinct descriptors: every device, hour after hour."""
    hour = timedelta(hours=1)
    return [
        RequestDescriptor(
            f"dev-{i % devices:05d}",
            START + hour * (i // devices),
            START + hour * (i // devices + 1),
        )
        for i in range(count)
    ]


async def baseline(base_url: str, items: list[RequestDescriptor]) -> int:
    """A plain aiohttp loop: GET, read, json.loads; the same concurrency."""
    gate = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(descriptor: RequestDescriptor) -> int:
            async with gate, session.get(request_url(base_url, descriptor)) as response:
                return len(json.loads(await response.read())["values"])

        counts = await asyncio.gather(*(one(d) for d in items))
    return len(counts)


async def consumer_path(base_url: str, items: list[RequestDescriptor]) -> int:
    """The consumer's own path: capped read, parse, contract, NDJSON line."""
    outcomes = await fetch_all(
        items,
        api_base_url=base_url,
        policy=FetchPolicy(concurrency=CONCURRENCY),
        seconds_left=lambda: 600.0,
        transform=to_record,
    )
    good = sum(1 for outcome in outcomes.values() if getattr(outcome, "data", None))
    if good != len(items):
        raise RuntimeError(
            f"only {good} of {len(items)} documents passed: {list(outcomes.values())[:3]}"
        )
    return good


def _rate(side: Any, base_url: str, items: list[RequestDescriptor]) -> float:
    started = time.perf_counter()
    done: int = asyncio.run(side(base_url, items))
    return done / (time.perf_counter() - started)


def measure(base_url: str, items: list[RequestDescriptor], repeats: int) -> dict[str, float]:
    """Median documents per second of both sides, interleaved."""
    asyncio.run(baseline(base_url, items))  # warm the API's cache and the connection path
    baseline_rates, rates = [], []
    for _ in range(repeats):
        baseline_rates.append(_rate(baseline, base_url, items))
        rates.append(_rate(consumer_path, base_url, items))
    baseline_docs_s = statistics.median(baseline_rates)
    docs_s = statistics.median(rates)
    return {
        "baseline_docs_s": round(baseline_docs_s, 1),
        "docs_s": round(docs_s, 1),
        "ratio": round(docs_s / baseline_docs_s, 3),
    }


def peak_batch_memory(base_url: str, count: int) -> float:
    """Peak RSS (MB) of a fresh process running one ``count``-message batch."""
    code = (
        "import asyncio, resource, sys\n"
        "from bench.consumer import consumer_path, descriptors\n"
        f"asyncio.run(consumer_path({base_url!r}, descriptors({count}, 100)))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both sizes; return the section for build/bench.json."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    logs = ROOT / "build" / "bench-logs"
    results: dict[str, Any] = {"concurrency": CONCURRENCY}
    for label, values in SIZES.items():
        count = DOCUMENTS[label] // (10 if args.quick else 1)
        config = ApiConfig(seed=1, devices=100, values=values)
        api = sample_api(config, logs)
        # The API serves from the other core, so each side has one core of its own.
        api.command = ["taskset", "-c", str(cpus[-1]), *api.command]
        with api:
            items = descriptors(count, config.devices)
            results[label] = measure(api.url, items, 2 if args.quick else REPEATS)
            results[label]["documents"] = count
            print(f"  {label}: {results[label]}", flush=True)
            if label == "10k":
                results["peak_rss_mb"] = peak_batch_memory(api.url, 100 if args.quick else 1000)
                peak = results["peak_rss_mb"]
                print(f"  one 1,000-message batch of 10k-value documents: peak {peak} MB")
    results["cpu"] = f"client on cpu {cpus[0]}, API on cpu {cpus[-1]}"
    return results
