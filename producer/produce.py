"""Turn "what to fetch" into request descriptors and enqueue them.

Windows are aligned to multiples of the window length since the Unix epoch, so the
schedule and a backfill of the same hours produce the same descriptor ids.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fanout_core import aws
from fanout_core.descriptor import (
    DEVICE_ID_PATTERN,
    RequestDescriptor,
    device_shard,
    format_instant,
    parse_instant,
)
from fanout_core.errors import (
    DeliveryError,
    InvalidEventError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from fanout_core.settings import ProducerSettings, parse_duration

log = logging.getLogger(__name__)

SQS_BATCH = 10
_SEND_ATTEMPTS = 6
_BACKFILL_KEYS = frozenset({"start", "end", "devices", "window", "shard", "shards"})
MAX_SHARDS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ProduceRequest:
    """A validated request: which windows, for which devices (``None``: every device), and
    which share of those devices (``(shard, shards)``; ``None``: all of them)."""

    start: datetime
    end: datetime
    window_seconds: int
    devices: tuple[str, ...] | None
    kind: str
    shard: tuple[int, int] | None = None


@dataclass(frozen=True)
class EnqueueResult:
    """What an enqueue did."""

    enqueued: int
    retried_entries: int


def align_down(moment: datetime, window_seconds: int) -> datetime:
    """The start of the aligned window containing ``moment``."""
    elapsed = int((moment - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % window_seconds)


def windows_between(
    start: datetime, end: datetime, window_seconds: int
) -> list[tuple[datetime, datetime]]:
    """Every aligned window that overlaps ``[start, end)``."""
    step = timedelta(seconds=window_seconds)
    cursor = align_down(start, window_seconds)
    windows = []
    while cursor < end:
        windows.append((cursor, cursor + step))
        cursor += step
    return windows


def parse_event(event: object, default_window_seconds: int) -> ProduceRequest:
    """Read an EventBridge Scheduled Event or a backfill event.

    A Scheduled Event asks for the last complete window before its ``time``. A backfill
    event is ``{"start": ISO, "end": ISO, "devices": [...], "window": "1h"}`` with
    ``devices`` and ``window`` optional; it asks for every aligned window overlapping
    ``[start, end)``. Either may carry ``"shard": i, "shards": n`` (infra/'s
    ``producer_shards`` adds them to the schedule's events): then only the devices whose
    :func:`~fanout_core.descriptor.device_shard` is ``i`` are enqueued, so ``n``
    producers with ``i`` from 0 to ``n - 1`` share the devices without overlap.

    Raises:
        InvalidEventError: Naming what is wrong; nothing has been enqueued.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"event is a {type(event).__name__}, not an object")
    if event.get("detail-type") == "Scheduled Event":
        return replace(_scheduled(event, default_window_seconds), shard=_shard(event))
    unknown = set(event) - _BACKFILL_KEYS
    if unknown:
        raise InvalidEventError(
            f"unknown keys {sorted(unknown)}: expected an EventBridge Scheduled Event or a "
            'backfill {"start": ISO-8601, "end": ISO-8601, "devices": [...], "window": "1h"}'
        )
    for key in ("start", "end"):
        if not isinstance(event.get(key), str):
            raise InvalidEventError(f"backfill: {key!r} must be an ISO-8601 string")
    try:
        start, end = parse_instant(event["start"]), parse_instant(event["end"])
    except ValueError as exc:
        raise InvalidEventError(f"backfill: unparseable date: {exc}") from exc
    if end <= start:
        raise InvalidEventError(
            f"backfill: end {event['end']!r} is not after start {event['start']!r}"
        )
    window_seconds = default_window_seconds
    if "window" in event:
        try:
            window_seconds = parse_duration(str(event["window"]))
        except ValueError as exc:
            raise InvalidEventError(f"backfill: window: {exc}") from exc
    devices = event.get("devices")
    if devices is not None:
        devices = _check_devices(devices, "backfill: devices")
    return ProduceRequest(start, end, window_seconds, devices, "backfill", _shard(event))


def _shard(event: Mapping[str, Any]) -> tuple[int, int] | None:
    if "shard" not in event and "shards" not in event:
        return None
    shard, shards = event.get("shard"), event.get("shards")
    if (
        isinstance(shard, int)
        and isinstance(shards, int)
        and not isinstance(shard, bool)
        and not isinstance(shards, bool)
        and 0 <= shard < shards <= MAX_SHARDS
    ):
        return shard, shards
    raise InvalidEventError(
        f"'shard' and 'shards' must be whole numbers, 0 <= shard < shards <= {MAX_SHARDS}: "
        f"got shard={shard!r}, shards={shards!r}"
    )


def _scheduled(event: Mapping[str, Any], window_seconds: int) -> ProduceRequest:
    try:
        fired_at = parse_instant(str(event["time"]))
    except (KeyError, ValueError) as exc:
        raise InvalidEventError(
            f"scheduled event: 'time' is missing or not ISO-8601: {exc}"
        ) from exc
    end = align_down(fired_at, window_seconds)
    return ProduceRequest(
        end - timedelta(seconds=window_seconds), end, window_seconds, None, "schedule"
    )


def _check_devices(devices: object, what: str) -> tuple[str, ...]:
    if not isinstance(devices, list) or not devices:
        raise InvalidEventError(f"{what} must be a non-empty list of device ids")
    bad = [d for d in devices if not isinstance(d, str) or not DEVICE_ID_PATTERN.fullmatch(d)]
    if bad:
        raise InvalidEventError(f"{what}: not device ids: {bad[:5]!r}")
    return tuple(dict.fromkeys(devices))


def list_devices(api_base_url: str, *, page_size: int = 500, timeout: float = 10.0) -> list[str]:
    """Every device id from the API's paginated listing ``GET /devices``.

    The listing answers ``{"devices": [...], "next": token-or-null}``; pages are
    followed until ``next`` is null.

    Raises:
        UpstreamUnavailableError: On 5xx, 429 or a network error.
        UpstreamRejectedError: On another 4xx, or a listing that breaks its contract.
    """
    devices: list[str] = []
    token: str | None = None
    for _ in range(100_000):
        query = {"limit": str(page_size)} | ({"page_token": token} if token else {})
        url = f"{api_base_url}/devices?{urllib.parse.urlencode(query)}"
        page = _get_json(url, timeout)
        if not isinstance(page, dict) or not isinstance(page.get("devices"), list):
            raise UpstreamRejectedError(200, f"device listing {url} has no 'devices' list")
        for device in page["devices"]:
            if not isinstance(device, str) or not DEVICE_ID_PATTERN.fullmatch(device):
                raise UpstreamRejectedError(200, f"device listing returned {device!r}")
            devices.append(device)
        token = page.get("next")
        if not token:
            return list(dict.fromkeys(devices))
    raise UpstreamRejectedError(200, "device listing did not end after 100,000 pages")


def _get_json(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise UpstreamUnavailableError(f"GET {url}: HTTP {exc.code}", exc.code) from exc
        raise UpstreamRejectedError(exc.code, f"GET {url}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise UpstreamUnavailableError(f"GET {url}: {exc}") from exc
    except ValueError as exc:
        raise UpstreamRejectedError(200, f"GET {url}: not JSON: {exc}") from exc


def descriptors_for(
    devices: Iterable[str], windows: Sequence[tuple[datetime, datetime]]
) -> list[RequestDescriptor]:
    """One descriptor per device per window, device-major."""
    return [RequestDescriptor(d, start, end) for d in devices for start, end in windows]


def enqueue(
    descriptors: Sequence[RequestDescriptor],
    *,
    queue_url: str,
    sqs: Any = None,
    threads: int = 4,
    on_progress: Callable[[int], None] | None = None,
) -> EnqueueResult:
    """Send ``descriptors`` with SendMessageBatch, ten per call, from ``threads`` threads.

    Entries SQS reports as failed are retried with backoff; sender faults (a message
    SQS will never accept) and entries still failing after the last attempt raise.

    Raises:
        DeliveryError: Some entries could not be enqueued (the others were).
    """
    sqs = sqs or aws.client("sqs")
    batches = [descriptors[i : i + SQS_BATCH] for i in range(0, len(descriptors), SQS_BATCH)]

    def send(batch: Sequence[RequestDescriptor]) -> int:
        retried = _send_batch(sqs, queue_url, batch)
        if on_progress:
            on_progress(len(batch))
        return retried

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="enqueue") as pool:
        # Each batch runs in a copy of the caller's context, so its log fields and its trace
        # subsegment nest under the caller's, not under whatever the pool thread last ran.
        futures = [pool.submit(contextvars.copy_context().run, send, batch) for batch in batches]
        retried = sum(future.result() for future in futures)
    return EnqueueResult(enqueued=len(descriptors), retried_entries=retried)


def _send_batch(sqs: Any, queue_url: str, batch: Sequence[RequestDescriptor]) -> int:
    pending = {str(i): d for i, d in enumerate(batch)}
    retried = 0
    for attempt in range(_SEND_ATTEMPTS):
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": i, "MessageBody": d.to_json()} for i, d in pending.items()],
        )
        failed = response.get("Failed", [])
        if not failed:
            return retried
        sender_faults = [f for f in failed if f.get("SenderFault")]
        if sender_faults:
            raise DeliveryError(
                f"SQS rejected {len(sender_faults)} descriptors: {sender_faults[0].get('Message')}",
                failed=len(sender_faults),
            )
        pending = {f["Id"]: pending[f["Id"]] for f in failed}
        retried += len(pending)
        log.warning(
            "retrying %d SendMessageBatch entries", len(pending), extra={"attempt": attempt}
        )
        time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311 (jitter)
    raise DeliveryError(
        f"{len(pending)} descriptors still failing after {_SEND_ATTEMPTS} attempts: "
        f"{[d.id for d in pending.values()][:3]}",
        failed=len(pending),
    )


def produce(
    event: object,
    settings: ProducerSettings,
    *,
    sqs: Any = None,
    device_lister: Callable[[str], list[str]] = list_devices,
) -> dict[str, Any]:
    """Validate ``event``, work out the descriptors, enqueue them, and say what was done.

    Nothing is enqueued unless the whole event is valid and every device is known.
    """
    request = parse_event(event, settings.window_seconds)
    devices = request.devices or settings.devices
    if not devices:
        if not settings.api_base_url:
            raise InvalidEventError("no devices: set FANOUT_DEVICES or FANOUT_API_BASE_URL")
        devices = tuple(device_lister(settings.api_base_url))
    if request.shard:
        shard, shards = request.shard
        devices = tuple(d for d in devices if device_shard(d, shards) == shard)
    windows = windows_between(request.start, request.end, request.window_seconds)
    descriptors = descriptors_for(devices, windows)
    result = enqueue(
        descriptors, queue_url=settings.queue_url, sqs=sqs, threads=settings.send_threads
    )
    summary = {
        "kind": request.kind,
        "enqueued": result.enqueued,
        "devices": len(devices),
        "shard": f"{request.shard[0]}/{request.shard[1]}" if request.shard else None,
        "windows": len(windows),
        "first_window": format_instant(windows[0][0]) if windows else None,
        "last_window_end": format_instant(windows[-1][1]) if windows else None,
        "retried_entries": result.retried_entries,
    }
    log.info("enqueued descriptors", extra=summary)
    return summary
