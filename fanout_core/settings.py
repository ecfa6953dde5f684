"""Typed settings, read from the environment in one place.

Each function has a frozen settings class built by ``from_env()``. A missing required
variable, or one that does not parse, raises :class:`ConfigurationError` naming it.
Our variables are ``FANOUT_*``; ``AWS_*`` belong to the platform and boto3 reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fanout_core.errors import ConfigurationError

_DURATION = re.compile(r"(?P<number>\d+)(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Parse ``90``, ``90s``, ``15m``, ``1h`` or ``1d`` into whole seconds.

    Raises:
        ValueError: If ``text`` is not one of those forms or is zero.
    """
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h or 1d")
    seconds = int(match["number"]) * _UNIT_SECONDS[match["unit"]]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


@dataclass(frozen=True)
class _Env:
    """Typed reads from an environment mapping; every error names the variable."""

    environ: Mapping[str, str]

    def text(self, name: str, default: str | None = None) -> str:
        value = self.environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigurationError(name, "is required and not set")
        return default

    def prefix(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if value.startswith("/") or ".." in value.split("/"):
            raise ConfigurationError(name, f"{value!r} must be a relative S3 key prefix")
        return value if value.endswith("/") else value + "/"

    def integer(self, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigurationError(name, f"{raw!r} is not an integer") from exc
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigurationError(name, f"{value} must be {bound}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise ConfigurationError(name, f"{raw!r} is not a number") from exc
        if not value >= minimum:
            raise ConfigurationError(name, f"{value} must be >= {minimum}")
        return value

    def duration(self, name: str, default: str) -> int:
        raw = self.text(name, default)
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise ConfigurationError(name, str(exc)) from exc

    def names(self, name: str) -> tuple[str, ...]:
        raw = self.environ.get(name, "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def url(self, name: str) -> str:
        value = self.text(name)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(name, f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ConfigurationError(name, f"{value!r} must not carry a query or fragment")
        return value.rstrip("/")


@dataclass(frozen=True)
class ProducerSettings:
    """What the producer needs: where to enqueue and what to ask for."""

    queue_url: str
    api_base_url: str | None
    devices: tuple[str, ...]
    window_seconds: int
    send_threads: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProducerSettings:
        """Build from ``FANOUT_*`` variables (``os.environ`` by default)."""
        env = _Env(os.environ if environ is None else environ)
        return cls(
            queue_url=env.text("FANOUT_QUEUE_URL"),
            api_base_url=(
                env.url("FANOUT_API_BASE_URL") if env.environ.get("FANOUT_API_BASE_URL") else None
            ),
            devices=env.names("FANOUT_DEVICES"),
            window_seconds=env.duration("FANOUT_WINDOW", "1h"),
            send_threads=env.integer("FANOUT_SEND_THREADS", 4, maximum=64),
        )


@dataclass(frozen=True)
class ConsumerSettings:
    """What the consumer needs: where to fetch, where to deliver, how hard to push."""

    api_base_url: str
    delivery_streams: tuple[str, ...]
    bucket: str
    quarantine_prefix: str
    concurrency: int
    connect_timeout: float
    request_timeout: float
    max_body_bytes: int
    fetch_attempts: int
    redelivery_base_seconds: int
    redelivery_max_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsumerSettings:
        """Build from ``FANOUT_*`` variables (``os.environ`` by default)."""
        env = _Env(os.environ if environ is None else environ)
        return cls(
            api_base_url=env.url("FANOUT_API_BASE_URL"),
            delivery_streams=env.names("FANOUT_DELIVERY_STREAM")
            or (env.text("FANOUT_DELIVERY_STREAM"),),
            bucket=env.text("FANOUT_BUCKET"),
            quarantine_prefix=env.prefix("FANOUT_QUARANTINE_PREFIX", "quarantine/"),
            concurrency=env.integer("FANOUT_FETCH_CONCURRENCY", 32, maximum=1024),
            connect_timeout=env.number("FANOUT_CONNECT_TIMEOUT", 3.0, minimum=0.1),
            request_timeout=env.number("FANOUT_REQUEST_TIMEOUT", 10.0, minimum=0.1),
            max_body_bytes=env.integer("FANOUT_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024),
            fetch_attempts=env.integer("FANOUT_FETCH_ATTEMPTS", 3, maximum=10),
            redelivery_base_seconds=env.integer(
                "FANOUT_REDELIVERY_BASE_SECONDS", 2, minimum=0, maximum=43200
            ),
            redelivery_max_seconds=env.integer(
                "FANOUT_REDELIVERY_MAX_SECONDS", 300, minimum=0, maximum=43200
            ),
        )


@dataclass(frozen=True)
class WriterSettings:
    """What the writer needs: where raw objects come from and where parquet goes."""

    bucket: str
    raw_prefix: str
    parquet_prefix: str
    quarantine_prefix: str
    chunk_bytes: int
    compression: str
    #: Uncompressed (in-memory Arrow) bytes per parquet row group.
    row_group_bytes: int = 64 * 1024 * 1024
    #: Size on disk that compaction cuts its output files at.
    compact_target_bytes: int = 128 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WriterSettings:
        """Build from ``FANOUT_*`` variables (``os.environ`` by default)."""
        env = _Env(os.environ if environ is None else environ)
        compression = env.text("FANOUT_COMPRESSION", "zstd")
        if compression not in ("zstd", "snappy", "gzip", "none"):
            raise ConfigurationError(
                "FANOUT_COMPRESSION", f"{compression!r} is not one of zstd, snappy, gzip, none"
            )
        return cls(
            bucket=env.text("FANOUT_BUCKET"),
            raw_prefix=env.prefix("FANOUT_RAW_PREFIX", "raw/"),
            parquet_prefix=env.prefix("FANOUT_PARQUET_PREFIX", "parquet/"),
            quarantine_prefix=env.prefix("FANOUT_QUARANTINE_PREFIX", "quarantine/"),
            chunk_bytes=env.integer("FANOUT_CHUNK_BYTES", 16 * 1024 * 1024, minimum=64 * 1024),
            compression=compression,
            row_group_bytes=env.integer(
                "FANOUT_ROW_GROUP_BYTES", 64 * 1024 * 1024, minimum=64 * 1024
            ),
            compact_target_bytes=env.integer(
                "FANOUT_COMPACT_TARGET_BYTES", 128 * 1024 * 1024, minimum=1024 * 1024
            ),
        )
