"""moto's server, with two hot spots of its SQS fixed so large queues stay usable.

    python -m localstack.emulator -H 127.0.0.1 -p 5000

moto 5.2 re-reads every queue attribute (which walks every message) for each message it
receives, and computes "now" through datetime arithmetic for each message it inspects;
with 2,000 messages waiting one ReceiveMessage took about a second. The fixes keep the
behaviour (same retention check, same clock) and make both O(1):

* the retention check reads the queue's own retention period;
* the SQS models' clock is ``time.time()``, the value the datetime arithmetic computes.

Everything else is moto's own ``moto.server.main``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from moto import server
from moto.sqs import models as sqs_models


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else float(sqs_models_unix_time(dt))


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return bool(retention_period + message.sent_timestamp / 1000 > time.time())


sqs_models_unix_time = sqs_models.unix_time  # type: ignore[attr-defined]


def patch_sqs() -> None:
    """Apply the two fixes to moto's SQS models (idempotent)."""
    sqs_models.unix_time = _unix_time  # type: ignore[attr-defined]
    sqs_models.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    patch_sqs()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
