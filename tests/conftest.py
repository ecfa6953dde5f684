"""Shared fixtures: golden AWS events and factories for building more of them."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanout_core.descriptor import RequestDescriptor

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A golden event from tests/events/ (AWS's own sample shapes)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def golden() -> Callable[[str], dict[str, Any]]:
    return lambda name: copy.deepcopy(load_event(name))


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    """One SQS record shaped like the golden event's, carrying ``body``."""
    record = copy.deepcopy(load_event("sqs-receive-message")["Records"][0])
    record["messageId"] = message_id or str(uuid.uuid4())
    record["body"] = body
    return record


def sqs_event(*bodies: str | RequestDescriptor) -> dict[str, Any]:
    """An SQS event whose records carry ``bodies`` (descriptors are serialized)."""
    return {
        "Records": [
            sqs_record(b.to_json() if isinstance(b, RequestDescriptor) else b) for b in bodies
        ]
    }
