"""``fanout plan``: what a rate needs in AWS, what it costs, and which limit binds first.

From the throughput ``make bench`` measured here (``build/bench.json``; the figures in the
data file when it is missing) and from AWS's published prices and quotas
(``fanout_cli/aws_limits_prices.toml``, each with its source and the day it was read), it
derives for each rate:

* the consumer's memory, fetch concurrency, batch size and batching window, the seconds a
  batch takes, the documents per second of one invocation, and the concurrency the rate
  needs (steady, and the maximum to give the event source);
* the Firehose streams and buffering, the objects they deliver, and the writer's share;
* the producer's memory, threads, shards and seconds per tick, and the compactor's runs;
* every limit's use, the one that binds first and the way past it (``--ceilings``: the
  rate at which each one binds);
* the cost per hour, per million documents and per month (730 hours).

The rate is steady: ``--docs-per-hour`` documents, each ``--values-per-doc`` integers. The
schedule enqueues an hour's descriptors in one burst at its tick; the plan says how long
that burst takes to drain as the event source scales up. Prices are on-demand, first
tier, no free tier, for us-east-1: another region gets limits, not costs.

    fanout plan
    fanout plan --docs-per-hour 5M --values-per-doc 1000 --tfvars
    fanout plan --ceilings --values-per-doc 10000
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from consumer.deliver import CALL_THREADS
from fanout_cli.status import table
from fanout_cli.target import CliError

DATA = Path(__file__).with_name("aws_limits_prices.toml")
BENCH = Path(__file__).resolve().parent.parent / "build" / "bench.json"
DEFAULT_RATES = (10_000, 1_000_000, 100_000_000)
HOURS_PER_MONTH = 730
MIB = 1 << 20
GIB = 1 << 30

# Choices the plan makes, not facts about AWS (README, "Planning capacity and cost").
OVERHEAD_SHARE = 0.05  # at most this share of a batch spent outside its documents
TIMEOUT_SHARE = 0.25  # a batch takes at most this share of the function's timeout
MEMORY_SHARE = 0.8  # a batch's records use at most this share of the function's memory
HEADROOM = 1.5  # maximum concurrency over the steady need
CONSUMER_TIMEOUT_S = 120
PRODUCER_TIMEOUT_S = 900  # Lambda's longest
PRODUCER_MEMORY_STEPS = (256, 512, 1024, 1769)
WRITER_MEMORY_MB = 2048
WRITER_OVERHEAD_S = 0.2
DEFAULT_FETCH_CONCURRENCY = 32
MAX_FETCH_CONCURRENCY = 1024  # FANOUT_FETCH_CONCURRENCY's ceiling
MAX_SEND_THREADS = 64  # FANOUT_SEND_THREADS's ceiling
ESM_SCALE_STEP_S = 60.0
COMPACTOR_TIMEOUT_S = 900
COMPACTOR_MEMORY_MB = 2048
MAX_PRODUCER_SHARDS = 100  # infra/'s producer_shards ceiling


@dataclass(frozen=True)
class Quota:
    """One region group's Direct PUT quota per Firehose stream."""

    records_per_second: float
    requests_per_second: float
    mib_per_second: float


@dataclass(frozen=True)
class Reference:
    """Prices, limits, measurements and assumptions the model reads; see the data file."""

    read: str
    price_region: str
    prices: Mapping[str, float]
    limits: Mapping[str, float]
    quotas: Mapping[str, Quota]
    assumptions: Mapping[str, float]
    consumer_docs_s: tuple[tuple[int, float], ...]
    writer_values_s: float
    compactor_bytes_s: float
    value_bytes: float
    record_overhead_bytes: float
    parquet_bytes_per_value: float
    put_ns_per_byte: float
    send_batch_cpu_s: float
    measured_from: str

    @classmethod
    def load(cls, data: Path = DATA, bench: Path | None = BENCH) -> Reference:
        """Read the data file; take the throughput from ``bench`` when it has it."""
        try:
            raw = tomllib.loads(data.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"cannot read the price and limit file {data}: {exc}") from exc
        measured = raw["measured"]
        consumer = measured["consumer_docs_per_second"]
        points = tuple(zip(consumer["values"], consumer["docs_per_second"], strict=True))
        writer = measured["writer_rows_per_second"]
        writer_values_s = writer["value"] * writer["values"]
        source = f"{data.name} [measured], {measured['date']}"
        found = _bench_figures(bench) if bench else None
        if found:
            points, writer_values_s = (
                found["consumer"] or points,
                found["writer"] or writer_values_s,
            )
            source = f"{bench}"
        quotas = {
            region: Quota(g["records_per_second"], g["requests_per_second"], g["mib_per_second"])
            for g in raw["firehose_direct_put"].values()
            if isinstance(g, dict)
            for region in g["regions"]
        }
        return cls(
            read=raw["read"],
            price_region=raw["prices"]["region"],
            prices={k: v["value"] for k, v in raw["prices"].items() if isinstance(v, dict)},
            limits={k: v["value"] for k, v in raw["limits"].items()},
            quotas=quotas,
            assumptions={k: v["value"] for k, v in raw["assumptions"].items()},
            consumer_docs_s=tuple(sorted(points)),
            writer_values_s=writer_values_s,
            compactor_bytes_s=measured["compactor_bytes_per_second"]["value"],
            value_bytes=measured["value_bytes"]["value"],
            record_overhead_bytes=measured["record_overhead_bytes"]["value"],
            parquet_bytes_per_value=measured["parquet_bytes_per_value"]["value"],
            put_ns_per_byte=measured["put_record_batch_cpu_ns_per_byte"]["value"],
            send_batch_cpu_s=measured["send_message_batch_cpu_ms"]["value"] / 1000,
            measured_from=source,
        )


def _bench_figures(path: Path) -> dict[str, Any] | None:
    """The consumer's and the writer's throughput from a ``make bench`` result file."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    consumer = found.get("consumer", {})
    points = tuple(
        (values, float(consumer[size]["docs_s"]))
        for size, values in (("1k", 1000), ("10k", 10000))
        if isinstance(consumer.get(size), dict) and consumer[size].get("docs_s")
    )
    writer = found.get("writer", {})
    writer_values_s = (
        float(writer["rows_s"]) * int(writer.get("values_per_document", 1000))
        if writer.get("rows_s")
        else None
    )
    if len(points) < 2 and writer_values_s is None:
        return None
    return {"consumer": points if len(points) == 2 else None, "writer": writer_values_s}


@dataclass(frozen=True)
class Workload:
    """What to plan for, and the settings a user fixes rather than lets the plan choose."""

    docs_per_hour: float
    values_per_doc: int = 1000
    region: str = "us-east-1"
    architecture: str = "x86_64"
    consumer_memory_mb: int = 1024
    fetch_concurrency: int | None = None  # None: as many as keep the CPU busy
    firehose_streams: int | None = None  # None: as many as the quota needs
    api_latency_ms: float | None = None  # None: the data file's assumption
    buffer_interval_s: int = 300
    producer_shards: int | None = None  # None: as many as a tick needs


@dataclass
class Limit:
    """One quota or ceiling and how much of it the plan uses."""

    name: str
    used: float
    limit: float
    unit: str
    past: str

    @property
    def share(self) -> float:
        return self.used / self.limit


@dataclass
class Plan:
    """Everything ``fanout plan`` derives for one workload (all rates per second unless
    named otherwise; money in the data file's currency)."""

    workload: Workload
    docs_per_second: float
    record_bytes: int
    billed_record_bytes: int
    ingest_mib_s: float
    # consumer
    fetch_concurrency: int
    consumer_cpu_ms_per_doc: float
    batch_size: int
    batch_bound: str
    batching_window_s: int
    batch_seconds: float
    put_calls_per_batch: int
    invocation_docs_s: float
    steady_concurrency: float
    max_concurrency: int
    burst_drain_s: float
    # firehose and writer
    firehose_streams: int
    buffer_size_mib: int
    object_mib: float
    objects_per_hour: float
    writer_seconds_per_object: float
    writer_concurrency: float
    # producer
    producer_memory_mb: int
    producer_threads: int
    producer_shards: int
    producer_tick_s: float
    # compactor
    compaction_seconds_per_hour: float
    compaction_runs_per_hour: int
    # storage
    parquet_gb_per_month: float
    raw_gb_per_month: float
    limits: list[Limit] = field(default_factory=list)
    cost_per_hour: dict[str, float] = field(default_factory=dict)
    priced: bool = True

    @property
    def binding(self) -> Limit:
        return max(self.limits, key=lambda limit: limit.share)

    @property
    def hourly_cost(self) -> float:
        return sum(self.cost_per_hour.values())

    @property
    def cost_per_million_docs(self) -> float:
        return self.hourly_cost / self.workload.docs_per_hour * 1e6

    @property
    def monthly_cost(self) -> float:
        return self.hourly_cost * HOURS_PER_MONTH

    def tfvars(self) -> dict[str, Any]:
        """The ``infra/`` variables that carry this plan."""
        return {
            "architecture": self.workload.architecture,
            "consumer_memory_mb": self.workload.consumer_memory_mb,
            "fetch_concurrency": self.fetch_concurrency,
            "consumer_batch_size": self.batch_size,
            "consumer_batching_window_seconds": self.batching_window_s,
            "consumer_max_concurrency": self.max_concurrency,
            "consumer_timeout_seconds": CONSUMER_TIMEOUT_S,
            "firehose_streams": self.firehose_streams,
            "firehose_buffer_size_mb": self.buffer_size_mib,
            "firehose_buffer_interval_seconds": self.workload.buffer_interval_s,
            "writer_memory_mb": WRITER_MEMORY_MB,
            "producer_memory_mb": self.producer_memory_mb,
            "producer_timeout_seconds": PRODUCER_TIMEOUT_S,
            "producer_send_threads": self.producer_threads,
            "producer_shards": self.producer_shards,
            "compaction_schedule_expression": (
                "cron(20 * * * ? *)"
                if self.compaction_runs_per_hour == 1
                else f"rate({60 // self.compaction_runs_per_hour} minutes)"
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        found = {k: v for k, v in asdict(self).items() if k not in ("limits", "workload")}
        found["workload"] = asdict(self.workload)
        found["limits"] = [{**asdict(limit), "share": limit.share} for limit in self.limits]
        found["binding"] = self.binding.name
        found["tfvars"] = self.tfvars()
        if self.priced:
            found["cost"] = {
                "per_hour": self.hourly_cost,
                "per_million_docs": self.cost_per_million_docs,
                "per_month": self.monthly_cost,
            }
        return found


# The arithmetic, a function per figure so each can be checked by hand.


def record_bytes(values: int, ref: Reference) -> int:
    """Bytes of one NDJSON record the consumer sends to Firehose (newline included)."""
    return round(ref.record_overhead_bytes + ref.value_bytes * values)


def billed_bytes(size: int, ref: Reference) -> int:
    """Firehose bills each record rounded up to the next 5 KB."""
    step = int(ref.prices["firehose_record_rounding_bytes"])
    return -(-size // step) * step


def vcpus(memory_mb: float, ref: Reference) -> float:
    """The share of a core a function of this memory gets, up to the one core that one
    Python thread (the event loop) can use."""
    return min(1.0, memory_mb / ref.limits["lambda_memory_mb_per_vcpu"])


def consumer_cpu_s(values: int, ref: Reference) -> float:
    """One core's seconds to fetch, validate and serialize one document, interpolated
    (linearly in the values, as the cost is) between the two sizes ``make bench`` measures."""
    (v1, d1), (v2, d2) = ref.consumer_docs_s[0], ref.consumer_docs_s[-1]
    c1, c2 = 1 / d1, 1 / d2
    slope = (c2 - c1) / (v2 - v1)
    return max(c1 + slope * (values - v1), c1 * 0.1)


def put_calls(batch: int, record: int, streams: int, ref: Reference) -> int:
    """PutRecordBatch calls for one consumer batch: its records split over the streams, then
    into calls of at most 500 records and 4 MiB. The consumer makes up to eight at once."""
    per_call = int(
        min(
            ref.limits["firehose_batch_records"],
            ref.limits["firehose_batch_bytes"] // record,
        )
    )
    groups = max(1, min(streams, batch))
    return groups * math.ceil(batch / groups / max(1, per_call))


def drain_seconds(docs: float, per_invocation: float, ceiling: int, ref: Reference) -> float:
    """Seconds an event source takes to drain ``docs`` that arrive at once: it starts five
    batches, adds up to 300 concurrent invocations a minute, and stops at ``ceiling``."""
    start = min(ceiling, ref.limits["sqs_esm_initial_concurrency"])
    step = ref.limits["sqs_esm_scale_up_per_minute"]
    elapsed, done, concurrency = 0.0, 0.0, start
    while True:
        per_step = concurrency * per_invocation * ESM_SCALE_STEP_S
        if done + per_step >= docs or concurrency >= ceiling:
            return elapsed + (docs - done) / (concurrency * per_invocation)
        done += per_step
        elapsed += ESM_SCALE_STEP_S
        concurrency = min(ceiling, concurrency + step)


def _nice(value: float) -> int:
    """Round up to two significant digits: 645 -> 650, 8 -> 8."""
    if value <= 10:
        return max(1, math.ceil(value))
    scale = 10 ** (int(math.log10(value)) - 1)
    return int(math.ceil(value / scale) * scale)


def _producer(docs: float, shards: int | None, ref: Reference) -> tuple[int, int, int, float]:
    """The smallest producer memory that enqueues an hour's descriptors within half of
    Lambda's longest timeout, its threads, the shards that need (``producer_shards``: one,
    unless even a full vCPU is too slow, or as given) and the seconds each shard takes."""
    rtt = ref.assumptions["send_message_batch_ms"] / 1000
    calls = math.ceil(docs / ref.limits["sqs_messages_per_call"])
    budget = PRODUCER_TIMEOUT_S / 2
    for memory in PRODUCER_MEMORY_STEPS:
        cpu = ref.send_batch_cpu_s / vcpus(memory, ref)
        threads = min(MAX_SEND_THREADS, max(4, math.ceil(rtt / cpu) + 1))
        per_call = max(cpu, rtt / threads)
        last = memory == PRODUCER_MEMORY_STEPS[-1]
        needed = shards or (
            min(MAX_PRODUCER_SHARDS, max(1, math.ceil(calls * per_call / budget))) if last else 1
        )
        seconds = 1.0 + math.ceil(calls / needed) * per_call
        if seconds <= budget or last:
            break
    return memory, threads, needed, seconds


def compaction_runs(seconds: float) -> int:
    """Compactor runs an hour (1, 2 or 4) so that each takes at most half its timeout."""
    return next((runs for runs in (1, 2, 4) if seconds / runs <= COMPACTOR_TIMEOUT_S / 2), 4)


def plan(work: Workload, ref: Reference) -> Plan:
    """Derive one workload's plan."""
    if work.region not in ref.quotas:
        raise CliError(
            f"no Firehose quota for region {work.region!r} in {DATA.name}: add its group there"
        )
    quota = ref.quotas[work.region]
    rate = work.docs_per_hour / 3600
    record = record_bytes(work.values_per_doc, ref)
    latency = (work.api_latency_ms or ref.assumptions["api_latency_ms"]) / 1000
    overhead = ref.assumptions["invocation_overhead_ms"] / 1000
    put_rtt = ref.assumptions["put_record_batch_ms"] / 1000

    # Firehose: enough streams for the per-stream quota, with the headroom of the rest.
    per_call = min(
        ref.limits["firehose_batch_records"], ref.limits["firehose_batch_bytes"] // record
    )
    needed_streams = max(
        rate * record / MIB / quota.mib_per_second,
        rate / quota.records_per_second,
        rate / per_call / quota.requests_per_second,
    )
    streams = work.firehose_streams or max(1, math.ceil(needed_streams * 1.25))

    # Consumer: one document's time is its CPU, or its share of the fetches in flight.
    cpu = vcpus(work.consumer_memory_mb, ref)
    fetch_cpu = consumer_cpu_s(work.values_per_doc, ref)
    put_cpu = record * ref.put_ns_per_byte * 1e-9
    fetchers = work.fetch_concurrency or min(
        MAX_FETCH_CONCURRENCY,
        max(DEFAULT_FETCH_CONCURRENCY, _nice(latency * cpu / fetch_cpu * 1.1)),
    )
    per_doc = (
        max(fetch_cpu / cpu, latency / fetchers) + put_cpu / cpu + put_rtt / per_call / CALL_THREADS
    )

    # Batch size: large enough that the invocation's own overhead is a small share, within
    # the event source's maximum, Lambda's payload, the memory and the timeout.
    bounds = {
        "overhead": _nice(overhead / (OVERHEAD_SHARE * per_doc)),
        "event source": ref.limits["sqs_esm_batch_size"],
        "payload": ref.limits["lambda_payload_bytes"]
        // ref.assumptions["sqs_event_bytes_per_message"],
        "memory": work.consumer_memory_mb
        * MIB
        * MEMORY_SHARE
        // (ref.assumptions["consumer_memory_per_record"] * record),
        "timeout": (CONSUMER_TIMEOUT_S * TIMEOUT_SHARE - overhead) // per_doc,
    }
    bound = min(bounds, key=lambda name: bounds[name])
    batch = max(1, int(bounds[bound]))
    in_flight = ref.limits["sqs_in_flight_messages"] * MEMORY_SHARE
    for _ in range(8):
        calls = put_calls(batch, record, streams, ref)
        batch_seconds = (
            overhead
            + batch * (max(fetch_cpu / cpu, latency / fetchers) + put_cpu / cpu)
            + math.ceil(calls / CALL_THREADS) * put_rtt
        )
        per_invocation = batch / batch_seconds
        steady = rate / per_invocation
        ceiling = int(
            min(ref.limits["sqs_esm_max_concurrency"], max(2, math.ceil(steady * HEADROOM)))
        )
        # Every running invocation holds its batch in flight: keep them under the queue's
        # in-flight quota, with the same headroom as memory.
        if ceiling * batch <= in_flight or batch == 1:
            break
        batch, bound = max(1, int(in_flight // ceiling)), "in-flight"
    # The batching window: how long a batch takes to fill at the steady rate, spread over
    # the pollers; one second at least (batches over ten need one), 300 at most.
    pollers = max(ref.limits["sqs_esm_initial_concurrency"], ceiling)
    window = int(min(300, max(1, math.ceil(batch * pollers / rate)))) if rate else 300
    drain = drain_seconds(work.docs_per_hour, per_invocation, ceiling, ref)

    # Firehose buffering and the writer: the largest objects the writer's memory allows.
    buffer_mib = int(
        min(
            ref.limits["firehose_buffer_size_mb"],
            WRITER_MEMORY_MB * MEMORY_SHARE / ref.assumptions["writer_memory_per_object_byte"],
        )
    )
    stream_bytes_s = rate * record / streams
    object_bytes = min(buffer_mib * MIB, stream_bytes_s * work.buffer_interval_s) or 1.0
    objects_per_hour = rate * record * 3600 / object_bytes
    transfer = ref.assumptions["s3_mb_per_second"] * 1e6
    parquet_object = object_bytes / record * work.values_per_doc * ref.parquet_bytes_per_value
    writer_seconds = (
        WRITER_OVERHEAD_S
        + object_bytes / record * work.values_per_doc / ref.writer_values_s
        + (object_bytes + parquet_object) / transfer
    )
    writer_concurrency = objects_per_hour / 3600 * writer_seconds

    producer_memory, producer_threads, shards, tick = _producer(
        work.docs_per_hour, work.producer_shards, ref
    )
    parquet_hour = work.docs_per_hour * work.values_per_doc * ref.parquet_bytes_per_value
    # Compaction rewrites every byte the writer lands once.
    compaction = parquet_hour / ref.compactor_bytes_s
    found = Plan(
        workload=work,
        docs_per_second=rate,
        record_bytes=record,
        billed_record_bytes=billed_bytes(record, ref),
        ingest_mib_s=rate * record / MIB,
        fetch_concurrency=fetchers,
        consumer_cpu_ms_per_doc=(fetch_cpu + put_cpu) * 1000,
        batch_size=batch,
        batch_bound=bound,
        batching_window_s=window,
        batch_seconds=batch_seconds,
        put_calls_per_batch=calls,
        invocation_docs_s=per_invocation,
        steady_concurrency=steady,
        max_concurrency=ceiling,
        burst_drain_s=drain,
        firehose_streams=streams,
        buffer_size_mib=buffer_mib,
        object_mib=object_bytes / MIB,
        objects_per_hour=objects_per_hour,
        writer_seconds_per_object=writer_seconds,
        writer_concurrency=writer_concurrency,
        producer_memory_mb=producer_memory,
        producer_threads=producer_threads,
        producer_shards=shards,
        compaction_seconds_per_hour=compaction,
        compaction_runs_per_hour=compaction_runs(compaction),
        producer_tick_s=tick,
        parquet_gb_per_month=parquet_hour * HOURS_PER_MONTH / 1e9,
        raw_gb_per_month=work.docs_per_hour * record * HOURS_PER_MONTH / 1e9,
    )
    found.limits = _limits(found, quota, per_call, ref)
    found.priced = work.region == ref.price_region
    if found.priced:
        found.cost_per_hour = hourly_cost(found, ref)
    return found


def _limits(p: Plan, quota: Quota, per_call: float, ref: Reference) -> list[Limit]:
    s = p.firehose_streams
    calls_s = p.docs_per_second / p.batch_size * p.put_calls_per_batch
    lambda_concurrency = p.max_concurrency + math.ceil(p.writer_concurrency) + 2
    return [
        Limit(
            "Firehose record size",
            p.record_bytes,
            ref.limits["firehose_record_bytes"],
            "bytes",
            "none: larger documents are quarantined as record_too_large",
        ),
        Limit(
            "Firehose MiB/s per stream",
            p.ingest_mib_s / s,
            quota.mib_per_second,
            "MiB/s",
            "firehose_streams",
        ),
        Limit(
            "Firehose records/s per stream",
            p.docs_per_second / s,
            quota.records_per_second,
            "records/s",
            "firehose_streams",
        ),
        Limit(
            "Firehose calls/s per stream",
            calls_s / s,
            quota.requests_per_second,
            "calls/s",
            "firehose_streams, larger batches",
        ),
        Limit(
            "Firehose streams per region",
            s,
            ref.limits["firehose_streams_per_region"],
            "streams",
            "a Service Quotas increase, and infra/'s firehose_streams ceiling (50) raised with it",
        ),
        Limit(
            "Lambda concurrency per account",
            lambda_concurrency,
            ref.limits["lambda_account_concurrency"],
            "invocations",
            "a Service Quotas increase",
        ),
        Limit(
            "event source concurrency",
            p.steady_concurrency,
            ref.limits["sqs_esm_max_concurrency"],
            "invocations",
            "more memory per invocation, or a second queue and mapping (not built)",
        ),
        Limit(
            "scale-up: a tick drains in the hour",
            p.burst_drain_s,
            3600,
            "s",
            "consumer_max_concurrency, or a shorter window (FANOUT_WINDOW) to spread ticks",
        ),
        Limit(
            "SQS in-flight messages",
            p.max_concurrency * p.batch_size,
            ref.limits["sqs_in_flight_messages"],
            "messages",
            "smaller batches",
        ),
        Limit(
            "producer: a tick in 900 s",
            p.producer_tick_s,
            PRODUCER_TIMEOUT_S,
            "s",
            "producer_memory_mb and producer_send_threads, then producer_shards "
            f"(up to {MAX_PRODUCER_SHARDS})",
        ),
        Limit(
            "compactor: a run in 900 s",
            p.compaction_seconds_per_hour / p.compaction_runs_per_hour,
            COMPACTOR_TIMEOUT_S,
            "s",
            "compaction_schedule_expression down to every 15 minutes; past one compactor, "
            "none built: the writer's files are then large, and readers can drop repeats "
            "by descriptor_id",
        ),
    ]


def hourly_cost(p: Plan, ref: Reference) -> dict[str, float]:
    """What an hour at this rate costs, by service."""
    w, price = p.workload, ref.prices
    gb_second = price[f"lambda_gb_second_{w.architecture}"]
    batches = w.docs_per_hour / p.batch_size
    gb_seconds = (
        batches * p.batch_seconds * w.consumer_memory_mb / 1024
        + p.objects_per_hour * p.writer_seconds_per_object * WRITER_MEMORY_MB / 1024
        + p.producer_shards * p.producer_tick_s * p.producer_memory_mb / 1024
        + p.compaction_seconds_per_hour * COMPACTOR_MEMORY_MB / 1024
    )
    invocations = batches + p.objects_per_hour + p.producer_shards + p.compaction_runs_per_hour
    # SQS: a SendMessageBatch, a ReceiveMessage and a DeleteMessageBatch per ten messages,
    # each billed per 64 KB of its payload, and the pollers' empty long polls (20 s each)
    # when idle.
    idle_polls = ref.assumptions["idle_pollers"] * 3600 / ref.limits["sqs_long_poll_seconds"]
    per_call = ref.limits["sqs_messages_per_call"]
    chunk = ref.prices["sqs_request_chunk_bytes"]
    payload = per_call * ref.assumptions["sqs_event_bytes_per_message"]
    sqs_requests = 3 * math.ceil(payload / chunk) * w.docs_per_hour / per_call
    sqs_requests = max(sqs_requests, idle_polls)
    firehose_gb = w.docs_per_hour * p.billed_record_bytes / GIB
    # S3: Firehose's PUT per object, the writer's GET and parquet PUT (multipart above
    # 8 MiB: a part per 8 MiB plus two calls), the compactor's rewrite of the same bytes.
    parquet_object = p.object_mib * MIB / p.record_bytes * w.values_per_doc
    parquet_object *= ref.parquet_bytes_per_value
    parquet_puts = 1 if parquet_object <= 8 * MIB else math.ceil(parquet_object / (8 * MIB)) + 2
    puts = p.objects_per_hour * (1 + 2 * parquet_puts)
    gets = p.objects_per_hour * 2
    # Storage: keeping one month's data (raw and parquet) costs this much every month it is
    # kept; the bill grows by it each month until the data expires.
    stored_gb_month = p.parquet_gb_per_month + p.raw_gb_per_month
    return {
        "lambda": gb_seconds * gb_second + invocations / 1e6 * price["lambda_requests"],
        "sqs": sqs_requests / 1e6 * price["sqs_standard_requests"],
        "firehose": firehose_gb * price["firehose_ingestion"],
        "s3 requests": puts / 1000 * price["s3_put_requests"]
        + gets / 1000 * price["s3_get_requests"],
        "s3 storage": stored_gb_month * price["s3_storage"] / HOURS_PER_MONTH,
    }


# Printing.


def _si(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _money(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}"


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.3g} s"


def rows(plans: Sequence[Plan]) -> list[tuple[str, list[str]]]:
    """The table: a label and one cell per plan, ``("", [])`` between sections."""

    def each(render: Any) -> list[str]:
        return [render(p) for p in plans]

    found: list[tuple[str, list[str]]] = [
        ("documents per hour", each(lambda p: _si(p.workload.docs_per_hour))),
        ("documents per second", each(lambda p: f"{p.docs_per_second:,.1f}")),
        (
            "record bytes (Firehose bills)",
            each(lambda p: f"{p.record_bytes:,} ({p.billed_record_bytes:,})"),
        ),
        ("into Firehose", each(lambda p: f"{p.ingest_mib_s:,.2f} MiB/s")),
        ("", []),
        ("consumer memory", each(lambda p: f"{p.workload.consumer_memory_mb} MB")),
        ("fetch concurrency", each(lambda p: str(p.fetch_concurrency))),
        ("CPU per document", each(lambda p: f"{p.consumer_cpu_ms_per_doc:.3f} ms")),
        ("batch size (bound by)", each(lambda p: f"{p.batch_size:,} ({p.batch_bound})")),
        ("batching window", each(lambda p: f"{p.batching_window_s} s")),
        ("seconds per batch", each(lambda p: f"{p.batch_seconds:.2f} s")),
        ("documents/s per invocation", each(lambda p: f"{p.invocation_docs_s:,.0f}")),
        (
            "concurrency: steady / maximum",
            each(lambda p: f"{p.steady_concurrency:.1f} / {p.max_concurrency}"),
        ),
        ("an hour's burst drains in", each(lambda p: _duration(p.burst_drain_s))),
        ("", []),
        ("Firehose streams", each(lambda p: str(p.firehose_streams))),
        (
            "buffer size / interval",
            each(lambda p: f"{p.buffer_size_mib} MiB / {p.workload.buffer_interval_s} s"),
        ),
        (
            "objects per hour (size)",
            each(lambda p: f"{p.objects_per_hour:,.0f} ({p.object_mib:,.1f} MiB)"),
        ),
        (
            "writer: s per object, concurrency",
            each(lambda p: f"{p.writer_seconds_per_object:.1f} s, {p.writer_concurrency:.2f}"),
        ),
        (
            "producer memory, threads, shards",
            each(lambda p: f"{p.producer_memory_mb} MB, {p.producer_threads}, {p.producer_shards}"),
        ),
        ("producer seconds per tick", each(lambda p: _duration(p.producer_tick_s))),
        (
            "compactor runs per hour, each",
            each(
                lambda p: (
                    f"{p.compaction_runs_per_hour}, "
                    + _duration(p.compaction_seconds_per_hour / p.compaction_runs_per_hour)
                )
            ),
        ),
        ("", []),
    ]
    found += [
        (f"use of {name}", each(lambda p, i=i: f"{p.limits[i].share:.0%}"))
        for i, name in enumerate(limit.name for limit in plans[0].limits)
    ]
    found.append(("binds first", each(lambda p: f"{p.binding.name} ({p.binding.share:.0%})")))
    if all(p.priced for p in plans):
        found += [("", [])]
        for service in plans[0].cost_per_hour:
            found.append(
                (f"{service} per hour", each(lambda p, s=service: _money(p.cost_per_hour[s])))
            )
        found += [
            ("total per hour", each(lambda p: _money(p.hourly_cost))),
            ("per million documents", each(lambda p: _money(p.cost_per_million_docs))),
            ("per month (730 h)", each(lambda p: _money(p.monthly_cost))),
        ]
    return found


def print_plans(plans: Sequence[Plan], ref: Reference, out: TextIO, as_json: bool) -> None:
    """The table (or JSON), then where its figures come from."""
    if as_json:
        found = {
            "plans": [p.as_dict() for p in plans],
            "prices_read": ref.read,
            "price_region": ref.price_region,
            "measured_from": ref.measured_from,
        }
        out.write(json.dumps(found, indent=2) + "\n")
        return
    # status's table: the first row (documents per hour) heads it; blank rows part sections.
    cells = [[name, *values] if values else [""] * (len(plans) + 1) for name, values in rows(plans)]
    out.writelines(line.rstrip() + "\n" for line in table(cells[0], cells[1:]))
    binding = {p.binding.name: p.binding.past for p in plans if p.binding.share >= 0.5}
    for name, past in binding.items():
        out.write(f"\nway past {name}: {past}")
    first = plans[0].workload
    out.write(
        f"\n{first.values_per_doc:,} values per document, {first.region}, {first.architecture}; "
        f"throughput from {ref.measured_from}; prices and limits read {ref.read} "
        f"({DATA.name}).\n"
    )
    if not all(p.priced for p in plans):
        out.write(f"No costs: the data file has prices for {ref.price_region} only.\n")


def print_tfvars(p: Plan, out: TextIO) -> None:
    """The plan as ``infra/`` variables, ready for a ``.tfvars`` file."""
    out.write(
        f"# fanout plan: {p.workload.docs_per_hour:,.0f} documents/hour of "
        f"{p.workload.values_per_doc:,} values\n"
    )
    for name, value in p.tfvars().items():
        out.write(f"{name} = {json.dumps(value)}\n")


def ceilings(base: Workload, ref: Reference) -> list[tuple[Limit, float | None]]:
    """For each limit, the documents per hour at which it reaches its quota, the plan
    choosing what ``base`` leaves open; ``None`` for one no rate up to 10^12 reaches.
    Earliest first."""
    low, high = 1.0, 1e12

    def at(rate: float) -> list[Limit]:
        return plan(replace(base, docs_per_hour=rate), ref).limits

    found: list[tuple[Limit, float | None]] = []
    for i, limit in enumerate(at(low)):
        if limit.share >= 1:
            found.append((limit, low))
            continue
        if at(high)[i].share < 1:
            found.append((limit, None))
            continue
        below, above = low, high
        while above / below > 1.0001:
            middle = math.sqrt(below * above)
            below, above = (below, middle) if at(middle)[i].share >= 1 else (middle, above)
        found.append((limit, above))
    return sorted(found, key=lambda item: item[1] or math.inf)


def print_ceilings(base: Workload, ref: Reference, out: TextIO, as_json: bool) -> None:
    """Where each limit binds as the rate grows, and the way past it."""
    found = ceilings(base, ref)
    if as_json:
        rows_ = [
            {"limit": limit.name, "docs_per_hour": rate, "past": limit.past}
            for limit, rate in found
        ]
        out.write(json.dumps({"ceilings": rows_, "workload": asdict(base)}, indent=2) + "\n")
        return
    labels = {
        "consumer_memory_mb": "consumer memory {} MB",
        "fetch_concurrency": "fetch concurrency {}",
        "firehose_streams": "Firehose streams {}",
        "producer_shards": "producer shards {}",
    }
    fixed = [
        label.format(value)
        for name, label in labels.items()
        if (value := getattr(base, name)) is not None
    ]
    out.write(
        f"Documents per hour at which each limit binds, {base.values_per_doc:,} values per "
        f"document, {base.region}; {', '.join(fixed) or 'everything else as the plan chooses'}:\n\n"
    )
    width = max(len(limit.name) for limit, _ in found)
    for limit, rate in found:
        out.write(
            f"  {limit.name.ljust(width)}  {_si(rate) if rate else 'never':>8}  {limit.past}\n"
        )


def plans_for(rates: Iterable[float], base: Workload, ref: Reference) -> list[Plan]:
    return [plan(replace(base, docs_per_hour=rate), ref) for rate in rates]
