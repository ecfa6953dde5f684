"""The ``fanout`` command's pure parts: plans, progress, ranges, charts, the page, errors."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from fanout_cli import page
from fanout_cli.__main__ import explain, parser
from fanout_cli.backfill import checked_devices, plan, print_dry_run, window_text
from fanout_cli.charts import histogram, log_bins, nice_step, stacked_bar, time_columns
from fanout_cli.progress import Progress, format_seconds, render
from fanout_cli.reconcile import ParquetInventory, reconcile, window_of
from fanout_cli.redrive import confirm
from fanout_cli.report import Activity, Batch, Report, activity_from, in_range, percentile
from fanout_cli.target import CliError, Target
from fanout_core.metrics import Metric, embedded

DAY = datetime(2026, 11, 27, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# backfill plans


def test_plan_covers_every_device_and_aligned_window_with_deterministic_ids():
    # given a range that starts and ends inside windows
    backfill = plan(("dev-1", "dev-2"), DAY + timedelta(minutes=30), DAY + 3 * HOUR, 3600)

    # then every window overlapping it counts, aligned to the hour, device-major
    assert backfill.summary()["descriptors"] == 6
    assert [d.id for d in backfill.descriptors[:3]] == [
        "dev-1:20261127T000000Z:20261127T010000Z",
        "dev-1:20261127T010000Z:20261127T020000Z",
        "dev-1:20261127T020000Z:20261127T030000Z",
    ]
    again = plan(("dev-1", "dev-2"), DAY + timedelta(minutes=30), DAY + 3 * HOUR, 3600)
    assert [d.id for d in again.descriptors] == [d.id for d in backfill.descriptors]


def test_plan_refuses_an_empty_range():
    with pytest.raises(CliError, match="is not after"):
        plan(("dev-1",), DAY, DAY, 3600)


@pytest.mark.parametrize(
    ("given", "devices"),
    [
        (["a,b", "c"], ("a", "b", "c")),
        (["a, b,,a"], ("a", "b")),
    ],
    ids=["commas-and-repeats", "blanks-and-duplicates"],
)
def test_devices_are_split_and_deduplicated(given, devices):
    assert checked_devices(given) == devices


def test_a_device_id_that_could_climb_out_of_the_url_is_refused():
    with pytest.raises(CliError, match=r"not device ids: \.\."):
        checked_devices(["ok,.."])


def test_dry_run_prints_the_count_the_range_and_a_few_bodies():
    out = io.StringIO()
    print_dry_run(plan(("dev-1",), DAY, DAY + 10 * HOUR, 3600), 2, out)

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "would enqueue 10 descriptors: 1 devices x 10 windows of 1h, "
        "2026-11-27T00:00:00Z to 2026-11-27T10:00:00Z"
    )
    assert len(lines) == 4
    assert lines[-1] == "... and 8 more (--show all)"


@pytest.mark.parametrize(
    ("seconds", "text"), [(3600, "1h"), (900, "15m"), (90, "90s"), (86400, "1d")]
)
def test_window_text_reads_like_fanout_window(seconds, text):
    assert window_text(seconds) == text


# progress


def test_progress_line_shows_count_rate_and_time_left():
    assert render(250, 1000, 5.0, "enqueued") == (
        "enqueued 250/1,000 [######..................]  25% 50/s 15s left"
    )
    assert render(1000, 1000, 20.0, "enqueued").endswith("done in 20s")


def test_progress_without_a_terminal_prints_plain_lines_at_a_bounded_rate():
    # given a progress bar on a stream that is not a terminal
    clock, stream = Clock(), io.StringIO()
    bar = Progress(100, "moved", stream=stream, quiet_interval=5.0, clock=clock)

    # when work is counted in small steps over twelve seconds
    for _ in range(12):
        clock.now += 1.0
        bar.advance(5)
    bar.close()
    bar.close()

    # then one line every five seconds, then the final one, and no carriage returns
    lines = stream.getvalue().splitlines()
    assert lines == [
        "moved 25/100 [######..................]  25% 5/s 15s left",
        "moved 50/100 [############............]  50% 5/s 10s left",
        "moved 60/100 [##############..........]  60% 5/s 8s left",
    ]
    assert "\r" not in stream.getvalue()


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42s"), (187, "3m07s"), (7500, "2h05m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


# ranges and reconciliation


def test_window_of_reads_a_descriptor_id():
    assert window_of("dev-1:20261127T080000Z:20261127T090000Z") == (DAY + 8 * HOUR, DAY + 9 * HOUR)
    assert window_of("not-an-id") is None


def test_in_range_takes_windows_that_start_inside_it():
    assert in_range("d:20261127T080000Z:20261127T090000Z", DAY + 8 * HOUR, DAY + 9 * HOUR)
    assert not in_range("d:20261127T090000Z:20261127T100000Z", DAY + 8 * HOUR, DAY + 9 * HOUR)


def test_percentile_is_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (
        50.0,
        99.0,
        None,
    )


def batch_line(window_start: str, window_end: str, latencies: list[float]) -> dict:
    return {
        "message": "batch done",
        "Function": "consumer",
        "delivered": len(latencies),
        "quarantined": 0,
        "window_start": window_start,
        "window_end": window_end,
        **embedded(
            {"FetchLatency": Metric(latencies, "Milliseconds"), "Messages": Metric(3)},
            dimensions={"Function": "consumer"},
            timestamp_ms=1_764_230_400_000,
        )[0],
    }


def test_activity_keeps_the_batches_whose_windows_overlap_the_range():
    lines = [
        batch_line("2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z", [10.0, 20.0]),
        batch_line("2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z", [99.0]),
        {"message": "batch done", "Function": "consumer"},  # no windows: not attributable
        {"message": "quarantined", "Function": "consumer"},
    ]

    found = activity_from(lines, DAY + 8 * HOUR, DAY + 10 * HOUR, "test")

    assert [b.messages for b in found.batches] == [3]
    assert found.latencies_ms == [10.0, 20.0]
    assert found.lines_read == 4


# charts and the page


def test_nice_steps_are_one_two_or_five_times_a_power_of_ten():
    assert [nice_step(m) for m in (7, 42, 130, 0)] == [2.0, 10.0, 50.0, 1.0]


def test_log_bins_hold_every_value_once():
    values = [1.2, 3.0, 3.1, 45.0, 160.0]
    bins = log_bins(values)
    assert bins[0][0] <= min(values)
    assert bins[-1][1] > max(values)
    assert sum(count for _, _, count in bins) == len(values)


@pytest.mark.parametrize(
    "chart",
    [
        stacked_bar([("written", 9, "#0a0"), ("missing <&>", 1, "#777")]),
        time_columns(
            [(DAY + i * HOUR, {"delivered": i * 1.5}) for i in range(30)],
            [("delivered", "#0a0")],
            y_label="documents / s",
        ),
        histogram(log_bins([5.0, 7.0, 12.0, 80.0]), marks={"p50": 7.0, "p99": None}, x_label="ms"),
        time_columns([], [("delivered", "#0a0")], y_label="empty"),
    ],
    ids=["stacked-bar", "time-columns", "histogram", "no-data"],
)
def test_charts_are_well_formed_svg(chart):
    assert ET.fromstring(chart).tag == "{http://www.w3.org/2000/svg}svg"


def report(missing: int, waiting: int) -> Report:
    ids = [f"dev-{i}:20261127T080000Z:20261127T090000Z" for i in range(10)]
    written = Counter(ids[: 10 - missing])
    reconciliation = reconcile(ids, ParquetInventory({"k": len(written)}, written), [], [])
    batches = [Batch(DAY + i * timedelta(seconds=7), 10, 10, 10, 10, 0, 0, 0.5) for i in range(20)]
    return Report(
        start=DAY + 8 * HOUR,
        end=DAY + 9 * HOUR,
        window_seconds=3600,
        windows=1,
        devices=[i.split(":")[0] for i in ids],
        devices_source="given",
        reconciliation=reconciliation,
        queue={"waiting": waiting, "in_flight": 0, "delayed": 0},
        activity=Activity("logs", batches, [float(v) for v in range(1, 200)], 20),
        stack="fanout",
        endpoint="http://127.0.0.1:5000",
    )


@pytest.mark.parametrize(
    ("missing", "waiting", "verdict"),
    [
        (0, 0, "All 10 descriptors accounted for."),
        (2, 0, "2 of 10 descriptors missing."),
        (2, 5, "2 of 10 descriptors not landed yet; the request queue still holds 5 messages."),
    ],
    ids=["balanced", "missing", "in-progress"],
)
def test_page_leads_with_its_verdict_and_draws_three_charts(missing, waiting, verdict):
    html = page.render(report(missing, waiting))

    assert verdict in html
    assert html.count("<svg") == 3
    assert ("Missing descriptors" in html) == bool(missing)


# where the stack is, and errors


def test_flags_win_over_variables_and_variables_over_defaults():
    target = Target.from_sources(
        {"bucket": "from-flag", "stack": None},
        {"FANOUT_BUCKET": "from-env", "FANOUT_STACK": "prod", "FANOUT_QUEUE_URL": "q"},
    )
    assert (target.bucket, target.stack, target.queue_url) == ("from-flag", "prod", "q")
    assert Target.from_sources({}, {}).stack == "fanout"


def test_confirmation_is_asked_or_refused_without_a_terminal():
    assert confirm("Move?", assume_yes=True)
    assert confirm("Move?", assume_yes=False, ask=lambda _: "y")
    assert not confirm("Move?", assume_yes=False, ask=lambda _: "")
    with pytest.raises(CliError, match="Rerun with --yes"):
        confirm("Move?", assume_yes=False)  # pytest's stdin is no terminal


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "cannot reach http://127.0.0.1:1: is the stack running there? (hint)",
        ),
        (NoCredentialsError(), "no AWS credentials: configure a profile"),
        (
            ClientError(
                {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}},
                "GetQueueAttributes",
            ),
            "GetQueueAttributes: the queue does not exist: gone (hint)",
        ),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2"),
            "ListObjectsV2: not allowed with these credentials (AccessDenied): no",
        ),
        (CliError("say which devices"), "say which devices"),
    ],
    ids=["refused", "no-credentials", "no-queue", "denied", "ours"],
)
def test_errors_are_explained_in_one_line(error, line):
    assert explain(error, "hint").startswith(line)


def test_backfill_needs_a_range():
    with pytest.raises(SystemExit):
        parser().parse_args(["backfill", "--devices", "d"])
