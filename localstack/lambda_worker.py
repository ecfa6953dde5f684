"""A Lambda execution environment in one process: init once, then invoke per request.

Started by :mod:`localstack.runner` as ``python -P -u lambda_worker.py`` with the
function's package on ``PYTHONPATH`` and its environment, it imports the handler (the
init phase), says ``ready``, then answers one JSON request per line on stdin with one
JSON response per line on the original stdout. Everything the function prints goes to
stderr, which the runner keeps as the function's log, as CloudWatch Logs would.

Standard library only: it runs under whatever Python the function's runtime is.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The subset of Lambda's context object that functions use."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn: str = request.get("function_arn", "")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = request.get("log_stream", "local")
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the runner kills this invocation."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the function's prints (even from C) go to the log, not the protocol
    sys.stdout = sys.stderr
    handler_path = os.environ["_HANDLER"]
    module_name, _, function_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an init error is reported, as Lambda does, on every invoke
        init_error: dict[str, Any] | None = _error(exc)
        handler = None
    else:
        init_error = None
    protocol.write(json.dumps({"ready": init_error is None, "init_error": init_error}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            response = init_error
        else:
            # Lambda's runtime sets the invocation's trace header here before each call.
            if request.get("trace_id"):
                os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
            print(f"START RequestId: {request['request_id']}", file=sys.stderr, flush=True)
            try:
                result = handler(request["event"], LambdaContext(request))
                response = {"ok": True, "result": json.loads(json.dumps(result))}
            except Exception as exc:
                traceback.print_exc()
                response = _error(exc)
            print(f"END RequestId: {request['request_id']}", file=sys.stderr, flush=True)
        protocol.write(json.dumps(response) + "\n")


if __name__ == "__main__":
    main()
