"""Consumer entry point: an SQS batch in, a partial batch response out."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from consumer.consume import consume_batch
from fanout_core.log import bind, setup_logging
from fanout_core.settings import ConsumerSettings

setup_logging()
log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process ``event["Records"]``; return ``batchItemFailures`` for what SQS should retry."""
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    with bind(request_id=request_id, function="consumer"):
        result = consume_batch(
            event.get("Records", []),
            ConsumerSettings.from_env(),
            invocation_id=request_id,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        log.info("batch done", extra=result.counts())
        return result.response()
