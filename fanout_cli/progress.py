"""A progress bar on stderr: count, rate and time left, safe to update from many threads.

On a terminal it redraws one line at most ten times a second; elsewhere (CI, a pipe, a
log file) it prints a plain line every ``quiet_interval`` seconds, and always a last one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def render(done: int, total: int, elapsed: float, label: str) -> str:
    """One progress line: ``label 4,200/10,000 [#####....] 42% 1,830/s 3s left``."""
    fraction = done / total if total else 1.0
    filled = round(BAR_WIDTH * fraction)
    rate = done / elapsed if elapsed > 0 else 0.0
    if done >= total:
        left = f"done in {format_seconds(elapsed)}"
    else:
        left = f"{format_seconds((total - done) / rate) if rate else '-'} left"
    return (
        f"{label} {done:,}/{total:,} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
        f"{fraction:4.0%} {rate:,.0f}/s {left}"
    )


class Progress:
    """Counts work done and shows it; :meth:`advance` may be called from any thread."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        quiet_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = self._stream.isatty()
        self._interval = 0.1 if self._tty else quiet_interval
        self._clock = clock
        self._started = clock()
        self._shown = self._started
        self._lock = threading.Lock()
        self._closed = False

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def advance(self, count: int) -> None:
        """Count ``count`` more done; redraw if the last drawing is old enough."""
        with self._lock:
            self.done += count
            now = self._clock()
            if self._enabled and now - self._shown >= self._interval:
                self._shown = now
                self._draw()

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._enabled:
                self._draw()
                if self._tty:
                    self._stream.write("\n")
                self._stream.flush()

    def _draw(self) -> None:
        line = render(self.done, self.total, self.elapsed, self.label)
        if self._tty:
            self._stream.write("\r\x1b[K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
