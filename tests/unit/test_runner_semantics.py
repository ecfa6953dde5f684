"""The local runner's reading of a partial batch response, as Lambda reads it."""

from __future__ import annotations

import pytest

from localstack.runner import _failed_items

BATCH = [{"MessageId": "a"}, {"MessageId": "b"}, {"MessageId": "c"}]


@pytest.mark.parametrize(
    ("response", "kept"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}, {"a", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
        ({"batchItemFailures": [{"id": "a"}]}, None),
        ("oops", None),
    ],
    ids=[
        "null",
        "empty-object",
        "null-list",
        "empty-list",
        "one",
        "two",
        "empty-id",
        "null-id",
        "unknown-id",
        "bad-key",
        "not-object",
    ],
)
def test_failed_items_follow_lambdas_partial_batch_rules(response, kept):
    assert _failed_items(response, BATCH) == kept
