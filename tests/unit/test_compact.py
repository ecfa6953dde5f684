"""Compaction's pure parts: the commit rule readers follow, and the dates an event asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fanout_core.errors import InvalidEventError
from writer.compact import (
    CompactionRecord,
    PartitionListing,
    StoredFile,
    compacted_digest,
    live_files,
)
from writer.events import compaction_dates

P = "parquet/date=2026-11-27/"
A = "a" * 16
B = "b" * 16


def listing(files: list[str], records: dict[str, tuple[list[str], list[str]]]) -> PartitionListing:
    moment = datetime(2026, 11, 27, tzinfo=UTC)
    return PartitionListing(
        files={P + name: StoredFile(P + name, 1, "etag", moment) for name in files},
        records={
            digest: CompactionRecord(
                f"{P}_compaction-{digest}.parquet",
                digest,
                tuple(P + name for name in inputs),
                tuple(P + name for name in outputs),
            )
            for digest, (inputs, outputs) in records.items()
        },
    )


@pytest.mark.parametrize(
    ("files", "records", "live"),
    [
        (["r1.parquet", "r2.parquet"], {}, ["r1.parquet", "r2.parquet"]),
        (
            ["r1.parquet", "r2.parquet", f"compacted-{A}-0000.parquet"],
            {},
            ["r1.parquet", "r2.parquet"],
        ),
        (
            ["r1.parquet", "r2.parquet", f"compacted-{A}-0000.parquet"],
            {A: (["r1.parquet", "r2.parquet"], [f"compacted-{A}-0000.parquet"])},
            [f"compacted-{A}-0000.parquet"],
        ),
        (
            ["r2.parquet", "r3.parquet", f"compacted-{A}-0000.parquet"],
            {A: (["r1.parquet", "r2.parquet"], [f"compacted-{A}-0000.parquet"])},
            [f"compacted-{A}-0000.parquet", "r3.parquet"],
        ),
        (
            [
                f"compacted-{A}-0000.parquet",
                f"compacted-{A}-0001.parquet",
                f"compacted-{B}-0000.parquet",
                "r9.parquet",
            ],
            {
                A: ([], [f"compacted-{A}-0000.parquet", f"compacted-{A}-0001.parquet"]),
                B: ([f"compacted-{A}-0001.parquet", "r9.parquet"], [f"compacted-{B}-0000.parquet"]),
            },
            [f"compacted-{A}-0000.parquet", f"compacted-{B}-0000.parquet"],
        ),
        (
            ["r1.parquet", f"compacted-{A}-0000.parquet", f"compacted-{A}-0001.parquet"],
            {A: (["r1.parquet"], [f"compacted-{A}-0000.parquet"])},
            [f"compacted-{A}-0000.parquet"],
        ),
    ],
    ids=[
        "no-compaction-yet",
        "outputs-uploaded-not-committed",
        "committed-inputs-not-yet-deleted",
        "committed-half-deleted-plus-a-new-file",
        "second-generation-consumed-a-partial-output",
        "an-earlier-attempt-left-an-output-the-commit-does-not-name",
    ],
)
def test_live_files_count_each_row_once_at_every_step(files, records, live):
    assert live_files(listing(files, records)) == [P + name for name in live]


def test_compacted_digest_reads_only_compacted_names():
    assert compacted_digest(f"{P}compacted-{A}-0003.parquet") == A
    assert compacted_digest(f"{P}_compaction-{A}.parquet") is None
    assert compacted_digest(f"{P}2026_11_27_09_compacted-{A}-0003.parquet") is None


def test_uncommitted_lists_outputs_without_a_record():
    state = listing(
        [f"compacted-{A}-0000.parquet", f"compacted-{B}-0000.parquet"],
        {A: ([], [f"compacted-{A}-0000.parquet"])},
    )
    assert state.uncommitted() == [f"{P}compacted-{B}-0000.parquet"]


def test_a_schedule_tick_compacts_yesterday_and_today(golden):
    assert compaction_dates(golden("eventbridge-scheduled")) == ["2026-11-26", "2026-11-27"]


def test_a_schedule_tick_just_after_midnight_utc_still_covers_the_day_before(golden):
    event = golden("eventbridge-scheduled") | {"time": "2026-12-01T00:10:00Z"}
    assert compaction_dates(event) == ["2026-11-30", "2026-12-01"]


def test_explicit_dates_are_deduplicated_and_sorted():
    assert compaction_dates({"dates": ["2026-11-27", "2026-11-25", "2026-11-27"]}) == [
        "2026-11-25",
        "2026-11-27",
    ]


@pytest.mark.parametrize(
    "event",
    [{"dates": []}, {"dates": "2026-11-27"}, {"dates": ["2026-13-01"]}, {"dates": [20261127]}, {}],
    ids=["empty", "not-a-list", "no-such-month", "not-a-string", "neither-shape"],
)
def test_a_malformed_compaction_event_is_refused(event):
    with pytest.raises(InvalidEventError):
        compaction_dates(event)
