"""``make run``: the whole pipeline, end to end, on this machine, then an account of it.

    python -m localstack.run [--devices 100] [--values 1000] [--windows 1] [--seed 7]

Starts the emulator and the sample API, applies ``infra/``, fires the producer's schedule
as EventBridge would (or, with ``--windows N`` above 1, sends it a backfill of the last N
windows), lets the pipeline drain, then reconciles every descriptor: written to parquet,
quarantined, or dead-lettered. Prints a summary, writes it to ``build/last-run.json``,
copies the parquet files to ``build/output/`` and exits non-zero if any descriptor is
unaccounted for or any row is duplicated.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fanout_cli.reconcile import (
    Reconciliation,
    dead_letters,
    descriptor_id_of_message,
    parquet_inventory,
    quarantine_entries,
    reconcile,
)
from fanout_core.descriptor import (
    RequestDescriptor,
    device_shard,
    format_instant,
    parse_instant,
)
from fanout_core.settings import parse_duration
from localstack.faults import FaultPlan, FaultSpecError
from localstack.runner import Invocation
from localstack.sample_api import device_ids
from localstack.stack import EMULATORS, Stack, StackConfig, local_stack
from writer.compact import partition_dates

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"


@dataclass(frozen=True)
class RunRequest:
    """What ``make run`` asks for."""

    devices: int = 100
    values: int = 1000
    windows: int = 1
    seed: int = 7
    timeout: float = 900.0
    faults: str = ""
    emulator: str = "moto"
    terraform_vars: dict[str, Any] = field(default_factory=dict)


#: With faults on, the consumer gives up on a hang after 2 s, caps bodies at 1 MiB (the
#: API's oversize answers are just above), and a message dead-letters on its 4th receive.
FAULT_RUN_VARIABLES = {
    "request_timeout_seconds": 2,
    "max_body_bytes": 1024 * 1024,
    "max_receive_count": 4,
}


def _aligned_end(at: datetime, window_seconds: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, UTC)


def expected_descriptors(
    devices: int, end: datetime, window_seconds: int, windows: int
) -> list[str]:
    """The ids the producer must enqueue: every device, ``windows`` windows before ``end``."""
    step = timedelta(seconds=window_seconds)
    return [
        RequestDescriptor(device, end - step * (k + 1), end - step * k).id
        for device in device_ids(devices)
        for k in range(windows)
    ]


def enqueued_descriptors(producer_log: Path, devices: int) -> list[str]:
    """Every descriptor id the producer's logged invocations enqueued (a shard's, only its
    share of the devices)."""
    ids: list[str] = []
    for entry in _log_entries(producer_log, "enqueued descriptors"):
        if not entry.get("first_window"):
            continue
        start, end = parse_instant(entry["first_window"]), parse_instant(entry["last_window_end"])
        step = (end - start) / int(entry["windows"])
        shard, shards = map(int, (entry.get("shard") or "0/1").split("/"))
        ids += [
            RequestDescriptor(device, start + step * k, start + step * (k + 1)).id
            for device in device_ids(devices)
            if device_shard(device, shards) == shard
            for k in range(int(entry["windows"]))
        ]
    return ids


def tick_shards(producer_log: Path) -> dict[str, int]:
    """How many scheduled producer invocations ran for each shard (``"-"``: unsharded)."""
    return dict(
        Counter(
            entry.get("shard") or "-"
            for entry in _log_entries(producer_log, "enqueued descriptors")
            if entry.get("kind") == "schedule"
        )
    )


def _log_entries(log_path: Path, message: str) -> list[dict[str, Any]]:
    """The structured log lines of one function carrying ``message`` (as Logs Insights would)."""
    if not log_path.exists():
        return []
    entries = (
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    )
    return [entry for entry in entries if entry.get("message") == message]


def trigger(stack: Stack, windows: int, at: datetime) -> dict[str, Any]:
    """Fire the schedule (one window) or send a backfill (several); return the producer's
    answer (with ``producer_shards``, every shard's rule fires and the answers add up)."""
    if windows == 1:
        rules = [s for s in stack.wiring.schedules if _producer(stack) in s.functions]
        futures = [f for rule in rules for f in stack.runner.fire_schedule(rule, at)]
        results = [_answer(future) for future in futures]
        return {**results[0], "enqueued": sum(r["enqueued"] for r in results)}
    window_seconds = parse_duration(
        stack.wiring.functions[_producer(stack)].environment.get("FANOUT_WINDOW", "1h")
    )
    end = _aligned_end(at, window_seconds)
    event = {
        "start": format_instant(end - timedelta(seconds=window_seconds * windows)),
        "end": format_instant(end),
    }
    return _answer(stack.runner.invoke_async(_producer(stack), event))


def _answer(future: Future[Invocation]) -> dict[str, Any]:
    outcome = future.result(timeout=600)
    if not outcome.ok:
        error = outcome.error or {}
        raise RuntimeError(
            f"the producer failed: {error.get('errorType')}: {error.get('errorMessage')}"
        )
    result: dict[str, Any] = outcome.result
    return result


def _producer(stack: Stack) -> str:
    return str(stack.outputs["producer_function_name"])


def compact(stack: Stack) -> dict[str, Any]:
    """Run the compactor over every partition, as its schedule does over recent ones."""
    dates = partition_dates(
        stack.client("s3"), stack.outputs["bucket"], stack.outputs["parquet_prefix"]
    )
    outcome = stack.runner.invoke_async(
        str(stack.outputs["compactor_function_name"]), {"dates": dates}
    ).result(timeout=900)
    if not outcome.ok:
        error = outcome.error or {}
        raise RuntimeError(
            f"the compactor failed: {error.get('errorType')}: {error.get('errorMessage')}"
        )
    result: dict[str, Any] = outcome.result
    return {key: result[key] for key in ("partitions", "inputs", "rows", "duplicates")}


def consumer_counts(log_path: Path) -> Counter[str]:
    """Sum the consumer's per-batch counts from its structured log (as Logs Insights would)."""
    fields = ("fetched", "valid", "delivered", "quarantined", "retry", "retried_fetches")
    totals: Counter[str] = Counter()
    for entry in _log_entries(log_path, "batch done"):
        totals.update({field: int(entry.get(field, 0)) for field in fields})
    return totals


def account(stack: Stack, expected: list[str]) -> tuple[Reconciliation, dict[str, Any]]:
    """Reconcile ``expected`` against what the stack left behind."""
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket = stack.outputs["bucket"]
    parquet = parquet_inventory(s3, bucket, stack.outputs["parquet_prefix"])
    quarantine = quarantine_entries(s3, bucket, stack.outputs["quarantine_prefix"])
    dead = dead_letters(sqs, stack.outputs["dead_letter_queue_url"])
    dead_ids = [i for m in dead if (i := descriptor_id_of_message(m["Body"]))]
    result = reconcile(expected, parquet, quarantine, dead_ids)
    return result, {
        "parquet_files": len(parquet.files),
        "rows_written": parquet.rows,
        "files": parquet.files,
    }


def copy_parquet(stack: Stack, files: dict[str, int], destination: Path) -> None:
    """Download every parquet file, keeping the partition folders."""
    shutil.rmtree(destination, ignore_errors=True)
    prefix = stack.outputs["parquet_prefix"]
    s3 = stack.client("s3")
    for key in files:
        target = destination / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(stack.outputs["bucket"], key, str(target))


def run(request: RunRequest, work_dir: Path, output_dir: Path | None = None) -> dict[str, Any]:
    """Run the pipeline end to end and return the summary."""
    started = time.monotonic()
    plan = FaultPlan.parse(request.faults, seed=request.seed)
    config = StackConfig(
        devices=request.devices,
        values=request.values,
        seed=request.seed,
        faults=request.faults,
        emulator=request.emulator,
        terraform_vars={**(FAULT_RUN_VARIABLES if plan else {}), **request.terraform_vars},
    )
    with local_stack(config, work_dir) as stack:
        at = datetime.now(UTC)
        window_seconds = parse_duration(
            stack.wiring.functions[_producer(stack)].environment.get("FANOUT_WINDOW", "1h")
        )
        expected = expected_descriptors(
            request.devices, _aligned_end(at, window_seconds), window_seconds, request.windows
        )
        pipeline_started = time.monotonic()
        produced = trigger(stack, request.windows, at)
        print(
            f"producer enqueued {produced['enqueued']} descriptors; waiting for the pipeline…",
            flush=True,
        )
        drained = stack.runner.wait_idle(request.timeout)
        # Throughput counts until the last invocation finished, not the idle check after it.
        busy_seconds = max(stack.runner.pool.last_finished - pipeline_started, 1e-9)
        compacted = compact(stack)
        pipeline_seconds = time.monotonic() - pipeline_started
        # Where schedules really fire (LocalStack), a tick may have enqueued more windows:
        # they count as enqueued too (the same window twice is the same descriptors).
        producer_log = work_dir / "logs" / f"{_producer(stack)}.log"
        ticked = sorted(set(enqueued_descriptors(producer_log, request.devices)) - set(expected))
        expected += ticked
        reconciliation, parquet = account(stack, expected)
        mismatched = {
            descriptor_id: (plan.expected(descriptor_id.split(":")[0], descriptor_id), placed)
            for descriptor_id, placed in reconciliation.placement.items()
            if placed != plan.expected(descriptor_id.split(":")[0], descriptor_id)
        }
        counts = consumer_counts(
            work_dir / "logs" / f"{stack.outputs['consumer_function_name']}.log"
        )
        if output_dir is not None:
            copy_parquet(stack, parquet["files"], output_dir)
        stats = stack.runner.stats
        summary = {
            "enqueued": produced["enqueued"],
            "expected": len(expected),
            "fetched": counts["fetched"],
            "valid": counts["valid"],
            "quarantined": reconciliation.quarantined,
            "retried": counts["retried_fetches"] + stats.batch_item_failures,
            "dead_lettered": reconciliation.dead_lettered,
            "parquet_files": parquet["parquet_files"],
            "rows_written": parquet["rows_written"],
            "written": reconciliation.written,
            "missing": len(reconciliation.missing),
            "duplicate_rows": reconciliation.duplicate_rows,
            "quarantine_reasons": reconciliation.quarantine_reasons,
            "drained": drained,
            "pipeline_seconds": round(pipeline_seconds, 2),
            "docs_per_second": round(parquet["rows_written"] / busy_seconds, 1),
            "sqs_batches": stats.sqs_batches,
            "schedule_ticks": stats.schedule_ticks,
            "shaped_ticks": stats.shaped_ticks,
            "tick_shards": tick_shards(producer_log),
            "ticked_descriptors": len(ticked),
            "compacted": compacted,
            "setup_seconds": round(stack.timings["ready"], 2),
            "devices": request.devices,
            "values_per_document": request.values,
            "windows": request.windows,
            "faults": request.faults,
            "invocations_cut": stats.cut_invocations,
            "mismatched": len(mismatched),
            "mismatched_examples": dict(sorted(mismatched.items())[:10]),
        }
    summary["seconds"] = round(time.monotonic() - started, 2)
    summary["accounted"] = (
        drained
        and summary["enqueued"] == summary["expected"]
        and reconciliation.balanced
        and not mismatched
    )
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a two-column table."""
    rows = [
        ("descriptors enqueued", summary["enqueued"]),
        ("documents fetched", summary["fetched"]),
        ("documents valid", summary["valid"]),
        ("quarantined", summary["quarantined"]),
        ("retried", summary["retried"]),
        ("dead-lettered", summary["dead_lettered"]),
        ("parquet files", summary["parquet_files"]),
        ("parquet rows", summary["rows_written"]),
        ("missing", summary["missing"]),
        ("duplicate rows", summary["duplicate_rows"]),
        ("pipeline seconds", summary["pipeline_seconds"]),
        ("documents per second", summary["docs_per_second"]),
        ("wall time (s)", summary["seconds"]),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>10}")
    print(
        f"  reconciliation: enqueued {summary['expected']} = written {summary['written']}"
        f" + quarantined {summary['quarantined']} + dead-lettered {summary['dead_lettered']}"
        f" + missing {summary['missing']}"
    )
    if summary["faults"]:
        print(f"  faults: {summary['faults']}")
        print(f"  outcomes other than the fault plan's: {summary['mismatched']}")
        for descriptor_id, (wanted, placed) in summary["mismatched_examples"].items():
            print(f"    {descriptor_id}: expected {wanted}, found {placed}")
    verdict = (
        "every descriptor accounted for" if summary["accounted"] else "UNACCOUNTED DESCRIPTORS"
    )
    print(f"  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devices", type=int, default=100, help="devices the API lists (default 100)"
    )
    parser.add_argument(
        "--values", type=int, default=1000, help="values per document (default 1000)"
    )
    parser.add_argument(
        "--windows", type=int, default=1, help="windows per device (default 1: the schedule)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the sample API's data")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the pipeline"
    )
    parser.add_argument("--faults", default="", help="fault plan, e.g. 5xx=0.1,bad=0.03 (README)")
    parser.add_argument(
        "--emulator", choices=EMULATORS, default="moto", help="local AWS emulator (default moto)"
    )
    parser.add_argument("--work-dir", type=Path, default=BUILD / "run", help="state, logs and code")
    args = parser.parse_args(argv)
    if min(args.devices, args.values, args.windows) < 1:
        parser.error("--devices, --values and --windows must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    shutil.rmtree(args.work_dir, ignore_errors=True)
    try:
        FaultPlan.parse(args.faults)
    except FaultSpecError as exc:
        parser.error(f"--faults: {exc}")
    request = RunRequest(
        args.devices, args.values, args.windows, args.seed, args.timeout, args.faults, args.emulator
    )
    try:
        summary = run(request, args.work_dir, BUILD / "output")
    except Exception as exc:  # one clear line, then where to look
        print(f"make run failed: {exc}", file=sys.stderr)
        print(f"  logs: {args.work_dir / 'logs'}", file=sys.stderr)
        return 2
    BUILD.mkdir(exist_ok=True)
    (BUILD / "last-run.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    print(f"  summary: {BUILD / 'last-run.json'}; parquet: {BUILD / 'output'}")
    print(f"  function logs: {args.work_dir / 'logs'}")
    return 0 if summary["accounted"] else 1


if __name__ == "__main__":
    sys.exit(main())
