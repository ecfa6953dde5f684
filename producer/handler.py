"""Producer entry point: a schedule tick or a backfill event in, descriptors on SQS out."""

from __future__ import annotations

import logging
import time
from typing import Any

from fanout_core import tracing
from fanout_core.log import bind, setup_logging
from fanout_core.metrics import MILLISECONDS, Metric, log_with_metrics
from fanout_core.settings import ProducerSettings
from producer.produce import produce

setup_logging()
tracing.setup_tracing()
log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enqueue the descriptors ``event`` asks for; return a summary of what was enqueued."""
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None)
    with (
        bind(request_id=request_id, function="producer"),
        tracing.invocation("produce", request_id=request_id) as span,
    ):
        summary = produce(event, ProducerSettings.from_env())
        span.annotate(
            kind=summary["kind"], enqueued=summary["enqueued"], windows=summary["windows"]
        )
        log_with_metrics(
            log,
            "produce done",
            {"kind": summary["kind"], "enqueued": summary["enqueued"]},
            {
                "Enqueued": Metric(summary["enqueued"]),
                "RetriedEntries": Metric(summary["retried_entries"]),
                "Duration": Metric((time.monotonic() - started) * 1000, MILLISECONDS),
            },
            dimensions={"Function": "producer"},
        )
        return summary
