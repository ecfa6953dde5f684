"""The whole pipeline on the local stack: every document lands once, with every value intact."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from fanout_core.descriptor import parse_instant
from localstack.run import RunRequest, run
from localstack.sample_api import expected_document

REQUEST = RunRequest(devices=40, values=800, windows=2, seed=5, timeout=600)
#: LocalStack's rules really fire: there the producer's ticks every minute, beside the run,
#: split over two shards (producer_shards): two rules whose ticks name their shard.
REAL_TICKS = {"schedule_expression": "rate(1 minute)", "producer_shards": 2}


@pytest.fixture(scope="module")
def pipeline(packages, emulator, tmp_path_factory) -> tuple[dict, Path]:
    base = tmp_path_factory.mktemp("pipeline")
    request = replace(
        REQUEST, emulator=emulator, terraform_vars=REAL_TICKS if emulator == "localstack" else {}
    )
    summary = run(request, base / "run", base / "output")
    return summary, base / "output"


def test_every_descriptor_is_accounted_for_with_no_duplicates(pipeline):
    summary, _ = pipeline
    expected = REQUEST.devices * REQUEST.windows
    assert summary["accounted"], summary
    assert summary["enqueued"] == summary["expected"] == expected
    assert summary["rows_written"] == summary["written"] == expected
    assert (
        summary["quarantined"],
        summary["dead_lettered"],
        summary["missing"],
        summary["duplicate_rows"],
    ) == (0, 0, 0, 0)
    assert summary["fetched"] == summary["valid"] >= expected


def test_schedules_tick_for_real_only_where_the_emulator_fires_them(pipeline, emulator):
    summary, _ = pipeline
    if emulator == "localstack":
        # Each real tick asks for the last complete window, which the run's backfill holds:
        # the same descriptors again, landing once.
        assert summary["schedule_ticks"] >= 1
        assert summary["ticked_descriptors"] == 0
        # every producer tick ran for one shard, never for all the devices
        assert summary["tick_shards"], summary
        assert set(summary["tick_shards"]) <= {"0/2", "1/2"}, summary["tick_shards"]
        # shaped by LocalStack's own input transformer, not by the runner
        assert summary["shaped_ticks"] >= 1
    else:
        assert summary["schedule_ticks"] == 0


def test_parquet_rows_match_what_the_api_served_value_for_value(pipeline):
    _, output = pipeline
    frame = pd.read_parquet(output)
    assert len(frame) == REQUEST.devices * REQUEST.windows
    for row in frame.itertuples():
        device, start, end = row.descriptor_id.split(":")
        served = expected_document(
            REQUEST.seed, device, _compact(start), _compact(end), REQUEST.values
        )
        assert row.device_id == served["device_id"] == device
        assert row.datetime == served["datetime"]
        assert row.values.dtype == "int64"
        assert row.values.tolist() == served["values"]


def test_the_partitioned_tree_reads_back_with_pyarrow_dataset(pipeline):
    _, output = pipeline
    dataset = ds.dataset(output, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == REQUEST.devices * REQUEST.windows
    assert str(table.schema.field("values").type) == "list<element: int64 not null>"
    dates = set(table.column("date").to_pylist())
    assert dates == {d[:10] for d in table.column("datetime").to_pylist()}


def _compact(text: str) -> datetime:
    return parse_instant(
        f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[9:11]}:{text[11:13]}:{text[13:15]}+00:00"
    )
