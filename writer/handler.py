"""Writer entry points: S3 ObjectCreated events in, parquet out; scheduled compaction."""

from __future__ import annotations

import logging
import time
from typing import Any

from fanout_core import tracing
from fanout_core.log import bind, setup_logging
from fanout_core.metrics import MILLISECONDS, Metric, log_with_metrics
from fanout_core.settings import WriterSettings
from writer.compact import compact
from writer.convert import convert_object
from writer.events import compaction_dates, created_objects

setup_logging()
tracing.setup_tracing()
log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Convert every raw object ``event`` names; raise (so Lambda retries) if one fails."""
    started = time.monotonic()
    settings = WriterSettings.from_env()
    request_id = getattr(context, "aws_request_id", None)
    with (
        bind(request_id=request_id, function="writer"),
        tracing.invocation("write", request_id=request_id) as span,
    ):
        results = []
        for bucket, key in created_objects(event, settings.raw_prefix):
            with (
                bind(source=f"s3://{bucket}/{key}"),
                tracing.invocation("convert", key=key) as convert_span,
            ):
                result = convert_object(bucket, key, settings)
                convert_span.annotate(rows=result.rows, quarantined=result.quarantined)
                results.append(result)
        counts = {
            "objects": len(results),
            "rows": sum(r.rows for r in results),
            "duplicates": sum(r.duplicates for r in results),
            "quarantined": sum(r.quarantined for r in results),
        }
        span.annotate(**counts)
        log_with_metrics(
            log,
            "write done",
            counts,
            {
                "Objects": Metric(counts["objects"]),
                "RowsWritten": Metric(counts["rows"]),
                "DuplicateRows": Metric(counts["duplicates"]),
                "Quarantined": Metric(counts["quarantined"]),
                "Duration": Metric((time.monotonic() - started) * 1000, MILLISECONDS),
            },
            dimensions={"Function": "writer"},
        )
        return {**counts, "files": sorted(f for r in results for f in r.files)}


def compact_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Compact the partitions ``event`` names (yesterday and today for a schedule tick)."""
    settings = WriterSettings.from_env()
    request_id = getattr(context, "aws_request_id", None)
    with (
        bind(request_id=request_id, function="compactor"),
        tracing.invocation("compact", request_id=request_id) as span,
    ):
        dates = compaction_dates(event)
        results = compact(
            settings.bucket,
            settings.parquet_prefix,
            dates=dates,
            target_bytes=settings.compact_target_bytes,
            row_group_bytes=settings.row_group_bytes,
            compression=settings.compression,
        )
        rows = sum(r.rows for r in results)
        span.annotate(partitions=len(results), rows=rows)
        return {
            "dates": dates,
            "partitions": len(results),
            "inputs": sum(len(r.inputs) for r in results),
            "outputs": sorted(key for r in results for key in r.outputs),
            "rows": rows,
            "duplicates": sum(r.duplicates for r in results),
        }
