"""Consumer entry point: an SQS batch in, a partial batch response out."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from consumer.consume import consume_batch
from fanout_core import tracing
from fanout_core.log import bind, setup_logging
from fanout_core.metrics import log_with_metrics
from fanout_core.settings import ConsumerSettings

setup_logging()
tracing.setup_tracing()
log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process ``event["Records"]``; return ``batchItemFailures`` for what SQS should retry.

    Logs one ``batch done`` line: the counts, and the batch's metrics in CloudWatch's
    embedded metric format.
    """
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    records = event.get("Records", [])
    with (
        bind(request_id=request_id, function="consumer"),
        tracing.invocation("consume", request_id=request_id, messages=len(records)) as span,
    ):
        result = consume_batch(
            records,
            ConsumerSettings.from_env(),
            invocation_id=request_id,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        span.annotate(**result.counts())
        log_with_metrics(
            log,
            "batch done",
            {**result.counts(), **result.window_fields()},
            result.metrics(len(records), time.monotonic() - started),
            dimensions={"Function": "consumer"},
            spill_fields=result.window_fields(),
        )
        return result.response()
