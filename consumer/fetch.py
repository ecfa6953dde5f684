"""Fetch request descriptors concurrently over one aiohttp session.

Every descriptor ends as exactly one :data:`Outcome`: a :class:`Fetched` body, a
:class:`~fanout_core.errors.TerminalError` (quarantine) or a
:class:`~fanout_core.errors.TransientError` (back to SQS). Transient failures are retried
here first, with exponential backoff and full jitter, honouring ``Retry-After``, bounded
by attempts and by the time the invocation has left.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from yarl import URL

from fanout_core import tracing
from fanout_core.descriptor import RequestDescriptor, format_instant
from fanout_core.errors import (
    FanoutError,
    TerminalError,
    TransientError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from fanout_core.quarantine import excerpt

#: The shortest attempt worth starting; with less time left the descriptor goes back to SQS.
MIN_ATTEMPT_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 5.0
_READ_CHUNK = 256 * 1024


class BodyTooLargeError(TerminalError):
    """The answer's body is larger than the configured cap."""

    reason = "body_too_large"


class UnsafeRequestError(TerminalError):
    """The request built from a descriptor would leave the configured API base URL."""

    reason = "unsafe_request"


class OutOfTimeError(TransientError):
    """The invocation had too little time left to start (another) attempt."""

    reason = "out_of_time"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 200 answer read completely and within the size cap, then transformed.

    Attributes:
        descriptor: What was fetched.
        data: The transformed body (the body itself without a transform), or ``None``
            when the transform rejected it.
        rejected: Why the body is unusable (the transform's terminal error), if it is.
        attempts: Requests it took.
        seconds: From the first request to the last byte.
    """

    descriptor: RequestDescriptor
    data: bytes | None
    rejected: TerminalError | None
    attempts: int
    seconds: float


def _identity(descriptor: RequestDescriptor, body: bytes) -> bytes:
    return body


Outcome = Fetched | FanoutError


@dataclass(frozen=True)
class FetchPolicy:
    """How hard to push and when to give up.

    Attributes:
        concurrency: Requests in flight at once.
        connect_timeout: Seconds to open a connection.
        request_timeout: Seconds for one whole attempt (connect, headers, body).
        max_body_bytes: Largest body accepted, enforced while reading.
        attempts: Tries per descriptor before it goes back to SQS.
        backoff_base: First backoff ceiling in seconds; doubles per attempt (full jitter).
    """

    concurrency: int = 32
    connect_timeout: float = 3.0
    request_timeout: float = 10.0
    max_body_bytes: int = 8 * 1024 * 1024
    attempts: int = 3
    backoff_base: float = 0.1


def request_url(api_base_url: str, descriptor: RequestDescriptor) -> str:
    """The readings URL for ``descriptor``, checked to stay under ``api_base_url``.

    Raises:
        UnsafeRequestError: If the URL would change scheme or host, or climb out of the
            base path.
    """
    path = f"/devices/{quote(descriptor.device_id, safe='')}/readings"
    query = urlencode(
        {"start": format_instant(descriptor.start), "end": format_instant(descriptor.end)}
    )
    url = f"{api_base_url}{path}?{query}"
    base, built = urlsplit(api_base_url), urlsplit(url)
    segments = built.path.split("/")
    if (
        built.scheme != base.scheme
        or built.netloc != base.netloc
        or not built.path.startswith(base.path.rstrip("/") + "/")
        or ".." in segments
        or "." in segments
    ):
        raise UnsafeRequestError(f"request {url!r} would leave {api_base_url!r}")
    return url


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date. ``None`` when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def fetch_all(
    descriptors: Iterable[RequestDescriptor],
    *,
    api_base_url: str,
    policy: FetchPolicy,
    seconds_left: Callable[[], float],
    transform: Callable[[RequestDescriptor, bytes], bytes] = _identity,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Outcome]:
    """Fetch every descriptor; return its outcome by descriptor id.

    Args:
        descriptors: What to fetch (distinct ids).
        api_base_url: The configured API base; every URL is built under it.
        policy: Concurrency, timeouts, size cap and retry bounds.
        seconds_left: Seconds this invocation may still spend fetching.
        transform: Applied to each body as soon as it is read (validation and
            serialization), so only its result is kept; a ``TerminalError`` it raises
            rejects the body.
        session: A session to use; by default one is opened and closed here.
    """
    if session is None:
        timeout = aiohttp.ClientTimeout(
            total=policy.request_timeout,
            sock_connect=policy.connect_timeout,
            sock_read=policy.request_timeout,
        )
        connector = aiohttp.TCPConnector(limit=policy.concurrency, ttl_dns_cache=300)
        async with aiohttp.ClientSession(
            timeout=timeout,
            connector=connector,
            raise_for_status=False,
            headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
        ) as owned:
            return await fetch_all(
                descriptors,
                api_base_url=api_base_url,
                policy=policy,
                seconds_left=seconds_left,
                transform=transform,
                session=owned,
            )
    gate = asyncio.Semaphore(policy.concurrency)
    items = list(descriptors)
    results = await asyncio.gather(
        *(
            _fetch_one(
                session,
                gate,
                d,
                api_base_url=api_base_url,
                policy=policy,
                seconds_left=seconds_left,
                transform=transform,
            )
            for d in items
        )
    )
    return {d.id: outcome for d, outcome in zip(items, results, strict=True)}


async def _fetch_one(
    session: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    descriptor: RequestDescriptor,
    *,
    api_base_url: str,
    policy: FetchPolicy,
    seconds_left: Callable[[], float],
    transform: Callable[[RequestDescriptor, bytes], bytes],
) -> Outcome:
    try:
        url = URL(request_url(api_base_url, descriptor), encoded=True)
    except UnsafeRequestError as exc:
        return exc
    # One subsegment per descriptor, from its first attempt to its outcome.
    with tracing.span("fetch", namespace="remote", leaf=True, descriptor_id=descriptor.id) as span:
        outcome = await _fetch_attempts(
            session,
            gate,
            descriptor,
            url,
            span,
            policy=policy,
            seconds_left=seconds_left,
            transform=transform,
        )
        _annotate(span, url, outcome)
        return outcome


def _annotate(span: tracing.Span, url: URL, outcome: Outcome) -> None:
    """Record a fetch's outcome on its span: HTTP status (0 for none) and what became of it."""
    if not span.recording:
        return
    if isinstance(outcome, Fetched):
        status, result = 200, "valid" if outcome.rejected is None else outcome.rejected.reason
        span.annotate(attempts=outcome.attempts)
    else:
        status = getattr(outcome, "status", None) or 0
        result = getattr(outcome, "reason", type(outcome).__name__)
    span.annotate(status=status, outcome=result)
    span.http(method="GET", url=str(url).partition("?")[0], status=status)


async def _fetch_attempts(
    session: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    descriptor: RequestDescriptor,
    url: URL,
    span: tracing.Span,
    *,
    policy: FetchPolicy,
    seconds_left: Callable[[], float],
    transform: Callable[[RequestDescriptor, bytes], bytes],
) -> Outcome:
    started = 0.0
    last: TransientError | None = None
    for attempt in range(1, policy.attempts + 1):
        async with gate:
            budget = min(policy.request_timeout, seconds_left())
            if budget < min(MIN_ATTEMPT_SECONDS, policy.request_timeout):
                detail = f"{max(budget, 0.0):.1f}s left, too little to start attempt {attempt}"
                return OutOfTimeError(
                    f"{detail}; last failure: {last}" if last else detail,
                    retry_after=last.retry_after if last else None,
                )
            if attempt == 1:
                started = time.monotonic()  # latency counts from the first request, not the queue
                span.begin()
            outcome = await _attempt(session, descriptor, url, policy, budget)
        if isinstance(outcome, bytes):
            seconds = time.monotonic() - started
            try:
                data = transform(descriptor, outcome)
            except TerminalError as rejected:
                return Fetched(descriptor, None, rejected, attempt, seconds)
            return Fetched(descriptor, data, None, attempt, seconds)
        if not isinstance(outcome, TransientError):
            return outcome
        last = outcome
        if attempt == policy.attempts:
            break
        ceiling = min(_MAX_BACKOFF_SECONDS, policy.backoff_base * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 (jitter, not cryptography)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        if delay + MIN_ATTEMPT_SECONDS > seconds_left():
            break
        await asyncio.sleep(delay)
    assert last is not None
    return last


async def _attempt(
    session: aiohttp.ClientSession,
    descriptor: RequestDescriptor,
    url: URL,
    policy: FetchPolicy,
    budget: float,
) -> bytes | FanoutError:
    # The session's timeout bounds a whole attempt; a tighter deadline gets its own.
    deadline = asyncio.timeout(budget) if budget < policy.request_timeout else nullcontext()
    try:
        async with deadline, session.get(url, allow_redirects=False) as response:
            status = response.status
            if status == 200:
                return await _read_capped(response, policy.max_body_bytes)
            body = await response.content.read(4096)
            if status == 429 or status >= 500:
                return UpstreamUnavailableError(
                    f"HTTP {status} for {descriptor.id}",
                    status=status,
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )
            return UpstreamRejectedError(
                status, f"{descriptor.id}: {excerpt(body, 200)}", excerpt=excerpt(body)
            )
    except TimeoutError:
        return UpstreamUnavailableError(f"timed out after {budget:.1f}s fetching {descriptor.id}")
    except aiohttp.ClientError as exc:
        return UpstreamUnavailableError(f"{type(exc).__name__} fetching {descriptor.id}: {exc}")
    except BodyTooLargeError as exc:
        return exc


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    declared = response.content_length
    if declared is not None and "Content-Encoding" not in response.headers:
        if declared > cap:
            raise BodyTooLargeError(f"body of {declared} bytes exceeds the {cap}-byte cap")
        # The declared length bounds the read: aiohttp stops at Content-Length.
        return await response.read()
    # Chunked or compressed: the size is only known while reading (a gzip bomb included).
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > cap:
            raise BodyTooLargeError(f"body exceeds the {cap}-byte cap (read {size} bytes)")
        parts.append(chunk)
    return b"".join(parts)
