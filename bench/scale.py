"""End-to-end throughput with one and with two concurrent invocations per function.

One local stack (moto, the sample API, the runner) serves every phase. Each phase enqueues
the same number of descriptors for a window of its own (not timed), warms as many
execution environments as it will use, then lets the runner drain the queue through the
consumer and the writer with a concurrency of 1 or 2: documents per second is the rows
written for that window over the time from the runner's start to its last invocation.
Phases run in the order 1, 2, 2, 1, so drift in the emulator (more objects, more state)
weighs on both sides alike; each side's figure is the median of its phases.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fanout_cli.reconcile import parquet_inventory
from fanout_core.descriptor import RequestDescriptor
from localstack.runner import LocalLambda
from localstack.sample_api import device_ids
from localstack.stack import Stack, StackConfig, local_stack
from producer.produce import enqueue

DEVICES = 1000
VALUES = 1000
ORDER = (1, 2, 2, 1)
START = datetime(2026, 10, 1, tzinfo=UTC)


def _warm(stack: Stack, concurrency: int) -> None:
    """Start ``concurrency`` environments of the consumer and of the writer, as Lambda keeps
    warm ones between batches."""
    calls: list[tuple[str, dict[str, Any]]] = [
        (str(stack.outputs["consumer_function_name"]), {"Records": []}),
        (str(stack.outputs["writer_function_name"]), {"Records": []}),
    ] * concurrency
    threads = [
        threading.Thread(target=stack.runner.pool.invoke, args=(name, event))
        for name, event in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def phase(stack: Stack, concurrency: int, window: int, devices: int) -> float:
    """Documents per second draining one window's descriptors with ``concurrency``."""
    start = START + timedelta(hours=window)
    descriptors = [
        RequestDescriptor(device, start, start + timedelta(hours=1))
        for device in device_ids(devices)
    ]
    enqueue(
        descriptors,
        queue_url=stack.outputs["requests_queue_url"],
        sqs=stack.client("sqs"),
        threads=4,
    )
    _warm(stack, concurrency)
    runner = LocalLambda(
        stack.wiring,
        stack.runner.pool,
        stack.client,
        async_concurrency=concurrency,
        max_concurrency=concurrency,
    )
    started = time.monotonic()
    with runner:
        if not runner.wait_idle(timeout=900):
            raise RuntimeError(f"concurrency {concurrency}: the pipeline did not drain")
    seconds = stack.runner.pool.last_finished - started
    wanted = {d.id for d in descriptors}
    inventory = parquet_inventory(
        stack.client("s3"), stack.outputs["bucket"], stack.outputs["parquet_prefix"]
    )
    written = len(wanted & inventory.ids.keys())
    if written != len(wanted):
        raise RuntimeError(f"concurrency {concurrency}: {written} of {len(wanted)} written")
    return written / seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both concurrencies; return the section for build/bench.json."""
    devices = DEVICES // (5 if args.quick else 1)
    config = StackConfig(devices=devices, values=VALUES, concurrency=2)
    rates: dict[int, list[float]] = {1: [], 2: []}
    with (
        tempfile.TemporaryDirectory(prefix="fanout-scale-") as folder,
        local_stack(config, Path(folder)) as stack,
    ):
        stack.runner.stop()  # each phase runs its own runner, with its own concurrency
        for window, concurrency in enumerate(ORDER):
            rate = phase(stack, concurrency, window, devices)
            rates[concurrency].append(rate)
            print(f"  concurrency {concurrency}: {rate:,.1f} documents/s", flush=True)
    c1, c2 = statistics.median(rates[1]), statistics.median(rates[2])
    return {
        "c1_docs_s": round(c1, 1),
        "c2_docs_s": round(c2, 1),
        "ratio": round(c2 / c1, 3),
        "documents_per_phase": devices,
        "values_per_document": VALUES,
        "phases": [
            {"concurrency": c, "docs_s": round(r, 1)}
            for c, r in zip(ORDER, _in_order(rates), strict=True)
        ],
    }


def _in_order(rates: dict[int, list[float]]) -> list[float]:
    seen = {1: 0, 2: 0}
    ordered = []
    for concurrency in ORDER:
        ordered.append(rates[concurrency][seen[concurrency]])
        seen[concurrency] += 1
    return ordered
