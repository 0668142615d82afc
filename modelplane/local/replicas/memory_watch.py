"""How much memory a replica holds: its process and every process under it, read from /proc.

The replica's own process counts with its resident set (RSS), pages shared with the zygote it was
forked from included: that is what it would hold had it started on its own, as it would in a
container. A process under it (a worker it forked, a program its shell started) counts with the
pages it alone holds (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup), so that pages it
shares with the replica's process are not counted twice.

`enforce_memory_limit` measures a replica every `interval` seconds while it runs: a spike shorter than
that can go unseen. Linux only: elsewhere `tree_memory` answers None, and limits are not enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

_PROC = Path("/proc")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Process(Protocol):
    pid: int
    returncode: int | None

    async def wait(self) -> int: ...


async def enforce_memory_limit(process: Process, limit: int, interval: float) -> str | None:
    """Returns once `process` ends; kills its process group first (SIGKILL, as the kernel's OOM killer
    would) if it and the processes under it hold more than `limit` bytes, and then says why."""
    while process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), interval)
        used = tree_memory(process.pid) if process.returncode is None else None
        if used is not None and used > limit:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return f"it held {_mebibytes(used)}, over its memory limit of {_mebibytes(limit)}"
    return None


def can_measure() -> bool:
    return (_PROC / "self" / "statm").exists()


def tree_memory(pid: int) -> int | None:
    """Bytes held by process `pid` and its descendants; None when `pid` is gone or unreadable."""
    own = _resident(pid)
    if own is None:
        return None
    return own + sum(_private(child) or 0 for child in descendants(pid))


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (children first, then theirs), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    waiting = [pid]
    while waiting:
        parent = waiting.pop()
        for child in _children(parent):
            if child not in found:
                found.append(child)
                waiting.append(child)
    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return children


def _resident(pid: int) -> int | None:
    try:
        fields = (_PROC / str(pid) / "statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE_SIZE


def _private(pid: int) -> int | None:
    try:
        text = (_PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return _resident(pid)  # a kernel without smaps_rollup: count it whole
    total = 0
    for line in text.splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1]) * 1024
    return total


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.0f}Mi"
