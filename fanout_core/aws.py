"""One cached factory for boto3 clients.

Functions take their clients as keyword arguments and fall back to :func:`client`; a
test or the local runner hands in its own. Where the code runs is told only by the
platform's variables: boto3 itself honours ``AWS_ENDPOINT_URL`` (and the per-service
``AWS_ENDPOINT_URL_<SERVICE>``); when an endpoint is set, S3 uses path-style addressing,
which every emulator understands.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str | None, int | None, float | None], Any] = {}

# Standard retry mode retries throttling and 5xx with backoff; connections are pooled
# per client, enough for the threads that share one.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=30,
)


def client(
    service: str,
    region: str | None = None,
    *,
    attempts: int | None = None,
    read_timeout: float | None = None,
) -> Any:
    """A shared, thread-safe boto3 client for ``service``.

    Args:
        service: The boto3 service name (``"sqs"``, ``"s3"``, ``"firehose"``...).
        region: A region; by default the one from the standard AWS configuration.
        attempts: botocore's attempts per call (default 5); 1 when the caller retries
            itself within a deadline.
        read_timeout: Seconds to wait for an answer (default 30).
    """
    key = (service, region, attempts, read_timeout)
    with _LOCK:
        existing = _CLIENTS.get(key)
        if existing is None:
            existing = _CLIENTS[key] = new_client(
                service, region, attempts=attempts, read_timeout=read_timeout
            )
        return existing


def new_client(
    service: str,
    region: str | None = None,
    *,
    attempts: int | None = None,
    read_timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    """A fresh boto3 client; ``kwargs`` go to ``Session.client`` (``endpoint_url``...)."""
    config = _CONFIG
    if attempts is not None:
        config = config.merge(Config(retries={"mode": "standard", "max_attempts": attempts}))
    if read_timeout is not None:
        config = config.merge(Config(read_timeout=read_timeout))
    if service == "s3" and (kwargs.get("endpoint_url") or _endpoint_configured("s3")):
        config = config.merge(Config(s3={"addressing_style": "path"}))
    session = boto3.session.Session()
    return session.client(service, region_name=region, config=config, **kwargs)


def _endpoint_configured(service: str) -> bool:
    return bool(
        os.environ.get("AWS_ENDPOINT_URL") or os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    )


def reset_clients() -> None:
    """Forget cached clients (after the environment changed, in tests and the runner)."""
    with _LOCK:
        _CLIENTS.clear()
