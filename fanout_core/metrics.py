"""CloudWatch metrics as log lines, in the embedded metric format (EMF).

A function logs one JSON line per unit of work (a batch, an invocation) that carries its
metrics and an ``_aws`` block naming them; CloudWatch Logs turns the line into metrics,
with no API call and no extra permission. :func:`embedded` builds the fields to merge
into that line::

    {"message": "batch done", "Fetched": 98, "FetchLatency": [12.1, 9.8, ...],
     "Function": "consumer",
     "_aws": {"Timestamp": 1764237600000,
              "CloudWatchMetrics": [{"Namespace": "fanout/pipeline",
                                     "Dimensions": [["Function"]],
                                     "Metrics": [{"Name": "Fetched", "Unit": "Count"}, ...]}]}}

A metric holds one number or a list of them (each one a sample: CloudWatch computes the
percentiles); EMF allows 100 values per list, so longer lists spill into further lines
that carry only the rest of those samples.

The namespace is ``FANOUT_METRICS_NAMESPACE`` (default ``fanout/pipeline``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAMESPACE_VARIABLE = "FANOUT_METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "fanout/pipeline"
#: EMF's limit on the values of one metric in one line.
MAX_VALUES = 100
COUNT = "Count"
MILLISECONDS = "Milliseconds"


@dataclass(frozen=True)
class Metric:
    """One metric: a number, or samples of it, in a CloudWatch unit."""

    value: float | Sequence[float]
    unit: str = COUNT


def namespace(environ: Mapping[str, str] | None = None) -> str:
    """The metrics namespace, from ``FANOUT_METRICS_NAMESPACE``."""
    value = (os.environ if environ is None else environ).get(NAMESPACE_VARIABLE, "").strip()
    return value or DEFAULT_NAMESPACE


def embedded(
    metrics: Mapping[str, Metric],
    *,
    dimensions: Mapping[str, str],
    metrics_namespace: str | None = None,
    timestamp_ms: int | None = None,
) -> list[dict[str, Any]]:
    """The EMF fields for ``metrics``: the first dict joins the unit of work's log line,
    any further ones (lists longer than :data:`MAX_VALUES`) are lines of their own.

    Non-finite numbers are left out: CloudWatch rejects them.
    """
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    documents: list[dict[str, Any]] = []
    page = 0
    while True:
        values: dict[str, Any] = {}
        for name, metric in metrics.items():
            if isinstance(metric.value, int | float):
                if page == 0 and math.isfinite(metric.value):
                    values[name] = metric.value
                continue
            chunk = [
                round(float(v), 3)
                for v in metric.value[page * MAX_VALUES : (page + 1) * MAX_VALUES]
                if math.isfinite(v)
            ]
            if chunk:
                values[name] = chunk
        if not values and page:
            return documents
        documents.append(
            {
                **values,
                **dimensions,
                "_aws": {
                    "Timestamp": stamp,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": metrics_namespace or namespace(),
                            "Dimensions": [sorted(dimensions)],
                            "Metrics": [
                                {"Name": name, "Unit": metrics[name].unit} for name in values
                            ],
                        }
                    ],
                },
            }
        )
        page += 1


def samples(document: Mapping[str, Any], name: str) -> list[float]:
    """The values of metric ``name`` in one EMF document (a log line), if it declares it."""
    aws = document.get("_aws")
    if not isinstance(aws, Mapping):
        return []
    declared = {
        metric.get("Name")
        for directive in aws.get("CloudWatchMetrics", [])
        for metric in directive.get("Metrics", [])
    }
    if name not in declared:
        return []
    value = document.get(name)
    if isinstance(value, list):
        return [float(v) for v in value if isinstance(v, int | float)]
    return [float(value)] if isinstance(value, int | float) else []


def log_with_metrics(
    logger: logging.Logger,
    message: str,
    fields: Mapping[str, Any],
    metrics: Mapping[str, Metric],
    *,
    dimensions: Mapping[str, str],
    spill_fields: Mapping[str, Any] | None = None,
) -> None:
    """Log ``message`` with ``fields`` and ``metrics`` as one EMF line; samples beyond
    :data:`MAX_VALUES` go on ``"<message>: more samples"`` lines with ``spill_fields``."""
    first, *rest = embedded(metrics, dimensions=dimensions)
    logger.info(message, extra={**fields, **first})
    for more in rest:
        logger.info(f"{message}: more samples", extra={**(spill_fields or {}), **more})
