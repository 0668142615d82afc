"""Coalescing: requests that are already waiting share one call into the model's library.

A tabular library call (sklearn's `predict`, say) costs mostly fixed overhead: validating the input,
dispatching, allocating. One call over 16 rows costs little more than one call over 1 row. So when
several requests reach the same model in one turn of the event loop, their rows are stacked, predicted
in one call, and the answer split back. Nothing waits for company: a lone request runs at once, alone,
exactly as before. Only inputs of the same dtype and row shape are stacked; a call that fails is
retried request by request, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from modelplane.protocol.running_loop import RunningLoop

Compute = Callable[[Any], Awaitable[Any]]


class Coalescer:
    def __init__(self, compute: Compute, max_rows: int):
        self._compute = compute
        self._max_rows = max_rows
        self._waiting: list[tuple[np.ndarray, asyncio.Future]] = []
        self._flush_scheduled = False
        self._loop = RunningLoop()
        # Batch sizes seen, for tests and tuning: rows -> number of calls.
        self.calls_by_rows: dict[int, int] = {}

    async def submit(self, data: Any) -> Any:
        if not _stackable(data) or data.shape[0] >= self._max_rows:
            return await self._compute(data)
        loop = self._loop.get()
        future = loop.create_future()
        self._waiting.append((data, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # Two hops: the requests whose bytes arrived in this same turn of the loop get to join first.
            loop.call_soon(loop.call_soon, self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        waiting, self._waiting = self._waiting, []
        for batch in _batches(waiting, self._max_rows):
            self._loop.get().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        rows = sum(data.shape[0] for data, _ in batch)
        self.calls_by_rows[rows] = self.calls_by_rows.get(rows, 0) + 1
        if len(batch) == 1:
            data, future = batch[0]
            await _settle(future, self._compute(data))
            return
        try:
            result = await self._compute(np.concatenate([data for data, _ in batch]))
            parts = _split(result, [data.shape[0] for data, _ in batch])
        except Exception:  # noqa: BLE001 - one request may be at fault: find out which, alone
            parts = None
        if parts is None:
            for data, future in batch:
                await _settle(future, self._compute(data))
            return
        for (_, future), part in zip(batch, parts, strict=True):
            if not future.done():
                future.set_result(part)


def _stackable(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.ndim >= 1 and data.dtype.kind in "biuf"


def _batches(waiting: list, max_rows: int) -> list[list]:
    """Group waiting requests by dtype and row shape, in arrival order, each group under max_rows."""
    groups: dict[tuple, list[list]] = {}
    for item in waiting:
        data = item[0]
        key = (data.dtype, data.shape[1:])
        batches = groups.setdefault(key, [[]])
        current = batches[-1]
        if current and sum(d.shape[0] for d, _ in current) + data.shape[0] > max_rows:
            current = []
            batches.append(current)
        current.append(item)
    return [batch for batches in groups.values() for batch in batches]


def _split(result: Any, counts: list[int]) -> list[Any] | None:
    """The result's rows per request, or None when the result is not one row per input row."""
    if isinstance(result, list | tuple):
        result = np.asarray(result)
    if not isinstance(result, np.ndarray) or result.ndim == 0 or result.shape[0] != sum(counts):
        return None
    return np.split(result, np.cumsum(counts)[:-1])


async def _settle(future: asyncio.Future, work: Awaitable[Any]) -> None:
    try:
        result = await work
    except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
        if not future.done():
            future.set_exception(exc)
    else:
        if not future.done():
            future.set_result(result)
