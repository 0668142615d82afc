"""How much CPU time a replica has used: its process and every process under it, read from /proc.

Each process counts with its user and system time and that of the children it has reaped, so the
total does not fall back when a worker under the replica ends. The autoscaler divides the growth of
this total over a sync period by the period's length: the cores the replica used. Linux only:
elsewhere `tree_cpu_seconds` answers None.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelplane.local.replicas.memory_watch import descendants

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used by process `pid` and its descendants; None when `pid` is gone or unreadable."""
    own = _cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(_cpu_seconds(child) or 0.0 for child in descendants(pid))


def _cpu_seconds(pid: int) -> float | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command's closing parenthesis (the command may hold spaces): state is the first,
    # then utime, stime, cutime and cstime are the 12th to the 15th.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return sum(int(value) for value in fields[11:15]) / _TICKS
    except (ValueError, IndexError):
        return None
