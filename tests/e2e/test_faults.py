"""The whole pipeline with every fault on at once: nothing lost, nothing twice.

2,000 descriptors meet transient API faults (5xx, 429 with both Retry-After forms, hangs,
resets, truncated bodies, long tails), terminal ones (bad documents of every kind, 4xx,
oversize bodies), gzip answers, Firehose refusing records and whole calls, consumer
invocations cut short mid-batch, and two devices that never answer well. Every good
document must land exactly once, every bad one in quarantine with the reason its fault
calls for, the hopeless ones in the dead-letter queue, and the reconciliation must
balance.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from fanout_cli.reconcile import WRITTEN
from localstack.faults import FaultPlan
from localstack.run import RunRequest, print_summary, run
from localstack.sample_api import expected_document
from tests.e2e.test_pipeline import _compact

FAULTS = ",".join(
    [
        "5xx=0.1",
        "429=0.025",
        "429-date=0.025",
        "hang=0.02",
        "reset=0.01",
        "truncate=0.01",
        "tail=0.02",
        "bad=0.03",
        "4xx=0.01",
        "oversize=0.003",
        "gzip=0.05",
        "firehose-partial=0.1",
        "firehose-call=0.05",
        "timeout=0.05",
        "device:dev-00013=503",
        "device:dev-00101=429",
    ]
)
REQUEST = RunRequest(devices=1000, values=200, windows=2, seed=11, timeout=900, faults=FAULTS)


@pytest.fixture(scope="module")
def fault_run(packages, emulator, tmp_path_factory) -> tuple[dict, Path]:
    base = tmp_path_factory.mktemp("faults")
    summary = run(replace(REQUEST, emulator=emulator), base / "run", base / "output")
    print_summary(summary)
    return summary, base / "output"


def test_the_reconciliation_balances_and_every_outcome_is_the_one_its_fault_calls_for(fault_run):
    summary, _ = fault_run
    plan = FaultPlan.parse(FAULTS, seed=REQUEST.seed)
    assert summary["expected"] == summary["enqueued"] == 2000
    assert summary["missing"] == 0
    assert summary["mismatched"] == 0, summary["mismatched_examples"]
    assert (
        summary["written"] + summary["quarantined"] + summary["dead_lettered"]
        == summary["enqueued"]
    )
    # the pinned devices, both windows each, are the dead letters
    assert summary["dead_lettered"] == 4
    assert summary["quarantined"] > 40
    assert summary["accounted"], summary
    assert plan.rate("timeout") and summary["invocations_cut"] > 0


def test_every_good_document_lands_exactly_once_with_its_values(fault_run):
    summary, output = fault_run
    frame = pd.read_parquet(output)
    plan = FaultPlan.parse(FAULTS, seed=REQUEST.seed)
    assert summary["duplicate_rows"] == 0
    assert frame["descriptor_id"].is_unique
    assert len(frame) == summary["written"]
    for row in frame.itertuples():
        device, start, end = row.descriptor_id.split(":")
        assert plan.expected(device, row.descriptor_id) == WRITTEN
        served = expected_document(
            REQUEST.seed, device, _compact(start), _compact(end), REQUEST.values
        )
        assert row.datetime == served["datetime"]
        assert row.values.tolist() == served["values"]
    pinned = {device for device, fault in plan.devices.items()}
    assert not set(frame["device_id"]) & pinned, "hopeless devices never reach parquet"
