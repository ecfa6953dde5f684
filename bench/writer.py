"""Writer benchmark: raw NDJSON to zstd parquet, the writer's path against plain pyarrow.

Both sides convert the same generated Firehose object (documents of 1,000 values, as the
sample API serves them) to local parquet in the same run, each in a child process pinned
to one CPU; the figure is the median of several repetitions. The baseline is what a
hand-written job would do: ``pyarrow.json.read_json`` with the contract's schema, then
``pyarrow.parquet.write_table`` with zstd. The writer's side is
:func:`writer.convert.convert_stream`, the code the Lambda function runs minus the S3
transfer: chunked parse, contract checks, per-date split, de-duplication, row groups.

Peak RSS is the child's own (``ru_maxrss``), taken converting the largest object
Firehose delivers (128 MiB) unless ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from fanout_core.arrow import arrow_schema
from fanout_core.settings import WriterSettings
from localstack.sample_api import expected_document
from writer.convert import convert_stream

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
FIREHOSE_MAX_BYTES = 128 * MIB


def make_input(path: Path, target_bytes: int, values: int = 1000, seed: int = 7) -> int:
    """Write a Firehose-like NDJSON object of about ``target_bytes``; return its rows."""
    start = datetime(2026, 11, 27, tzinfo=UTC)
    window = timedelta(hours=1)
    rows = 0
    written = 0
    with path.open("wb") as out:
        while written < target_bytes:
            device_id = f"dev-{rows % 500:05d}"
            begin = start + window * (rows // 500)
            document = expected_document(seed, device_id, begin, begin + window, values)
            document["descriptor_id"] = (
                f"{device_id}:{begin:%Y%m%dT%H%M%SZ}:{begin + window:%Y%m%dT%H%M%SZ}"
            )
            line = orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
            out.write(line)
            written += len(line)
            rows += 1
    return rows


class _FileBody:
    """A local file with botocore ``StreamingBody``'s ``iter_chunks``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def iter_chunks(self, chunk_size: int) -> Any:
        with self.path.open("rb") as source:
            while piece := source.read(chunk_size):
                yield piece


def _pin_to_one_cpu() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _convert_ours(source: Path, output: Path) -> int:
    settings = WriterSettings.from_env({"FANOUT_BUCKET": "bench"})
    local = convert_stream(_FileBody(source), str(source), output, settings)
    return sum(local.rows.values())


def _convert_baseline(source: Path, output: Path) -> int:
    schema = arrow_schema()
    table = pa_json.read_json(
        source, parse_options=pa_json.ParseOptions(explicit_schema=schema)
    ).select(schema.names)
    pq.write_table(
        table.cast(schema),
        output / "baseline.parquet",
        compression="zstd",
        use_compliant_nested_type=True,
    )
    return int(table.num_rows)


def child(side: str, source: Path) -> dict[str, float]:
    """Convert ``source`` once on one CPU; report seconds, rows and peak RSS."""
    _pin_to_one_cpu()
    convert = _convert_ours if side == "ours" else _convert_baseline
    with tempfile.TemporaryDirectory(prefix=f"bench-writer-{side}-") as output:
        began, began_cpu = time.perf_counter(), time.process_time()
        rows = convert(source, Path(output))
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows": rows,
        "peak_rss_mb": round(peak_kib / 1024, 1),
    }


def _run_child(side: str, source: Path) -> dict[str, float]:
    completed = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bench.writer", side, str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both sides on the same input; return the ``writer`` section of bench.json."""
    quick = bool(getattr(args, "quick", False))
    size = 8 * MIB if quick else FIREHOSE_MAX_BYTES
    repetitions = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as directory:
        source = Path(directory) / "raw.ndjson"
        rows = make_input(source, size)
        print(f"input: {rows} documents of 1000 values, {source.stat().st_size / MIB:.0f} MiB")
        timings: dict[str, list[float]] = {"baseline": [], "ours": []}
        cpu: dict[str, list[float]] = {"baseline": [], "ours": []}
        peaks: dict[str, float] = {"baseline": 0.0, "ours": 0.0}
        for repetition in range(repetitions):
            for side in ("baseline", "ours"):
                measured = _run_child(side, source)
                if measured["rows"] != rows:
                    raise RuntimeError(f"{side} wrote {measured['rows']} rows of {rows}")
                timings[side].append(measured["seconds"])
                cpu[side].append(measured["cpu_seconds"])
                peaks[side] = max(peaks[side], measured["peak_rss_mb"])
                print(
                    f"  {repetition + 1}/{repetitions} {side:8} {measured['seconds']:.3f} s "
                    f"({rows / measured['seconds']:,.0f} rows/s, "
                    f"peak {measured['peak_rss_mb']:.0f} MiB)",
                    flush=True,
                )
        size_mb = round(source.stat().st_size / MIB, 1)
    baseline_rows_s = rows / statistics.median(timings["baseline"])
    rows_s = rows / statistics.median(timings["ours"])
    result = {
        "baseline_rows_s": round(baseline_rows_s, 1),
        "rows_s": round(rows_s, 1),
        "ratio": round(rows_s / baseline_rows_s, 3),
        # The same ratio in CPU time: steadier when other work shares the machine.
        "ratio_cpu": round(statistics.median(cpu["baseline"]) / statistics.median(cpu["ours"]), 3),
        "peak_rss_mb": peaks["ours"],
        "baseline_peak_rss_mb": peaks["baseline"],
        "input_mb": size_mb,
        "rows": rows,
        "values_per_document": 1000,
        "repetitions": repetitions,
        "cpus": 1,
    }
    print(
        f"writer: {rows_s:,.0f} rows/s vs baseline {baseline_rows_s:,.0f} rows/s "
        f"(ratio {result['ratio']}), peak RSS {peaks['ours']:.0f} MiB for {size_mb} MiB"
    )
    return result


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]))))
