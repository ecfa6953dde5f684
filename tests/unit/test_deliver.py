"""Firehose delivery: limits respected, only failed entries retried, oversize refused."""

from __future__ import annotations

from botocore.exceptions import ClientError

from consumer.deliver import (
    CALL_THREADS,
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    chunks,
    deliver,
    stream_for,
)
from tests.fakes import FakeFirehose


def test_chunks_respect_500_records_per_call():
    records = [(str(i), b"x\n") for i in range(1201)]
    assert [len(batch) for batch in chunks(records)] == [500, 500, 201]


def test_chunks_respect_4_mib_per_call():
    big = b"x" * (900 * 1024)
    batches = chunks([(str(i), big) for i in range(10)])
    assert all(sum(len(d) for _, d in batch) <= MAX_BATCH_BYTES for batch in batches)
    assert sum(len(batch) for batch in batches) == 10


def test_deliver_retries_only_the_entries_firehose_refused():
    # given Firehose that refuses every record ending in 7 on its first call only
    firehose = FakeFirehose(
        lambda data, call: (
            "ServiceUnavailableException" if call == 1 and data.endswith(b"7\n") else None
        )
    )
    records = [(f"d{i}", f"{i}\n".encode()) for i in range(30)]
    report = deliver(records, streams=["s"], firehose=firehose, backoff_base=0)
    # then each record lands once; the retry carried only the refused ones
    assert sorted(firehose.records) == sorted(data for _, data in records)
    assert firehose.calls == [30, 3]
    assert report.retried == 3
    assert not report.failed


def test_deliver_reports_what_still_fails_after_the_last_attempt():
    firehose = FakeFirehose(lambda data, call: "ThrottlingException" if data == b"bad\n" else None)
    report = deliver(
        [("good", b"good\n"), ("bad", b"bad\n")],
        streams=["s"],
        firehose=firehose,
        attempts=3,
        backoff_base=0,
    )
    assert report.delivered == ["good"]
    assert list(report.failed) == ["bad"]
    assert "ThrottlingException" in report.failed["bad"]
    assert firehose.calls == [2, 1, 1]


def test_deliver_retries_a_call_that_fails_as_a_whole():
    error = ClientError(
        {"Error": {"Code": "ServiceUnavailableException", "Message": "down"}}, "PutRecordBatch"
    )
    firehose = FakeFirehose(fail_calls=lambda call: error if call == 1 else None)
    report = deliver(
        [("a", b"a\n"), ("b", b"b\n")], streams=["s"], firehose=firehose, backoff_base=0
    )
    assert sorted(report.delivered) == ["a", "b"]
    assert firehose.records == [b"a\n", b"b\n"]


def test_deliver_never_sends_a_record_over_firehoses_record_limit():
    firehose = FakeFirehose()
    huge = b"x" * (MAX_RECORD_BYTES + 1)
    report = deliver([("huge", huge), ("ok", b"ok\n")], streams=["s"], firehose=firehose)
    assert report.too_large == {"huge": MAX_RECORD_BYTES + 1}
    assert firehose.records == [b"ok\n"]


def test_records_spread_over_streams_by_device_and_each_device_stays_in_one():
    # given three streams and records of 60 devices, two windows each
    firehose = FakeFirehose()
    records = [
        (f"dev-{d:05d}:2026112{w}T000000Z:2026112{w}T010000Z", f"{d}:{w}\n".encode())
        for d in range(60)
        for w in (1, 2)
    ]
    # when delivered
    report = deliver(records, streams=["a", "b", "c"], firehose=firehose)
    # then every record landed once, every stream carried some, and no device was split
    assert sorted(report.delivered) == sorted(key for key, _ in records)
    assert set(firehose.streams) == {"a", "b", "c"}
    devices_by_stream = {
        stream: {data.split(b":")[0] for data in datas}
        for stream, datas in firehose.streams.items()
    }
    assert sum(len(devices) for devices in devices_by_stream.values()) == 60
    assert stream_for(records[0][0], ["a", "b", "c"]) == stream_for(records[1][0], ["a", "b", "c"])


def test_a_batch_needing_many_calls_makes_them_side_by_side():
    # given 20 streams and records for each, and calls that take 50 ms
    firehose = FakeFirehose(round_trip=0.05)
    streams = [f"s{i}" for i in range(20)]
    records = [(f"dev-{i:04d}:2026-11-27T00:00:00Z", f"{i}\n".encode()) for i in range(400)]
    report = deliver(records, streams=streams, firehose=firehose)
    # then every record lands once, in its stream, from calls up to CALL_THREADS at once
    assert sorted(report.delivered) == sorted(key for key, _ in records)
    assert sorted(firehose.records) == sorted(data for _, data in records)
    for key, data in records:
        assert data in firehose.streams[stream_for(key, streams)]
    assert len(firehose.calls) == len(firehose.streams)
    assert 1 < firehose.most_in_flight <= CALL_THREADS


def test_nothing_to_deliver_makes_no_call():
    firehose = FakeFirehose()
    report = deliver([], streams=["s"], firehose=firehose)
    assert (report.delivered, report.failed, firehose.calls) == ([], {}, [])
