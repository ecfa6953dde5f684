"""CloudWatch embedded metric format: the lines the functions log for each unit of work."""

from __future__ import annotations

import io
import json
import logging
import math

import pytest

from consumer.consume import BatchResult
from fanout_core.log import JsonFormatter, bind
from fanout_core.metrics import (
    DEFAULT_NAMESPACE,
    MAX_VALUES,
    Metric,
    embedded,
    log_with_metrics,
    namespace,
    samples,
)


def test_one_document_names_every_metric_with_its_unit_under_the_namespace():
    # when counts and latency samples are embedded
    (document,) = embedded(
        {"Fetched": Metric(98), "FetchLatency": Metric([12.3456, 9.8], "Milliseconds")},
        dimensions={"Function": "consumer"},
        metrics_namespace="fanout/pipeline",
        timestamp_ms=1_764_230_400_000,
    )

    # then the values sit at the top level, next to the dimension, declared in _aws
    assert document == {
        "Fetched": 98,
        "FetchLatency": [12.346, 9.8],
        "Function": "consumer",
        "_aws": {
            "Timestamp": 1_764_230_400_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "fanout/pipeline",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "Fetched", "Unit": "Count"},
                        {"Name": "FetchLatency", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
    }


def test_more_samples_than_emf_allows_spill_into_further_documents():
    latencies = [float(v) for v in range(250)]

    documents = embedded(
        {"Fetched": Metric(250), "FetchLatency": Metric(latencies, "Milliseconds")},
        dimensions={"Function": "consumer"},
    )

    # then every sample is in exactly one document, at most 100 to a document, and the
    # counts only in the first
    assert [len(d["FetchLatency"]) for d in documents] == [MAX_VALUES, MAX_VALUES, 50]
    assert [v for d in documents for v in samples(d, "FetchLatency")] == latencies
    assert ["Fetched" in d for d in documents] == [True, False, False]
    assert [m["Name"] for m in documents[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "FetchLatency"
    ]


def test_numbers_cloudwatch_rejects_are_left_out():
    (document,) = embedded(
        {"Ratio": Metric(math.nan), "Latency": Metric([1.0, math.inf, 2.0])},
        dimensions={"Function": "consumer"},
    )

    assert "Ratio" not in document
    assert document["Latency"] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, DEFAULT_NAMESPACE), ({"FANOUT_METRICS_NAMESPACE": " prod/fanout "}, "prod/fanout")],
    ids=["default", "configured"],
)
def test_namespace_comes_from_the_environment(environ, expected):
    assert namespace(environ) == expected


def test_the_batch_line_is_one_json_object_with_counts_context_and_metrics():
    # given a logger writing JSON lines, as the functions' do
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.metrics")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    result = BatchResult(fetched=3, valid=2, delivered=["a", "b"], retry_message_ids=["m"])
    result.fetch_seconds = [0.010, 0.020, 0.030]
    result.dead_lettered = 1
    result.windows = ("2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z")

    # when the batch is logged with its metrics, under the invocation's context
    with bind(request_id="req-1", function="consumer"):
        log_with_metrics(
            logger,
            "batch done",
            {**result.counts(), **result.window_fields()},
            result.metrics(messages=4, seconds=1.5),
            dimensions={"Function": "consumer"},
        )
    logger.removeHandler(handler)

    # then one line carries the old fields (the infra's metric filters read them), the
    # request id, and every metric the issue names
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert (entry["message"], entry["request_id"], entry["fetched"], entry["quarantined"]) == (
        "batch done",
        "req-1",
        3,
        0,
    )
    assert entry["window_start"] == "2026-11-27T08:00:00Z"
    declared = {m["Name"]: m["Unit"] for m in entry["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert declared == {
        "Messages": "Count",
        "Fetched": "Count",
        "Valid": "Count",
        "Delivered": "Count",
        "Quarantined": "Count",
        "Retried": "Count",
        "Redelivered": "Count",
        "DeadLettered": "Count",
        "FetchLatency": "Milliseconds",
        "BatchDuration": "Milliseconds",
    }
    assert entry["FetchLatency"] == [10.0, 20.0, 30.0]
    assert (entry["BatchDuration"], entry["DeadLettered"], entry["Redelivered"]) == (1500.0, 1, 1)
