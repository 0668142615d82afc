"""Delivering payload events without ever holding up a request.

`PayloadDelivery.submit` takes a record and returns at once: the record joins its sink's queue, bounded
(`queue_size` records), and a record that finds the queue full is dropped and counted. Writers on the
same event loop as the requests (no thread: a thread would take the interpreter from the loop at each
of its steps) take the queued records in batches, render them and hand each batch to the sink in one
go: `connections` writers per HTTP sink, each with a kept-alive connection carrying a batch of up to
`batch_size` events pipelined; one for a file, so that its lines stay whole and in order. A writer that
finds less than a batch waits `linger` for more: under load the batches grow, so the cost of an event
(its share of the writes, reads and wake-ups, at both ends) falls as the rate rises.

A record whose send may work later is retried with back-off (doubling from `backoff_initial` to
`backoff_max`; while a sink backs off, none of its writers sends); after `max_attempts` it is dropped and
counted. A sink that refuses an event (a 4xx) is not asked again for it. So a slow or absent sink costs a
request nothing: its queue fills, records are dropped, and the counters (`stats()`, and /metrics) say
how many.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from modelplane.telemetry.payload_events import PayloadRecord
from modelplane.telemetry.payload_sinks import FileSink, Refused, RetryLater, Sink, display_url, open_sink

logger = logging.getLogger("modelplane.payload_log")

# Why records are dropped, as the metrics label them.
QUEUE_FULL, UNDELIVERABLE, REFUSED, SHUTDOWN = "queue_full", "undeliverable", "refused", "shutdown"
DROP_REASONS = (QUEUE_FULL, UNDELIVERABLE, REFUSED, SHUTDOWN)


@dataclass(frozen=True)
class DeliverySettings:
    queue_size: int = 10_000
    connections: int = 2  # writers (each with its connection) per HTTP sink
    batch_size: int = 128  # events one writer sends at once (pipelined)
    batch_bytes: int = 1024 * 1024  # ... and their bodies' size, past the first event
    linger: float = 0.002  # seconds a writer waits for a fuller batch before it sends what it has
    max_attempts: int = 5
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    send_timeout: float = 10.0  # for one batch
    file_max_bytes: int = 64 * 1024 * 1024
    file_backups: int = 3
    flush_timeout: float = 5.0  # how long stopping waits for the queues to empty


@dataclass
class SinkStats:
    """The counters of one sink (plain integers: read from any thread)."""

    sink: str
    sent: int = 0
    retries: int = 0
    queued: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


class _SinkQueue:
    def __init__(self, url: str) -> None:
        self.url = url
        self.records: deque[tuple[PayloadRecord, int]] = deque()  # with the attempts made
        self.stats = SinkStats(display_url(url))
        self.sink: Sink | None = None
        self.ready = asyncio.Event()  # records to send
        self.filled = asyncio.Event()  # as many as a lingering writer waits for (`fill_target`)
        self.fill_target = 0
        self.resume_at = 0.0  # the loop's clock: while backing off, nothing is sent before this
        self.backoff = 0.0
        self.writers: list[asyncio.Task] = []
        self.sending = 0  # records taken from the queue and not yet delivered or dropped

    @property
    def idle(self) -> bool:
        return not self.records and not self.sending

    def drop(self, reason: str, count: int = 1) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + count


class PayloadDelivery:
    """Queues and delivers payload records on the running event loop: `start()` on it before `submit`,
    `await stop()` at the end. `submit` is called on the loop's thread; `stats` from any thread."""

    def __init__(self, settings: DeliverySettings | None = None) -> None:
        self.settings = settings or DeliverySettings()
        self._fill_target = min(self.settings.batch_size, max(1, self.settings.queue_size // 2))
        self._queues: dict[str, _SinkQueue] = {}
        self._accepting = False
        self._closed = False

    def start(self) -> None:
        self._accepting = True

    async def stop(self) -> None:
        """Stops taking records, gives the queues up to `flush_timeout` to empty, then drops the rest."""
        self._accepting = False
        queues = list(self._queues.values())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.flush_timeout
        while not all(queue.idle for queue in queues) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._closed = True
        for queue in queues:
            queue.ready.set()
            for task in queue.writers:
                task.cancel()
            await asyncio.gather(*queue.writers, return_exceptions=True)
            if queue.records:
                queue.drop(SHUTDOWN, len(queue.records))
                queue.records.clear()
                queue.stats.queued = 0
            if queue.sink is not None:
                with contextlib.suppress(OSError):
                    queue.sink.close()

    def submit(self, record: PayloadRecord) -> None:
        """Queues one record for its sink. Never blocks; a full queue drops the record."""
        if not self._accepting:
            return
        url = record.spec.url
        queue = self._queues.get(url) or self._new_queue(url)
        records = queue.records
        if len(records) >= self.settings.queue_size:
            queue.drop(QUEUE_FULL)
            return
        records.append((record, 0))
        queued = queue.stats.queued = len(records)
        if not queue.ready.is_set():
            queue.ready.set()
        if queue.fill_target and queued >= queue.fill_target:
            queue.filled.set()

    def stats(self) -> list[SinkStats]:
        return [queue.stats for queue in list(self._queues.values())]

    # ---- the writers ----

    def _new_queue(self, url: str) -> _SinkQueue:
        settings = self.settings
        queue = _SinkQueue(url)
        queue.backoff = settings.backoff_initial
        try:
            queue.sink = open_sink(
                url,
                timeout=settings.send_timeout,
                file_max_bytes=settings.file_max_bytes,
                file_backups=settings.file_backups,
            )
        except ValueError as exc:  # admission refuses such URLs; a route built by hand may not have
            logger.error("payload log sink %s cannot be used: %s", queue.stats.sink, exc)
        count = 1 if isinstance(queue.sink, FileSink) else settings.connections
        queue.writers = [asyncio.get_running_loop().create_task(self._write(queue)) for _ in range(count)]
        self._queues = {**self._queues, url: queue}  # a new dict: `stats` may be iterating the old one
        return queue

    async def _write(self, queue: _SinkQueue) -> None:
        loop = asyncio.get_running_loop()
        records = queue.records
        while not self._closed:
            if not records:
                queue.ready.clear()
                await queue.ready.wait()
                continue
            wait = queue.resume_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if len(records) < self._fill_target and self.settings.linger > 0:
                await self._linger(queue)  # a fuller batch costs less per event
                if not records:
                    continue
            batch = self._take(records)
            queue.stats.queued = len(records)
            queue.sending += len(batch)
            try:
                await self._deliver(queue, batch)
            finally:
                queue.sending -= len(batch)

    async def _linger(self, queue: _SinkQueue) -> None:
        """Waits up to `linger` for a fuller batch: until the queue holds a batch, or half its room."""
        queue.filled.clear()
        queue.fill_target = self._fill_target
        try:
            async with asyncio.timeout(self.settings.linger):
                await queue.filled.wait()
        except TimeoutError:
            pass
        finally:
            queue.fill_target = 0

    def _take(self, records: deque[tuple[PayloadRecord, int]]) -> list[tuple[PayloadRecord, int]]:
        settings = self.settings
        batch = [records.popleft()]
        size = len(batch[0][0].data)
        while records and len(batch) < settings.batch_size:
            size += len(records[0][0].data)
            if size > settings.batch_bytes:
                break
            batch.append(records.popleft())
        return batch

    async def _deliver(self, queue: _SinkQueue, batch: list[tuple[PayloadRecord, int]]) -> None:
        stats = queue.stats
        if queue.sink is None:
            queue.drop(REFUSED, len(batch))
            return
        try:
            outcomes = await queue.sink.send([record for record, _ in batch], time.time_ns())
        except Exception as exc:  # noqa: BLE001 - a bug here must not stop the delivery of the others
            logger.exception("payload events to %s failed", stats.sink)
            outcomes = [exc] * len(batch)
        retry: list[tuple[PayloadRecord, int]] = []
        lost: dict[str, Exception] = {}
        for (record, attempts), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                stats.sent += 1
            elif isinstance(outcome, RetryLater) and attempts + 1 < self.settings.max_attempts:
                retry.append((record, attempts + 1))
            else:
                reason = REFUSED if isinstance(outcome, Refused) else UNDELIVERABLE
                queue.drop(reason)
                lost[reason] = outcome
        if lost:
            for reason, example in lost.items():
                logger.warning("payload events to %s dropped (%s): %s", stats.sink, reason, example)
        if retry:
            stats.retries += len(retry)
            queue.records.extendleft(reversed(retry))  # first again, in their order
            stats.queued = len(queue.records)
        if retry or UNDELIVERABLE in lost:
            self._back_off(queue)
        else:
            queue.backoff = self.settings.backoff_initial

    def _back_off(self, queue: _SinkQueue) -> None:
        loop = asyncio.get_running_loop()
        queue.resume_at = max(queue.resume_at, loop.time() + queue.backoff)
        queue.backoff = min(queue.backoff * 2, self.settings.backoff_max)
