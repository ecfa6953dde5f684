"""``fanout status``: what the stack holds right now.

Queue depths (waiting, in flight, delayed) of the request queue, its dead-letter queue and
the functions' failed-invocations queue; quarantine entries by stage and reason; and the
lake's live parquet files and rows per date partition, rows read from the files' footers.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, TextIO

from fanout_cli.reconcile import live_parquet, parquet_rows, quarantine_entries_since
from fanout_cli.target import Stack
from writer.compact import partition_dates

FOOTER_THREADS = 8


def queue_depths(stack: Stack, url: str) -> dict[str, int]:
    """Messages waiting, in flight (received, not yet deleted) and delayed."""
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "waiting": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def collect(stack: Stack, since: date | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (what ``--json`` prints)."""
    queues = {
        "requests": stack.queue_url,
        "dead_letter": stack.dead_letter_queue_url,
    }
    if stack.failed_invocations_queue_url:
        queues["failed_invocations"] = stack.failed_invocations_queue_url
    depths = {
        role: {"url": url, "name": url.rsplit("/", 1)[-1], **queue_depths(stack, url)}
        for role, url in queues.items()
    }
    s3 = stack.client("s3")
    bucket = stack.bucket
    entries = quarantine_entries_since(s3, bucket, stack.quarantine_prefix, since)
    reasons = Counter((e["stage"], e.get("reason", "unknown")) for e in entries)
    days = [
        d
        for d in partition_dates(s3, bucket, stack.parquet_prefix)
        if since is None or d >= since.isoformat()
    ]
    files = {day: live_parquet(s3, bucket, stack.parquet_prefix, day) for day in days}
    everything = [stored for stored_files in files.values() for stored in stored_files]
    with ThreadPoolExecutor(FOOTER_THREADS) as pool:
        rows = dict(
            zip(
                (s.key for s in everything),
                pool.map(lambda stored: parquet_rows(s3, bucket, stored), everything),
                strict=True,
            )
        )
    partitions = [
        {
            "date": day,
            "files": len(stored_files),
            "rows": sum(rows[s.key] for s in stored_files),
            "bytes": sum(s.size for s in stored_files),
        }
        for day, stored_files in files.items()
    ]
    return {
        "stack": stack.target.stack,
        "endpoint": stack.endpoint,
        "region": stack.region,
        "bucket": bucket,
        "since": since.isoformat() if since else None,
        "queues": depths,
        "quarantine": [
            {"stage": stage, "reason": reason, "entries": count}
            for (stage, reason), count in sorted(reasons.items())
        ],
        "parquet_prefix": stack.parquet_prefix,
        "quarantine_prefix": stack.quarantine_prefix,
        "partitions": partitions,
        "totals": {
            "quarantined": len(entries),
            "parquet_files": sum(p["files"] for p in partitions),
            "rows": sum(p["rows"] for p in partitions),
            "bytes": sum(p["bytes"] for p in partitions),
        },
    }


def table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    """Rows under headers, the first column left-aligned, numbers right-aligned."""
    cells = [headers, *([f"{v:,}" if isinstance(v, int) else str(v) for v in r] for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
            for i in range(len(headers))
        ]
        lines.append("  " + "  ".join(parts).rstrip())
    return lines


def print_status(found: dict[str, Any], out: TextIO, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(found, indent=2) + "\n")
        return
    lines = [f"stack {found['stack']!r} at {found['endpoint']} ({found['region']})", ""]
    lines += table(
        ["queue", "waiting", "in flight", "delayed"],
        [[q["name"], q["waiting"], q["in_flight"], q["delayed"]] for q in found["queues"].values()],
    )
    since = f" since {found['since']}" if found["since"] else ""
    lines += ["", f"quarantine (s3://{found['bucket']}/{found['quarantine_prefix']}){since}"]
    if found["quarantine"]:
        lines += table(
            ["stage / reason", "entries"],
            [[f"{q['stage']} / {q['reason']}", q["entries"]] for q in found["quarantine"]]
            + [["total", found["totals"]["quarantined"]]],
        )
    else:
        lines.append("  none")
    lines += ["", f"parquet (s3://{found['bucket']}/{found['parquet_prefix']}){since}"]
    if found["partitions"]:
        totals = found["totals"]
        lines += table(
            ["partition", "files", "rows", "MB"],
            [
                [f"date={p['date']}", p["files"], p["rows"], f"{p['bytes'] / 1e6:.1f}"]
                for p in found["partitions"]
            ]
            + [["total", totals["parquet_files"], totals["rows"], f"{totals['bytes'] / 1e6:.1f}"]],
        )
    else:
        lines.append("  none")
    out.write("\n".join(lines) + "\n")
