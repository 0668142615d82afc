"""Timeouts applied by a periodic sweep of a server's connections, a slice of them per turn of the loop.

A sweep that finds a thousand connections expired at once (a slowloris attack opens its connections
together, so they time out together) would answer and close them all in one callback: tens of
milliseconds in which no request moves. Visited a slice at a time, with a turn of the event loop between
slices, the connections' closing is spread out and the requests meanwhile go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

SLICE = 64  # connections visited per turn of the event loop

T = TypeVar("T")


async def visit_in_slices(items: Sequence[T], visit: Callable[..., None], *args: Any) -> None:
    """Calls `visit(item, *args)` on each item, yielding to the event loop after every `SLICE` of them.
    An item may have changed while the sweep yielded: `visit` looks at it as it is now."""
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)
        for item in items[start : start + SLICE]:
            visit(item, *args)
