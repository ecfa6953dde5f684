"""Producer entry point: a schedule tick or a backfill event in, descriptors on SQS out."""

from __future__ import annotations

from typing import Any

from fanout_core.log import bind, setup_logging
from fanout_core.settings import ProducerSettings
from producer.produce import produce

setup_logging()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enqueue the descriptors ``event`` asks for; return a summary of what was enqueued."""
    with bind(request_id=getattr(context, "aws_request_id", None), function="producer"):
        return produce(event, ProducerSettings.from_env())
