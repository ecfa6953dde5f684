"""End-to-end throughput with one and with two concurrent invocations per function.

One local stack (moto, the sample API, the runner) serves every phase. Each phase enqueues
the same number of descriptors for a window of its own (not timed), warms as many
execution environments as it will use, then lets the runner drain the queue through the
consumer and the writer with a concurrency of 1 or 2: documents per second is the rows
written for that window over the time from the runner's start to its last invocation.
Phases run in the order 1, 2, 2, 1, so drift in the emulator (more objects, more state)
weighs on both sides alike; each side's figure is the median of its phases.

Every process of the stack shares the machine's cores, so each phase also says where the
CPU went over that same time: CPU seconds of the emulator, the sample API, the consumer's
and the writer's workers, and this process (the runner's pollers), per 1000 documents, and
all of it over wall time times cores (the utilisation). From concurrency 1's cost per
document follows the most the cores allow: ``cores * 1000 / cost`` documents per second,
whose ratio to concurrency 1's rate is the ceiling for ``ratio``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cpu import EXITED, OWN, CpuMeter, spent
from fanout_cli.reconcile import parquet_inventory
from fanout_core.descriptor import RequestDescriptor
from localstack.runner import LocalLambda
from localstack.sample_api import device_ids
from localstack.stack import Stack, StackConfig, local_stack
from producer.produce import enqueue

#: Descriptors per phase: enough that the fixed start and end of a drain (the first
#: batching window, the last S3 poll) weigh little against the throughput measured.
DEVICES = 4000
VALUES = 1000
ORDER = (1, 2, 2, 1)
START = datetime(2026, 10, 1, tzinfo=UTC)
#: The roles always reported, in print order; other functions' workers follow if they ran.
ROLES = ("emulator", "api", "consumer", "writer", OWN, EXITED)


@dataclass(frozen=True)
class Phase:
    """One phase's throughput and the CPU its processes used meanwhile."""

    concurrency: int
    docs_s: float
    documents: int
    cpu_seconds: dict[str, float]
    wall_seconds: float
    cores: int

    @property
    def utilisation(self) -> float:
        """CPU seconds used over the CPU seconds the cores had."""
        return sum(self.cpu_seconds.values()) / (self.wall_seconds * self.cores)


def _roles(stack: Stack) -> dict[str, list[int]]:
    """The stack's processes by role: its servers, and each function's workers."""
    roles = {role: [server.pid] for role, server in stack.servers.items() if server.pid}
    prefix = f"{stack.config.name_prefix}-"
    for function, pids in stack.runner.pool.worker_pids().items():
        if pids:
            roles[function.removeprefix(prefix)] = pids
    return roles


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


def phase(stack: Stack, concurrency: int, window: int, devices: int) -> Phase:
    """Documents per second draining one window's descriptors with ``concurrency``, and
    the CPU seconds each process used from the runner's start to its last invocation."""
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
    with CpuMeter(lambda: _roles(stack)) as meter:
        started = time.monotonic()
        with runner:
            if not runner.wait_idle(timeout=900):
                raise RuntimeError(f"concurrency {concurrency}: the pipeline did not drain")
    seconds = stack.runner.pool.last_finished - started
    # The first reading after the last invocation: the window of the rate, give or take
    # the meter's interval, without the idle checks that follow it.
    first, last = meter.samples[0], meter.first_after(stack.runner.pool.last_finished)
    wanted = {d.id for d in descriptors}
    inventory = parquet_inventory(
        stack.client("s3"), stack.outputs["bucket"], stack.outputs["parquet_prefix"]
    )
    written = len(wanted & inventory.ids.keys())
    if written != len(wanted):
        raise RuntimeError(f"concurrency {concurrency}: {written} of {len(wanted)} written")
    return Phase(
        concurrency,
        written / seconds,
        written,
        spent(first, last),
        last.at - first.at,
        len(os.sched_getaffinity(0)),
    )


def per_1000_documents(phases: list[Phase]) -> dict[str, float]:
    """CPU seconds per 1000 documents by role over ``phases``, with their ``total``."""
    documents = sum(p.documents for p in phases)
    roles = list(ROLES) + sorted({r for p in phases for r in p.cpu_seconds} - set(ROLES))
    cost = {
        role: 1000 * sum(p.cpu_seconds.get(role, 0.0) for p in phases) / documents for role in roles
    }
    return {**cost, "total": sum(cost.values())}


def utilisation(phases: list[Phase]) -> float:
    """CPU seconds used over the CPU seconds the cores had, over ``phases``."""
    used = sum(sum(p.cpu_seconds.values()) for p in phases)
    return used / sum(p.wall_seconds * p.cores for p in phases)


def _breakdown(cost: dict[str, float]) -> str:
    parts = ", ".join(f"{role} {seconds:.2f}" for role, seconds in cost.items() if role != "total")
    return f"{parts}; total {cost['total']:.2f}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both concurrencies; return the section for build/bench.json."""
    devices = DEVICES // (5 if args.quick else 1)
    config = StackConfig(devices=devices, values=VALUES, concurrency=2)
    phases: list[Phase] = []
    with (
        tempfile.TemporaryDirectory(prefix="fanout-scale-") as folder,
        local_stack(config, Path(folder)) as stack,
    ):
        stack.runner.stop()  # each phase runs its own runner, with its own concurrency
        for window, concurrency in enumerate(ORDER):
            result = phase(stack, concurrency, window, devices)
            phases.append(result)
            print(f"  concurrency {concurrency}: {result.docs_s:,.1f} documents/s", flush=True)
            print(
                f"    CPU s per 1000 documents: {_breakdown(per_1000_documents([result]))}\n"
                f"    {sum(result.cpu_seconds.values()):.2f} CPU s in {result.wall_seconds:.2f} s"
                f" on {result.cores} cores: utilisation {result.utilisation:.0%}",
                flush=True,
            )
    by_concurrency = {c: [p for p in phases if p.concurrency == c] for c in (1, 2)}
    c1 = statistics.median(p.docs_s for p in by_concurrency[1])
    c2 = statistics.median(p.docs_s for p in by_concurrency[2])
    cost = {f"c{c}": per_1000_documents(ps) for c, ps in by_concurrency.items()}
    busy = {f"c{c}": utilisation(ps) for c, ps in by_concurrency.items()}
    cores = phases[0].cores
    # If a document costs what it costs at concurrency 1, the cores run at most this many.
    ceiling_docs_s = cores * 1000 / cost["c1"]["total"]
    for name, figures in cost.items():
        print(f"  {name} CPU s per 1000 documents: {_breakdown(figures)}", flush=True)
        print(f"  {name} utilisation of {cores} cores: {busy[name]:.0%}", flush=True)
    print(
        f"  ceiling ratio {ceiling_docs_s / c1:.2f}: {cores} cores * 1000 / "
        f"{cost['c1']['total']:.2f} CPU s = {ceiling_docs_s:,.0f} documents/s at most, "
        f"against {c1:,.1f} at concurrency 1",
        flush=True,
    )
    return {
        "c1_docs_s": round(c1, 1),
        "c2_docs_s": round(c2, 1),
        "ratio": round(c2 / c1, 3),
        "documents_per_phase": devices,
        "values_per_document": VALUES,
        "phases": [
            {
                "concurrency": p.concurrency,
                "docs_s": round(p.docs_s, 1),
                "cpu_seconds": {role: round(s, 3) for role, s in p.cpu_seconds.items()},
                "wall_seconds": round(p.wall_seconds, 3),
                "cpu_utilisation": round(p.utilisation, 3),
            }
            for p in phases
        ],
        "cores": cores,
        "cpu_seconds_per_1000_docs": {
            name: {role: round(s, 3) for role, s in figures.items()}
            for name, figures in cost.items()
        },
        "cpu_utilisation": {name: round(u, 3) for name, u in busy.items()},
        "ceiling_docs_s": round(ceiling_docs_s, 1),
        "ceiling_ratio": round(ceiling_docs_s / c1, 3),
    }
