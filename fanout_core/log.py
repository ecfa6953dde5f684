"""Structured JSON logs, one object per line, carrying the invocation's context.

``bind(request_id=...)`` sets fields for the current context (an invocation, or one
asyncio task of it); every record logged under it carries them. In Lambda every line also
carries ``xray_trace_id``, the invocation's X-Ray trace, so a log line leads to its trace.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "fanout_log_context", default=MappingProxyType({})
)
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_TRACE_HEADER = "_X_AMZN_TRACE_ID"


@lru_cache(maxsize=8)
def _trace_root(header: str) -> str | None:
    """The ``Root`` of a trace header (one parse per invocation's header)."""
    return next((p[5:] for p in header.split(";") if p.startswith("Root=") and len(p) > 5), None)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, logger, message, context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_root = _trace_root(os.environ.get(_TRACE_HEADER, ""))
        if trace_root:
            entry["xray_trace_id"] = trace_root
        entry.update(_CONTEXT.get())
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str | None = None) -> None:
    """Route the root logger to stdout as JSON (Lambda sends stdout to CloudWatch Logs)."""
    root = logging.getLogger()
    root.setLevel(level or os.environ.get("FANOUT_LOG_LEVEL", "INFO").upper())
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    # Lambda's runtime installs its own handler; ours replaces it so every line is JSON.
    root.handlers[:] = [handler]
    for noisy in ("botocore", "boto3", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log record in this context until the block ends."""
    token = _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **fields}))
    try:
        yield
    finally:
        _CONTEXT.reset(token)
