"""Batching: the items of requests that come close together go through one model call.

A `Batcher` gathers the items of concurrent requests (the instances of V1 requests, the rows of V2
requests) until `max_batch_size` items are waiting or `max_latency` seconds have passed since the
oldest of them arrived, calls `run_batch` once on all of them, and hands each request its own results.
Unlike coalescing (modelplane/runtimes/coalesce.py) it waits for company: a lone request waits the
whole `max_latency` before it runs.

`run_batch` sees each request's items together and in order, the requests in the order they came.
A request with more items than `max_batch_size` is never split: it runs on its own, at once. Batches
are not serialised: one may start while another is still running.

A batch that fails is run again request by request, so that one bad request fails alone. A failure
of the batch as a whole (`WholeBatchError`: `run_batch` answered with the wrong number of results, or
ran past `timeout`) fails every request of the batch, and none is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WholeBatchError(Exception):
    """A failure that belongs to a batch, not to one of its requests: each request gets it, none is
    retried alone. `run_batch` may raise it too (for example when the answer cannot be split back)."""


class BatchTimeout(WholeBatchError, TimeoutError):
    """`run_batch` took longer than the batcher's timeout."""


class _Waiting(Generic[T, R]):
    """One request: its items, and the future its results are delivered to."""

    __slots__ = ("items", "future")

    def __init__(self, items: list[T], future: asyncio.Future[list[R]]):
        self.items = items
        self.future = future


class Batcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[list[R]]],
        max_batch_size: int,
        max_latency: float,
        *,
        timeout: float | None = None,
    ):
        """`max_latency` and `timeout` are in seconds; `timeout` (none by default) limits each call of
        `run_batch`."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_latency < 0:
            raise ValueError(f"max_latency must not be negative, got {max_latency}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency
        self.timeout = timeout
        self._waiting: list[_Waiting[T, R]] = []
        self._waiting_items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()
        # Items per call of run_batch -> number of such calls, retries included (for tests and tuning).
        self.calls_by_size: dict[int, int] = {}

    @property
    def waiting_items(self) -> int:
        """How many items wait for their batch to start."""
        return self._waiting_items

    @property
    def waiting_requests(self) -> int:
        """How many requests wait for their batch to start."""
        return len(self._waiting)

    async def submit(self, items: list[T]) -> list[R]:
        """The results for one request's items, in order, computed in a batch with other requests' items."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        request: _Waiting[T, R] = _Waiting(list(items), loop.create_future())
        size = len(request.items)
        if size > self.max_batch_size:
            self._start([request])
        else:
            if self._waiting_items + size > self.max_batch_size:
                self.flush()  # this request does not fit with those waiting: they go now
            self._waiting.append(request)
            self._waiting_items += size
            if self._waiting_items >= self.max_batch_size:
                self.flush()
            elif self._timer is None:
                self._timer = loop.call_later(self.max_latency, self.flush)
        try:
            return await request.future
        except asyncio.CancelledError:
            self._forget(request)
            raise

    def flush(self) -> None:
        """Start the waiting batch now, however small (for a server that stops, say)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting, self._waiting_items = self._waiting, [], 0
        batch = [request for request in batch if not request.future.done()]
        if batch:
            self._start(batch)

    def _forget(self, request: _Waiting[T, R]) -> None:
        """A request whose caller left before its batch started no longer waits in it."""
        if request in self._waiting:
            self._waiting.remove(request)
            self._waiting_items -= len(request.items)
            if not self._waiting and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _start(self, batch: list[_Waiting[T, R]]) -> None:
        task = asyncio.ensure_future(self._run(batch))
        self._running.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Waiting[T, R]]) -> None:
        if len(batch) == 1:
            await self._run_alone(batch[0])
            return
        try:
            results = await self._call([item for request in batch for item in request.items])
        except WholeBatchError as exc:
            for request in batch:
                _fail(request.future, exc)
            return
        except Exception:  # noqa: BLE001 - one request may be at fault: find out which, each alone
            await asyncio.gather(
                *(self._run_alone(request) for request in batch if not request.future.done())
            )
            return
        except BaseException:
            for request in batch:
                request.future.cancel()
            raise
        start = 0
        for request in batch:
            end = start + len(request.items)
            if not request.future.done():
                request.future.set_result(results[start:end])
            start = end

    async def _run_alone(self, request: _Waiting[T, R]) -> None:
        try:
            results = await self._call(request.items)
        except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
            _fail(request.future, exc)
        except BaseException:
            request.future.cancel()
            raise
        else:
            if not request.future.done():
                request.future.set_result(results)

    async def _call(self, items: list[T]) -> list[R]:
        size = len(items)
        self.calls_by_size[size] = self.calls_by_size.get(size, 0) + 1
        if self.timeout is None:
            results = await self._run_batch(items)
        else:
            limit = asyncio.timeout(self.timeout)
            try:
                async with limit:
                    results = await self._run_batch(items)
            except TimeoutError:
                if not limit.expired():  # run_batch's own TimeoutError
                    raise
                raise BatchTimeout(
                    f"a batch of {_items(size)} did not finish within the timeout of {self.timeout:g} s"
                ) from None
        if not isinstance(results, list | tuple) or len(results) != size:
            got = f"{len(results)} results" if isinstance(results, list | tuple) else type(results).__name__
            raise WholeBatchError(f"a batch of {_items(size)} was answered with {got}")
        return list(results)


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
