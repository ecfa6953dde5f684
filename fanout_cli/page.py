"""The report as one self-contained HTML page: a verdict, the numbers, three charts.

Charts are inline SVG (:mod:`fanout_cli.charts`); the page needs no script, no network
and no other file, so it can be mailed or attached to a ticket as it is.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from html import escape

from fanout_cli.charts import histogram, log_bins, stacked_bar, time_columns
from fanout_cli.report import Report, percentile
from fanout_core.descriptor import format_instant

WRITTEN, QUARANTINED, DEAD, MISSING = "#2e7d32", "#f9a825", "#c62828", "#757575"
#: Bucket widths for throughput over time, in seconds; the first giving at most 60 columns.
BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MISSING_SHOWN = 100

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 800px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: .2em; } h2 { font-size: 1.1em; margin-top: 2em; }
.verdict { padding: .7em 1em; border-radius: 4px; color: #fff; font-weight: 600; }
.ok { background: #2e7d32; } .bad { background: #c62828; } .wait { background: #ef6c00; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { padding: .2em .8em .2em 0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; font-size: .9em; } code { font-size: .9em; }
"""


def throughput(report: Report) -> tuple[list[tuple[datetime, dict[str, float]]], int]:
    """Documents per second, delivered and quarantined, per time bucket of the batches."""
    batches = report.activity.batches
    if not batches:
        return [], 0
    first, last = batches[0].at, batches[-1].at
    span = max(1.0, (last - first).total_seconds())
    width = next((b for b in BUCKETS if span / b <= 60), BUCKETS[-1])
    origin = datetime.fromtimestamp(int(first.timestamp()) // width * width, UTC)
    count = int((last - origin).total_seconds() // width) + 1
    delivered: Counter[int] = Counter()
    quarantined: Counter[int] = Counter()
    for batch in batches:
        index = int((batch.at - origin).total_seconds() // width)
        delivered[index] += batch.delivered
        quarantined[index] += batch.quarantined
    return [
        (
            origin + timedelta(seconds=i * width),
            {"delivered": delivered[i] / width, "quarantined": quarantined[i] / width},
        )
        for i in range(count)
    ], width


def _verdict(report: Report) -> tuple[str, str]:
    result = report.reconciliation
    if not result.missing and not result.duplicate_rows:
        return "ok", f"All {result.enqueued:,} descriptors accounted for."
    waiting = sum(report.queue.values())
    if result.missing and waiting:
        return (
            "wait",
            f"{len(result.missing):,} of {result.enqueued:,} descriptors not landed yet; "
            f"the request queue still holds {waiting:,} messages.",
        )
    problems = []
    if result.missing:
        problems.append(f"{len(result.missing):,} of {result.enqueued:,} descriptors missing")
    if result.duplicate_rows:
        problems.append(f"{result.duplicate_rows:,} duplicate rows")
    return "bad", "; ".join(problems).capitalize() + "."


def render(report: Report) -> str:
    """The whole page."""
    result = report.reconciliation
    kind, verdict = _verdict(report)
    latencies = sorted(report.activity.latencies_ms)
    marks = {f"p{int(q * 100)}": percentile(latencies, q) for q in (0.5, 0.9, 0.99)}
    buckets, width = throughput(report)
    rows = [
        ("expected", result.enqueued, f"{len(report.devices):,} devices, {report.devices_source}"),
        ("written to parquet", result.written, ""),
        ("quarantined", result.quarantined, "terminal failures, kept with their reason"),
        ("dead-lettered", result.dead_lettered, "failed every retry: fanout redrive"),
        ("missing", len(result.missing), "nowhere yet"),
        ("duplicate rows", result.duplicate_rows, "should be 0"),
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>fanout report {escape(format_instant(report.start))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>fanout report: {escape(format_instant(report.start))} to "
        f"{escape(format_instant(report.end))}</h1>",
        f'<p class="note">stack <code>{escape(report.stack)}</code> at '
        f"{escape(report.endpoint)}; {report.windows:,} windows of {report.window_seconds:,} s; "
        f"generated {escape(format_instant(report.generated))}</p>",
        f'<p class="verdict {kind}">{escape(verdict)}</p>',
        "<h2>Where every descriptor ended</h2>",
        stacked_bar(
            [
                ("written", result.written, WRITTEN),
                ("quarantined", result.quarantined, QUARANTINED),
                ("dead-lettered", result.dead_lettered, DEAD),
                ("missing", len(result.missing), MISSING),
            ]
        ),
        "<table>",
        *(
            f'<tr><td>{escape(label)}</td><td class="n">{count:,}</td>'
            f'<td class="note">{escape(note)}</td></tr>'
            for label, count, note in rows
        ),
        "</table>",
    ]
    if result.quarantine_reasons:
        parts += [
            "<h2>Quarantined, by reason</h2><table>",
            *(
                f'<tr><td><code>{escape(reason)}</code></td><td class="n">{count:,}</td></tr>'
                for reason, count in sorted(result.quarantine_reasons.items(), key=lambda r: -r[1])
            ),
            "</table>",
        ]
    parts.append("<h2>Throughput over time</h2>")
    if buckets:
        parts.append(
            f'<p class="note">Documents per second, averaged over {width:,} s, by the time '
            "the consumer finished each batch.</p>"
        )
        parts.append(
            time_columns(
                buckets,
                [("delivered", WRITTEN), ("quarantined", QUARANTINED)],
                y_label="documents / s",
            )
        )
    parts.append("<h2>Fetch latency</h2>")
    if latencies:
        parts.append(
            f'<p class="note">{len(latencies):,} complete answers, first request to last byte '
            "(retries included), in milliseconds; the scale is logarithmic.</p>"
        )
        parts.append(histogram(log_bins(latencies), marks=marks, x_label="milliseconds"))
    if report.activity.source is None or not report.activity.batches:
        parts.append(
            '<p class="note">No consumer batches for this range in '
            f"{escape(report.activity.source or 'any log')}: give the consumer's logs with "
            "<code>--logs DIR</code>.</p>"
        )
    else:
        parts.append(
            f'<p class="note">From {len(report.activity.batches):,} consumer batches in '
            f"{escape(report.activity.source)}.</p>"
        )
    if result.missing:
        shown = result.missing[:MISSING_SHOWN]
        more = len(result.missing) - len(shown)
        parts += [
            "<h2>Missing descriptors</h2><p>",
            ", ".join(f"<code>{escape(d)}</code>" for d in shown),
            f" and {more:,} more" if more else "",
            "</p>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)
