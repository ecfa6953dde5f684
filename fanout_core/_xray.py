"""The X-Ray SDK's Lambda context, made safe for concurrent asyncio tasks.

Imported only by :func:`fanout_core.tracing.setup_tracing`, so code that never traces
never loads the SDK.

The SDK's own ``LambdaContext`` keeps the open subsegments in a thread-local stack: the
concurrent fetches of one event loop share a thread, so each would nest under whichever
fetch opened last, and close the wrong one. Here the stack lives in a context variable,
which every asyncio task (and every ``asyncio.run``) copies when it starts: a fetch's
subsegments stay its own, and all of them hang under the invocation's subsegment. Threads
start with an empty stack, so their calls hang under the invocation's segment itself.

The segment is Lambda's: a facade built from ``_X_AMZN_TRACE_ID``, rebuilt when the
header changes (a new invocation); the SDK never sends it, Lambda records it.

:class:`DaemonEmitter` sends as the SDK's emitter does, over a connected socket, so a
daemon that is not there shows (the kernel refuses the next datagram); tracing then pauses
instead of building documents nobody receives, and tries again a few seconds later.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.lambda_launcher import LAMBDA_TRACE_HEADER_KEY, LambdaContext
from aws_xray_sdk.core.models.dummy_entities import DummySegment
from aws_xray_sdk.core.models.facade_segment import FacadeSegment
from aws_xray_sdk.core.models.trace_header import TraceHeader

_ENTITIES: ContextVar[tuple[Any, ...]] = ContextVar("fanout_xray_entities", default=())


class TaskLocalLambdaContext(LambdaContext):  # type: ignore[misc]
    """Lambda's facade segment, with open subsegments local to each task and thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._header: str | None = None
        self._segment: Any = None

    def segment(self) -> Any:
        """The invocation's facade segment (a dummy when the header is missing or partial)."""
        header = os.environ.get(LAMBDA_TRACE_HEADER_KEY)
        segment = self._segment
        if segment is not None and header == self._header:
            return segment
        with self._lock:
            if self._segment is None or header != self._header:
                self._segment = _facade(header)
                self._header = header
            return self._segment

    def _stack(self, segment: Any) -> tuple[Any, ...]:
        stack = _ENTITIES.get()
        # Subsegments left open by an earlier invocation belong to another segment.
        return stack if stack and stack[0].parent_segment is segment else ()

    def get_trace_entity(self) -> Any:
        segment = self.segment()
        stack = self._stack(segment)
        return stack[-1] if stack else segment

    def put_subsegment(self, subsegment: Any) -> None:
        segment = self.segment()
        if getattr(segment, "initializing", False) or isinstance(segment, DummySegment):
            return  # no trace to join (init phase, or no header): drop it quietly
        stack = self._stack(segment)
        (stack[-1] if stack else segment).add_subsegment(subsegment)
        _ENTITIES.set((*stack, subsegment))

    def end_subsegment(self, end_time: float | None = None) -> bool:
        stack = self._stack(self.segment())
        if not stack:
            return False
        stack[-1].close(end_time)
        _ENTITIES.set(stack[:-1])
        return True

    def set_trace_entity(self, trace_entity: Any) -> None:
        if self._is_subsegment(trace_entity):
            _ENTITIES.set((trace_entity,))
        else:
            _ENTITIES.set(())

    def clear_trace_entities(self) -> None:
        _ENTITIES.set(())

    def open_entities(self) -> tuple[Any, ...]:
        """The calling task's open subsegments, outermost first."""
        return self._stack(self.segment())

    def restore(self, entities: tuple[Any, ...]) -> None:
        """Make ``entities`` the calling task's open subsegments again."""
        _ENTITIES.set(entities)


def _facade(header: str | None) -> Any:
    trace_header = TraceHeader.from_header_str(header)
    if not trace_header.root or not trace_header.parent or trace_header.sampled is None:
        segment = DummySegment()
    else:
        sampled = trace_header.sampled == 1 and global_sdk_config.sdk_enabled()
        segment = FacadeSegment(
            name="facade",
            traceid=trace_header.root,
            entityid=trace_header.parent,
            sampled=sampled,
        )
    segment.save_origin_trace_header(trace_header)
    return segment


class DaemonEmitter(UDPEmitter):  # type: ignore[misc]
    """The SDK's UDP emitter on a connected socket: it notices when no daemon listens.

    A refused datagram (the kernel's answer for a local port nobody listens on) makes
    :attr:`listening` false for :data:`PAUSE_SECONDS`; datagrams are never retried and
    sending never logs an error.
    """

    PAUSE_SECONDS = 10.0

    def __init__(self) -> None:
        self._paused_until = 0.0
        self._sock: socket.socket | None = None
        super().__init__()

    def set_daemon_address(self, address: str | None) -> None:
        super().set_daemon_address(address)
        if self._sock is not None:
            self._sock.close()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.connect((self.ip, self.port))

    @property
    def listening(self) -> bool:
        """Whether a daemon may be listening (none refused a datagram lately)."""
        return time.monotonic() >= self._paused_until

    def _send_data(self, data: str) -> None:
        assert self._sock is not None
        try:
            self._sock.send(data.encode("utf-8"))
        except ConnectionRefusedError:
            self._paused_until = time.monotonic() + self.PAUSE_SECONDS
        except BlockingIOError:
            pass  # the socket's buffer is full: drop this one, as UDP would
