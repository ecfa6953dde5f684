"""Fault plans: parsing, deterministic draws, and the outcome each descriptor must reach."""

from __future__ import annotations

import pytest

from localstack.faults import DEAD_LETTERED, TERMINAL, WRITTEN, FaultPlan, FaultSpecError


def test_groups_spread_their_rate_over_members_and_devices_are_pinned():
    plan = FaultPlan.parse("5xx=0.3, 429=0.05, device:dev-00007=503, latency=20, streak=2")
    assert plan.rate("500") == plan.rate("502") == plan.rate("503") == pytest.approx(0.1)
    assert plan.devices == {"dev-00007": "503"}
    assert (plan.latency_ms, plan.streak) == (20.0, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("503", "expected name=value"),
        ("teapot=0.1", "unknown fault 'teapot'"),
        ("503=lots", "not a number"),
        ("503=1.5", "between 0 and 1"),
        ("5xx=0.6,429=0.6", "transient rates add up to 1.20"),
        ("device:dev-1=firehose-call", "not a transient or terminal fault"),
    ],
    ids=["no-rate", "unknown", "not-number", "above-one", "sum-above-one", "device-stack-fault"],
)
def test_bad_plans_are_refused_naming_the_part(spec, message):
    with pytest.raises(FaultSpecError, match=message):
        FaultPlan.parse(spec)


def test_terminal_faults_are_the_same_on_every_draw_and_near_their_rate():
    plan = FaultPlan.parse("bad=0.3", seed=3)
    ids = [f"dev-{i:05d}:w" for i in range(4000)]
    first = [plan.terminal_fault("d", i) for i in ids]
    assert first == [plan.terminal_fault("d", i) for i in ids]
    share = sum(f is not None for f in first) / len(ids)
    assert 0.27 < share < 0.33


def test_transient_faults_stop_after_the_streak_unless_the_device_is_pinned():
    plan = FaultPlan.parse("503=1.0,streak=3,device:dev-x=503")
    assert [plan.transient_fault("d", "id", n) for n in (1, 2, 3, 4, 5)] == ["503"] * 3 + [None] * 2
    assert plan.transient_fault("dev-x", "id", 50) == "503"


def test_expected_outcomes_follow_the_fault():
    plan = FaultPlan.parse("device:dead=503,device:gone=410,device:junk=float")
    assert plan.expected("dead", "a") == DEAD_LETTERED
    assert plan.expected("gone", "b") == "upstream_rejected"
    assert plan.expected("junk", "c") == "invalid_document"
    assert plan.expected("fine", "d") == WRITTEN
    assert not FaultPlan.parse("")


def test_every_terminal_fault_has_an_expected_reason():
    for fault in TERMINAL:
        outcome = FaultPlan.parse(f"device:x={fault}").expected("x", "id")
        assert outcome not in (WRITTEN, DEAD_LETTERED)
