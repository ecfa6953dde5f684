"""Writer entry points: S3 ObjectCreated events in, parquet out; scheduled compaction."""

from __future__ import annotations

import logging
from typing import Any

from fanout_core.log import bind, setup_logging
from fanout_core.settings import WriterSettings
from writer.compact import compact
from writer.convert import convert_object
from writer.events import compaction_dates, created_objects

setup_logging()
log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Convert every raw object ``event`` names; raise (so Lambda retries) if one fails."""
    settings = WriterSettings.from_env()
    with bind(request_id=getattr(context, "aws_request_id", None), function="writer"):
        results = []
        for bucket, key in created_objects(event, settings.raw_prefix):
            with bind(source=f"s3://{bucket}/{key}"):
                results.append(convert_object(bucket, key, settings))
        return {
            "objects": len(results),
            "rows": sum(r.rows for r in results),
            "files": sorted(f for r in results for f in r.files),
            "duplicates": sum(r.duplicates for r in results),
            "quarantined": sum(r.quarantined for r in results),
        }


def compact_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Compact the partitions ``event`` names (yesterday and today for a schedule tick)."""
    settings = WriterSettings.from_env()
    with bind(request_id=getattr(context, "aws_request_id", None), function="compactor"):
        dates = compaction_dates(event)
        results = compact(
            settings.bucket,
            settings.parquet_prefix,
            dates=dates,
            target_bytes=settings.compact_target_bytes,
            row_group_bytes=settings.row_group_bytes,
            compression=settings.compression,
        )
        return {
            "dates": dates,
            "partitions": len(results),
            "inputs": sum(len(r.inputs) for r in results),
            "outputs": sorted(key for r in results for key in r.outputs),
            "rows": sum(r.rows for r in results),
            "duplicates": sum(r.duplicates for r in results),
        }
