"""Fakes of the AWS clients the functions use: real behaviour, in memory, no sockets.

Each records what it was asked and can be told to refuse some entries, the way SQS and
Firehose report partial failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class FakeSqs:
    """SendMessageBatch into a list; ``refuse(entry) -> error code or None`` per entry."""

    def __init__(self, refuse: Callable[[dict[str, Any], int], str | None] | None = None) -> None:
        self.messages: list[str] = []
        self.calls = 0
        self._refuse = refuse or (lambda entry, call: None)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert 1 <= len(Entries) <= 10, "SQS takes 1 to 10 entries per call"
        self.calls += 1
        successful, failed = [], []
        for entry in Entries:
            code = self._refuse(entry, self.calls)
            if code is None:
                self.messages.append(entry["MessageBody"])
                successful.append({"Id": entry["Id"], "MessageId": f"m-{len(self.messages)}"})
            else:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "Code": code,
                        "SenderFault": code == "InvalidMessageContents",
                        "Message": code,
                    }
                )
        return {"Successful": successful, "Failed": failed}


class FakeFirehose:
    """PutRecordBatch into a list; ``refuse(data, call) -> error code or None`` per record.

    Thread-safe, as boto3 clients are; each call waits ``round_trip`` seconds first, and
    ``most_in_flight`` counts the calls that were waiting at once.
    """

    def __init__(
        self,
        refuse: Callable[[bytes, int], str | None] | None = None,
        fail_calls: Callable[[int], Exception | None] | None = None,
        round_trip: float = 0.0,
    ) -> None:
        self.records: list[bytes] = []
        self.calls: list[int] = []
        self.streams: dict[str, list[bytes]] = {}
        self.most_in_flight = 0
        self._in_flight = 0
        self._round_trip = round_trip
        self._lock = threading.Lock()
        self._refuse = refuse or (lambda data, call: None)
        self._fail_calls = fail_calls or (lambda call: None)

    def put_record_batch(
        self, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> dict[str, Any]:
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            time.sleep(self._round_trip)
            with self._lock:
                return self._put(DeliveryStreamName, Records)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _put(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        assert len(Records) <= 500
        assert sum(len(r["Data"]) for r in Records) <= 4 * 1024 * 1024
        self.calls.append(len(Records))
        failure = self._fail_calls(len(self.calls))
        if failure is not None:
            raise failure
        responses = []
        for record in Records:
            code = self._refuse(record["Data"], len(self.calls))
            if code is None:
                self.records.append(record["Data"])
                self.streams.setdefault(DeliveryStreamName, []).append(record["Data"])
                responses.append({"RecordId": str(len(self.records))})
            else:
                responses.append({"ErrorCode": code, "ErrorMessage": f"{code} (fake)"})
        failed = sum("ErrorCode" in r for r in responses)
        return {"FailedPutCount": failed, "RequestResponses": responses}
