"""Where a benchmark's CPU goes: CPU seconds of the local stack's processes, by role.

Linux only: a process's user and system time are read from ``/proc/<pid>/stat`` (its own
and that of children it has reaped), this process's own from ``getrusage``. Processes
that exit are counted too: the Lambda runner reaps its workers, so their time reaches
this process's ``RUSAGE_CHILDREN``, and the part of it spent before a window began (last
read from ``/proc``) is taken off.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: The role of this process itself, which runs the Lambda runner's pollers.
OWN = "runner"
#: The role of processes that exited within a window (the runner's workers).
EXITED = "exited_workers"


def process_seconds(pid: int) -> float | None:
    """CPU seconds (user and system) used by ``pid`` and the children it reaped, or
    ``None`` when no process has that id (a zombie still has one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: fields counted
    # from the state (field 3) on; utime, stime, cutime, cstime are fields 14 to 17.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(ticks) for ticks in fields[11:15]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far, read at one moment."""

    at: float
    #: pid -> (role, seconds)
    processes: Mapping[int, tuple[str, float]]
    own: float
    reaped: float


def sample(roles: Mapping[str, list[int]]) -> CpuSample:
    """Read the CPU seconds of every process in ``roles`` (role -> pids), and of this one."""
    at = time.monotonic()
    # Reaped children first: a worker reaped between the two reads is then missed for an
    # instant rather than counted twice.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = {}
    for role, pids in roles.items():
        for pid in pids:
            seconds = process_seconds(pid)
            if seconds is not None:
                processes[pid] = (role, seconds)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(
        at,
        processes,
        own.ru_utime + own.ru_stime,
        children.ru_utime + children.ru_stime,
    )


def spent(start: CpuSample, end: CpuSample) -> dict[str, float]:
    """CPU seconds each role used from ``start`` to ``end``, with this process's as
    :data:`OWN` and those of processes that exited in between as :data:`EXITED`."""
    used: dict[str, float] = {}
    for pid, (role, seconds) in end.processes.items():
        before = start.processes.get(pid, (role, 0.0))[1]
        used[role] = used.get(role, 0.0) + seconds - before
    gone = sum(seconds for pid, (_, seconds) in start.processes.items() if pid not in end.processes)
    used[OWN] = end.own - start.own
    used[EXITED] = max(0.0, end.reaped - start.reaped - gone)
    return used


class CpuMeter:
    """Samples the CPU seconds of ``roles()`` every ``interval`` seconds while entered, so
    a window can end at a moment known only afterwards (the last invocation's end)."""

    def __init__(
        self, roles: Callable[[], Mapping[str, list[int]]], interval: float = 0.05
    ) -> None:
        self.roles = roles
        self.interval = interval
        self.samples: list[CpuSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def sample(self) -> CpuSample:
        """Read now (and keep the reading)."""
        reading = sample(self.roles())
        self.samples.append(reading)
        return reading

    def first_after(self, moment: float) -> CpuSample:
        """The first reading taken at or after ``moment`` (monotonic), else one taken now."""
        return next((s for s in self.samples if s.at >= moment), None) or self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> CpuMeter:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
