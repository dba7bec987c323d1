"""Where a bench run's CPU goes, process by process: the workers, the embedded broker, the embedded
PostgreSQL server (every backend) and the bench itself, read from ``/proc`` before and after the
measured window. ``hera bench`` divides each by the events it accounted for, so a run says how many
milliseconds of CPU one event costs in each process, which is what bounds throughput on a small
machine where all of them share the cores.

Linux only (``/proc``); elsewhere every figure is ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (its exited children excluded)."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (PostgreSQL's backends and auxiliary processes)."""
    found = []
    for task in _PROC.glob(f"{pid}/task/*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return found


@dataclass
class CpuBudget:
    """CPU seconds per named group of processes between ``start`` and ``stop``."""

    groups: dict[str, list[int]] = field(default_factory=dict)
    expand: set[str] = field(default_factory=set)  # groups whose children are counted (re-read at stop)
    _before: dict[int, float] = field(default_factory=dict)
    _after: dict[str, dict[int, float]] = field(default_factory=dict)  # per group, read at stop

    def add(self, name: str, pids: Iterable[int | None], *, with_children: bool = False) -> None:
        self.groups[name] = [p for p in pids if p]
        if with_children:
            self.expand.add(name)

    def _pids(self) -> dict[str, list[int]]:
        return {name: pids + [c for p in pids for c in children(p)] if name in self.expand else list(pids)
                for name, pids in self.groups.items()}

    def start(self) -> None:
        self._before = {p: s for ps in self._pids().values() for p in ps if (s := cpu_seconds(p)) is not None}

    def stop(self) -> None:
        self._after = {name: {p: s for p in pids if (s := cpu_seconds(p)) is not None}
                       for name, pids in self._pids().items()}

    def seconds(self) -> dict[str, float | None]:
        """CPU seconds per group over the window (as the processes were at ``stop``); a process born
        inside it counts from zero (a PostgreSQL backend the workers opened), one that ended inside
        it is lost (not counted)."""
        return {name: round(sum(s - self._before.get(p, 0.0) for p, s in after.items()), 3) if after else None
                for name, after in self._after.items()}

    def per_event_ms(self, events: int) -> dict[str, float | None]:
        return {name: (round(s * 1000 / events, 3) if s is not None and events else None)
                for name, s in self.seconds().items()}
