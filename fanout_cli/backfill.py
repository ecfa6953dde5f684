"""``fanout backfill``: enqueue the descriptors of a range straight to the request queue.

The ad-hoc path: no Lambda, the same descriptors the producer would make (the same
windows, aligned to the epoch, and so the same deterministic ids), sent with
SendMessageBatch from several threads. Rerunning a range sends the same ids again, which
the lake stores once, so a rerun (after an interruption, say) is safe.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from fanout_cli.progress import Progress
from fanout_cli.target import CliError, PartlyDoneError, Stack
from fanout_core.descriptor import DEVICE_ID_PATTERN, RequestDescriptor, format_instant
from fanout_core.errors import DeliveryError, UpstreamRejectedError, UpstreamUnavailableError
from producer.produce import descriptors_for, enqueue, list_devices, windows_between


@dataclass(frozen=True)
class Plan:
    """What a backfill enqueues."""

    devices: tuple[str, ...]
    windows: list[tuple[datetime, datetime]]
    window_seconds: int
    descriptors: list[RequestDescriptor]

    def summary(self) -> dict[str, Any]:
        return {
            "descriptors": len(self.descriptors),
            "devices": len(self.devices),
            "windows": len(self.windows),
            "window_seconds": self.window_seconds,
            "first_window_start": format_instant(self.windows[0][0]) if self.windows else None,
            "last_window_end": format_instant(self.windows[-1][1]) if self.windows else None,
        }


def window_text(seconds: int) -> str:
    """``1h``, ``15m``, ``90s``, ``1d``: a window length as FANOUT_WINDOW writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def checked_devices(names: Sequence[str]) -> tuple[str, ...]:
    """Device ids from ``--devices`` (comma-separated, repeatable), deduplicated in order."""
    devices = tuple(dict.fromkeys(d.strip() for part in names for d in part.split(",")))
    devices = tuple(d for d in devices if d)
    bad = [d for d in devices if not DEVICE_ID_PATTERN.fullmatch(d)]
    if bad:
        raise CliError(f"--devices: not device ids: {', '.join(bad[:5])}")
    if not devices:
        raise CliError("--devices: no device ids given")
    return devices


def all_devices(stack: Stack) -> tuple[str, ...]:
    """Every device the API lists."""
    url = stack.api_base_url
    try:
        return tuple(list_devices(url))
    except (UpstreamUnavailableError, UpstreamRejectedError) as exc:
        raise CliError(f"could not list the devices from {url}: {exc}") from exc


def plan(devices: tuple[str, ...], start: datetime, end: datetime, window_seconds: int) -> Plan:
    """Every aligned window overlapping ``[start, end)``, for every device."""
    if end <= start:
        raise CliError(f"--end {format_instant(end)} is not after --start {format_instant(start)}")
    windows = windows_between(start, end, window_seconds)
    return Plan(devices, windows, window_seconds, descriptors_for(devices, windows))


def print_dry_run(backfill: Plan, show: int, out: TextIO) -> None:
    """What the backfill would enqueue: the counts, the range, and ``show`` message bodies."""
    summary = backfill.summary()
    out.write(
        f"would enqueue {summary['descriptors']:,} descriptors: "
        f"{summary['devices']:,} devices x {summary['windows']:,} windows of "
        f"{window_text(backfill.window_seconds)}, "
        f"{summary['first_window_start']} to {summary['last_window_end']}\n"
    )
    shown = backfill.descriptors if show < 0 else backfill.descriptors[:show]
    for descriptor in shown:
        out.write(descriptor.to_json() + "\n")
    if len(shown) < len(backfill.descriptors):
        out.write(f"... and {len(backfill.descriptors) - len(shown):,} more (--show all)\n")


def run(
    backfill: Plan,
    stack: Stack,
    *,
    threads: int,
    progress: bool = True,
    err: TextIO | None = None,
) -> dict[str, Any]:
    """Enqueue the plan's descriptors; return what was done.

    Raises:
        PartlyDoneError: Some descriptors were not enqueued (the message says how many).
    """
    queue_url = stack.queue_url
    bar = Progress(
        len(backfill.descriptors), "enqueued", stream=err or sys.stderr, enabled=progress
    )
    started = time.monotonic()
    try:
        with bar:
            result = enqueue(
                backfill.descriptors,
                queue_url=queue_url,
                sqs=stack.client("sqs"),
                threads=threads,
                on_progress=bar.advance,
            )
    except DeliveryError as exc:
        raise PartlyDoneError(
            f"enqueued at least {bar.done:,} of {len(backfill.descriptors):,} descriptors; "
            f"{exc}. Rerun the same command: the ids are the same, so nothing is duplicated"
        ) from exc
    seconds = time.monotonic() - started
    return {
        **backfill.summary(),
        "queue_url": queue_url,
        "enqueued": result.enqueued,
        "retried_entries": result.retried_entries,
        "seconds": round(seconds, 2),
        "per_second": round(result.enqueued / seconds, 1) if seconds > 0 else None,
        "threads": threads,
    }


def print_result(result: dict[str, Any], out: TextIO, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(result, indent=2) + "\n")
        return
    out.write(
        f"enqueued {result['enqueued']:,} descriptors ({result['devices']:,} devices x "
        f"{result['windows']:,} windows, {result['first_window_start']} to "
        f"{result['last_window_end']}) to {result['queue_url']} in {result['seconds']:.1f}s: "
        f"{result['per_second'] or 0:,.0f}/s with {result['threads']} threads\n"
    )
