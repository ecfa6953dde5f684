"""Reconciliation: every enqueued id in exactly one place, or reported missing."""

from __future__ import annotations

from collections import Counter

from fanout_cli.reconcile import ParquetInventory, reconcile


def test_each_id_lands_in_one_outcome_with_written_winning_over_the_rest():
    parquet = ParquetInventory(files={"k": 3}, ids=Counter({"a": 1, "b": 2}))
    quarantined = [
        {"descriptor_id": "b", "reason": "invalid_document"},
        {"descriptor_id": "c", "reason": "upstream_rejected"},
    ]
    result = reconcile(["a", "b", "c", "d", "e"], parquet, quarantined, ["d"])
    assert (result.enqueued, result.written, result.quarantined, result.dead_lettered) == (
        5,
        2,
        1,
        1,
    )
    assert result.missing == ["e"]
    assert result.duplicate_rows == 1
    assert result.quarantine_reasons == {"upstream_rejected": 1}
    assert not result.balanced
    assert result.enqueued == result.written + result.quarantined + result.dead_lettered + len(
        result.missing
    )


def test_rows_for_ids_nobody_enqueued_unbalance_the_account():
    result = reconcile(
        ["a"], ParquetInventory(files={"k": 2}, ids=Counter({"a": 1, "x": 1})), [], []
    )
    assert result.unexpected == ["x"]
    assert not result.balanced
