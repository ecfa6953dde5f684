"""moto's server, with three hot spots of its SQS fixed so large queues stay usable.

    python -m localstack.emulator -H 127.0.0.1 -p 5000

moto 5.2 builds every queue attribute (three of them walk every message) whenever any one
is read: for each message it sends or receives. With 2,000 messages waiting one
ReceiveMessage took about a second, and a 100,000-descriptor backfill fell to 84
messages a second. The fixes keep the behaviour (same values, same retention check, same
clock) and make those reads cheap:

* ``Queue.attributes`` computes an attribute only when it is read;
* the retention check reads the queue's own retention period;
* the SQS models' clock is ``time.time()``, the value the datetime arithmetic computes.

And a race: moto's server runs requests on threads, and its SQS queues check and change
their messages without a lock. Two ReceiveMessage calls at once can both take a message,
and two DeleteMessage calls at once rebuild the message list from the same copy, so one
delete is lost and its message comes back after the visibility timeout (with two
consumers, one batch in twenty). Receiving (the scan, not the long-poll wait), deleting
and changing visibility now hold the queue's own lock, the one moto takes to add; and a
delete stops at the message it deletes instead of rebuilding the list.

And one in its HTTP front: for every request moto lists its own package folder (about 160
entries, each checked with ``isdir``), twice, while holding the lock every request needs, so
concurrent requests queue behind directory listings. The list never changes while the
server runs; it is read once.

Everything else is moto's own ``moto.server.main``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from moto import backends as moto_backends
from moto import server
from moto.core.utils import camelcase_to_underscores
from moto.sqs import exceptions as sqs_exceptions
from moto.sqs import models as sqs_models


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else float(sqs_models_unix_time(dt))


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


class _LazyAttributes(Mapping[str, Any]):
    """A queue's attributes, each computed when read, with the names and values moto's own
    ``Queue.attributes`` property builds eagerly."""

    def __init__(self, queue: Any) -> None:
        names = [
            *queue.BASE_ATTRIBUTES,
            *(queue.FIFO_ATTRIBUTES if queue.fifo_queue else ()),
            *(queue.KMS_ATTRIBUTES if queue.kms_master_key_id else ()),
            *(["Policy"] if queue.policy else ()),
            *(["RedrivePolicy"] if queue.redrive_policy else ()),
        ]
        self._queue = queue
        self._names = list(dict.fromkeys(names))

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name == "Policy" and self._queue.policy:
            return self._queue.policy
        if name == "RedrivePolicy" and self._queue.redrive_policy:
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return bool(retention_period + message.sent_timestamp / 1000 > time.time())


sqs_models_unix_time = sqs_models.unix_time  # type: ignore[attr-defined]
_moto_receive = sqs_models.SQSBackend.receive_message
_moto_change_visibility = sqs_models.SQSBackend.change_message_visibility


def _receive(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *rest: Any) -> Any:
    """moto's receive (``rest``: the visibility timeout and the attribute names, as moto
    passes them), its scan under the queue's lock and its long-poll wait outside it."""
    queue = self.get_queue(queue_name)
    deadline = time.time() + wait_seconds_timeout
    while True:
        with queue._messages_lock:
            found = _moto_receive(self, queue_name, count, 0, *rest)
        left = deadline - time.time()
        if found or left <= 0:
            return found
        queue.wait_for_messages(min(1.0, left))


def _delete(self: Any, receipt_handle: str) -> None:
    """moto's delete, under the queue's lock, and stopping at the message it deletes:
    moto walks every message twice, building a list of handles for each, so deleting a
    queue of n messages cost n^2 (4,000 messages: most of the emulator's time)."""
    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            return  # deleting twice is fine, as in moto and SQS
        for index, message in enumerate(self._messages):
            if (
                message.receipt_handle == receipt_handle
                or receipt_handle in message._old_receipt_handles
            ):
                del self._messages[index]
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                return
        raise sqs_exceptions.ReceiptHandleIsInvalid()


def _change_visibility(
    self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    with self.get_queue(queue_name)._messages_lock:
        _moto_change_visibility(self, queue_name, receipt_handle, visibility_timeout)


def patch_server() -> None:
    """Read moto's list of service modules once instead of on every request (idempotent)."""
    if not isinstance(moto_backends.list_of_moto_modules, functools._lru_cache_wrapper):
        modules = tuple(moto_backends.list_of_moto_modules())
        moto_backends.list_of_moto_modules = functools.cache(lambda: modules)


def patch_sqs() -> None:
    """Apply the fixes to moto's SQS models (idempotent)."""
    sqs_models.unix_time = _unix_time  # type: ignore[attr-defined]
    sqs_models.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]
    sqs_models.Queue.attributes = property(_LazyAttributes)  # type: ignore[assignment]
    sqs_models.SQSBackend.receive_message = _receive  # type: ignore[method-assign,assignment]
    sqs_models.Queue.delete_message = _delete  # type: ignore[method-assign]
    sqs_models.SQSBackend.change_message_visibility = _change_visibility  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    patch_server()
    patch_sqs()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
