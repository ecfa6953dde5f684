"""Writer entry point: S3 ObjectCreated events in, parquet out."""

from __future__ import annotations

import logging
from typing import Any

from fanout_core.log import bind, setup_logging
from fanout_core.settings import WriterSettings
from writer.convert import convert_object
from writer.events import created_objects

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
