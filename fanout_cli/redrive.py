"""``fanout redrive``: move the dead-letter queue's messages back to the request queue.

Ten at a time: receive from the dead-letter queue, send to the request queue, and only
then delete what the request queue accepted, so a message is never lost: a failure
between the send and the delete leaves a copy in both queues, which the lake stores
once (descriptor ids are deterministic). Messages SQS refuses stay in the dead-letter
queue and are counted.

(SQS's own StartMessageMoveTask does this server-side on AWS, but emulators lack it; this
works the same everywhere and counts exactly.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from fanout_cli.progress import Progress
from fanout_cli.status import queue_depths
from fanout_cli.target import CliError, Stack

#: Long enough to send and delete a batch; a message we fail on returns after it.
VISIBILITY_SECONDS = 60


@dataclass
class Moved:
    """What a redrive did."""

    source: str
    destination: str
    found: int
    moved: int = 0
    refused: int = 0
    #: Moved, but the delete from the dead-letter queue failed: a copy is left there.
    copies_left: int = 0


def confirm(question: str, *, assume_yes: bool, ask: Callable[[str], str] | None = None) -> bool:
    """Ask ``question`` on the terminal; without one, refuse unless ``assume_yes``.

    Raises:
        CliError: No terminal to ask on and no ``--yes``.
    """
    if assume_yes:
        return True
    if ask is None:
        if not sys.stdin.isatty():
            raise CliError(f"{question} Not asked: no terminal. Rerun with --yes to confirm")
        ask = input
    return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def redrive(
    stack: Stack,
    *,
    limit: int | None = None,
    assume_yes: bool = False,
    ask: Callable[[str], str] | None = None,
    progress: bool = True,
    err: TextIO | None = None,
) -> Moved:
    """Move up to ``limit`` dead-lettered messages back to the request queue, once confirmed."""
    source, destination = stack.dead_letter_queue_url, stack.queue_url
    depth = queue_depths(stack, source)
    waiting = depth["waiting"] if limit is None else min(limit, depth["waiting"])
    result = Moved(source, destination, found=depth["waiting"])
    if not waiting:
        return result
    if not confirm(
        f"Move {waiting:,} messages from {source} to {destination}?",
        assume_yes=assume_yes,
        ask=ask,
    ):
        raise CliError("nothing moved: not confirmed")
    sqs = stack.client("sqs")
    with Progress(waiting, "moved", stream=err or sys.stderr, enabled=progress) as bar:
        while limit is None or result.moved + result.refused < limit:
            wanted = 10 if limit is None else min(10, limit - result.moved - result.refused)
            messages = sqs.receive_message(
                QueueUrl=source,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            moved, refused, copies_left = _move(sqs, messages, source, destination)
            result.moved += moved
            result.refused += refused
            result.copies_left += copies_left
            bar.advance(moved + refused)
    return result


def _move(
    sqs: Any, messages: list[dict[str, Any]], source: str, destination: str
) -> tuple[int, int, int]:
    """Send ``messages`` to ``destination``, then delete from ``source`` those it accepted;
    return how many moved, were refused, and moved but could not be deleted."""
    entries = []
    for index, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = message["MessageAttributes"]
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=destination, Entries=entries)
    accepted = [messages[int(done["Id"])] for done in sent.get("Successful", [])]
    copies_left = 0
    if accepted:
        deleted = sqs.delete_message_batch(
            QueueUrl=source,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(accepted)
            ],
        )
        copies_left = len(deleted.get("Failed", []))
    return len(accepted), len(messages) - len(accepted), copies_left


def print_moved(result: Moved, out: TextIO) -> None:
    if not result.found:
        out.write(f"nothing to redrive: {result.source} is empty\n")
        return
    out.write(f"moved {result.moved:,} messages from {result.source} to {result.destination}\n")
    if result.refused:
        out.write(
            f"{result.refused:,} were refused by the request queue and stay in the "
            "dead-letter queue (they return after a minute): run fanout redrive again\n"
        )
    if result.copies_left:
        out.write(
            f"{result.copies_left:,} were moved but could not be deleted from the dead-letter "
            "queue: their copies there are harmless (the lake stores a descriptor once)\n"
        )
