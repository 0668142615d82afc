"""The running event loop, remembered by what asks for it on every request.

On Python 3.11, `asyncio.get_running_loop()` (and what calls it: `asyncio.ensure_future`,
`asyncio.Future()`, `asyncio.create_task`) asks the kernel for the process id each time, to notice a
fork; a request's hot path need not pay a system call for that.
"""

from __future__ import annotations

import asyncio


class RunningLoop:
    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        """The loop running now: the one remembered while it runs, else asked for (and remembered)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop
