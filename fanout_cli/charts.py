"""Small SVG charts, written as text: a stacked bar, stacked columns over time, a histogram.

No plotting library: each chart is an ``<svg>`` element to inline in an HTML page, with
axes, ticks, a legend and a ``<title>`` on every mark (the browser shows it on hover).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
AXIS = "#555"
GRID = "#e4e4e4"


def nice_step(maximum: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def number(value: float) -> str:
    """``1,234``, ``12.5``, ``0.25``: short labels."""
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" {FONT}>'
        + "".join(body)
        + "</svg>"
    )


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    """Colour swatches with their labels, in a row."""
    body = []
    for name, colour in items:
        body.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{x + 16:.1f}" y="{y:.1f}">{escape(name)}</text>')
        x += 24 + 7.2 * len(name)
    return body


def stacked_bar(parts: Sequence[tuple[str, int, str]], *, width: int = 760) -> str:
    """One horizontal bar split by ``(label, count, colour)``; the legend gives count and %."""
    total = sum(count for _, count, _ in parts) or 1
    height, bar_y, bar_h = 78, 8, 30
    body, x = [], 0.0
    for name, count, colour in parts:
        share = count / total
        span = share * width
        if span > 0:
            body.append(
                f'<rect x="{x:.2f}" y="{bar_y}" width="{span:.2f}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(name)}: {count:,} ({share:.1%})</title></rect>'
            )
            if span > 60:
                body.append(
                    f'<text x="{x + span / 2:.1f}" y="{bar_y + 20}" text-anchor="middle" '
                    f'fill="#fff">{share:.1%}</text>'
                )
        x += span
    labels = [(f"{name} {count:,} ({count / total:.1%})", colour) for name, count, colour in parts]
    body += legend(labels, 0, bar_y + bar_h + 28)
    return _svg(width, height, body, "outcomes")


def _plot_area(
    width: int, height: int, y_max: float, y_label: str, top: int = 12
) -> tuple[list[str], float, float, float, float, float]:
    """Axes and horizontal grid; returns the body and left, top, plot width/height, y top."""
    left, right, bottom = 64, 12, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    step = nice_step(y_max)
    y_top = step * max(1, math.ceil(y_max / step))
    body = []
    value = 0.0
    while value <= y_top + 1e-9:
        y = top + plot_h - plot_h * value / y_top
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{number(value)}</text>"
        )
        value += step
    body.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{AXIS}">{escape(y_label)}</text>'
    )
    body.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    return body, left, top, plot_w, plot_h, y_top


def time_columns(
    buckets: Sequence[tuple[datetime, Mapping[str, float]]],
    series: Sequence[tuple[str, str]],
    *,
    y_label: str,
    width: int = 760,
    height: int = 260,
) -> str:
    """Stacked columns, one per time bucket; ``series`` names each stack's parts and colours."""
    if not buckets:
        return _svg(width, 40, ['<text x="0" y="24">no data</text>'], y_label)
    y_max = max(sum(values.get(name, 0.0) for name, _ in series) for _, values in buckets)
    body, left, top, plot_w, plot_h, y_top = _plot_area(width, height, y_max, y_label)
    slot = plot_w / len(buckets)
    column = max(1.0, slot * 0.8)
    every = max(1, math.ceil(len(buckets) / 8))
    same_day = buckets[0][0].date() == buckets[-1][0].date()
    for index, (moment, values) in enumerate(buckets):
        x = left + index * slot + (slot - column) / 2
        base = top + plot_h
        tip = [f"{moment:%Y-%m-%d %H:%M:%S}"]
        for name, colour in series:
            value = values.get(name, 0.0)
            tip.append(f"{name}: {number(value)}")
            span = plot_h * value / y_top
            if span > 0:
                body.append(
                    f'<rect x="{x:.2f}" y="{base - span:.2f}" width="{column:.2f}" '
                    f'height="{span:.2f}" fill="{colour}"/>'
                )
            base -= span
        body.append(
            f'<rect x="{left + index * slot:.2f}" y="{top}" width="{slot:.2f}" '
            f'height="{plot_h}" fill="transparent"><title>{escape(", ".join(tip))}</title></rect>'
        )
        if index % every == 0:
            text = f"{moment:%H:%M:%S}" if same_day else f"{moment:%m-%d %H:%M}"
            body.append(
                f'<text x="{left + index * slot + slot / 2:.1f}" y="{top + plot_h + 16}" '
                f'text-anchor="middle" fill="{AXIS}">{text}</text>'
            )
    body += legend(series, left, height - 8)
    return _svg(width, height, body, y_label)


def histogram(
    bins: Sequence[tuple[float, float, int]],
    *,
    marks: Mapping[str, float | None],
    x_label: str,
    colour: str = "#1565c0",
    width: int = 760,
    height: int = 260,
) -> str:
    """Columns of ``(low, high, count)`` bins of equal width; ``marks`` are labelled lines
    (percentiles) placed within their bin."""
    if not bins or not any(count for _, _, count in bins):
        return _svg(width, 40, ['<text x="0" y="24">no data</text>'], x_label)
    shown = [(name, value) for name, value in marks.items() if value is not None]
    body, left, top, plot_w, plot_h, y_top = _plot_area(
        width, height, max(count for _, _, count in bins), "fetches", top=12 + 16 * len(shown)
    )
    slot = plot_w / len(bins)
    for index, (low, high, count) in enumerate(bins):
        span = plot_h * count / y_top
        x = left + index * slot
        body.append(
            f'<rect x="{x + 1:.2f}" y="{top + plot_h - span:.2f}" width="{max(1.0, slot - 2):.2f}" '
            f'height="{span:.2f}" fill="{colour}"><title>{number(low)}-{number(high)}: '
            f"{count:,}</title></rect>"
        )
        body.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="{AXIS}">'
            f"{number(low)}</text>"
        )
    body.append(
        f'<text x="{left + plot_w:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
        f'fill="{AXIS}">{number(bins[-1][1])}</text>'
    )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" '
        f'fill="{AXIS}">{escape(x_label)}</text>'
    )
    for rank, (name, value) in enumerate(shown):
        index = next(
            (i for i, (low, high, _) in enumerate(bins) if low <= value < high), len(bins) - 1
        )
        low, high, _ = bins[index]
        within = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        x = left + slot * (index + min(max(within, 0.0), 1.0))
        label_y = 14 + 16 * rank
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{label_y - 4}" y2="{top + plot_h}" '
            'stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        body.append(
            f'<text x="{x + 4:.1f}" y="{label_y}" fill="#c62828">'
            f"{escape(name)} {number(value)}</text>"
        )
    return _svg(width, height, body, x_label)


def log_bins(values: Sequence[float]) -> list[tuple[float, float, int]]:
    """Counts of the positive ``values`` in bins bounded by 1, 1.5, 2, 3, 5, 7, 10, 15...
    (six a decade, about even on a log scale): the bins from the smallest value's to the
    largest's."""
    positive = [v for v in values if v > 0]
    if not positive:
        return []
    edges: list[float] = []
    power = 10.0 ** math.floor(math.log10(min(positive)))
    while not edges or edges[-1] <= max(positive):
        for multiple in (1, 1.5, 2, 3, 5, 7):
            edges.append(multiple * power)
        power *= 10
    while len(edges) > 2 and edges[1] <= min(positive):
        edges.pop(0)
    while len(edges) > 2 and edges[-2] > max(positive):
        edges.pop()
    counts = [0] * (len(edges) - 1)
    for value in positive:
        index = next(i for i in range(len(counts)) if value < edges[i + 1] or i == len(counts) - 1)
        counts[index] += 1
    return [(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))]
