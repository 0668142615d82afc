"""Delivering payload events without ever holding up a request.

`PayloadDelivery.submit` takes a record and returns at once: the record joins its sink's queue, bounded
(`queue_size` records), and a record that finds the queue full is dropped and counted. Writers on the
same event loop as the requests (no thread: a thread would take the interpreter from the loop at each
of its steps) take the queued records in batches, render them and hand each batch to the sink in one
go: `connections` writers per HTTP sink, each with a kept-alive connection carrying a batch of up to
`batch_size` events pipelined; one for a file, so that its lines stay whole and in order. A writer that
finds less than a batch waits `linger` for more: under load the batches grow, so the cost of an event
(its share of the writes, reads and wake-ups, at both ends) falls as the rate rises. A bucket
(payload_blob.py) batches as its logger says: `batchSize` records an object, waiting `batchInterval`
for a batch to fill, or, without one, until it is full; stopping writes what is left.

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

from modelplane.telemetry.payload_blob import BlobSink
from modelplane.telemetry.payload_events import PayloadLogSpec, PayloadRecord
from modelplane.telemetry.payload_sinks import HttpSink, Refused, RetryLater, Sink, open_sink, sink_name

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
    # 0.1, 0.2, 0.4 ... 5, 5 s apart: about 21 s in all, enough for a receiver's restart.
    max_attempts: int = 10
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    send_timeout: float = 10.0  # for each answer of a batch (a receiver's), for a batch (a bucket's)
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
    def __init__(self, spec: PayloadLogSpec) -> None:
        self.records: deque[tuple[PayloadRecord, int]] = deque()  # with the attempts made
        self.stats = SinkStats(sink_name(spec))
        self.sink: Sink | None = None
        self.batch_size = 0  # records a send takes at most
        self.batch_bytes: int | None = None  # ... and their bodies' size, past the first record
        self.full = 0  # records that make a batch worth sending at once
        self.linger: float | None = 0.0  # how long a writer waits for a full batch; None: until it is
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
        self._queues: dict[object, _SinkQueue] = {}
        self._accepting = False
        self._flushing = False  # stopping: writers send what they have at once
        self._closed = False

    def start(self) -> None:
        self._accepting = True

    async def stop(self) -> None:
        """Stops taking records, gives the queues up to `flush_timeout` to empty, then drops the rest."""
        self._accepting = False
        self._flushing = True
        queues = list(self._queues.values())
        for queue in queues:
            queue.filled.set()  # a writer waiting for a fuller batch sends it now
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
        spec = record.spec
        queue = self._queues.get(spec.sink_key) or self._new_queue(spec)
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

    def _new_queue(self, spec: PayloadLogSpec) -> _SinkQueue:
        settings = self.settings
        queue = _SinkQueue(spec)
        queue.backoff = settings.backoff_initial
        queue.batch_size, queue.batch_bytes, queue.linger = (
            settings.batch_size,
            settings.batch_bytes,
            settings.linger,
        )
        try:
            queue.sink = open_sink(
                spec,
                timeout=settings.send_timeout,
                file_max_bytes=settings.file_max_bytes,
                file_backups=settings.file_backups,
            )
        except ValueError as exc:  # admission refuses such URLs; a route built by hand may not have
            logger.error("payload log sink %s cannot be used: %s", queue.stats.sink, exc)
        count = settings.connections if isinstance(queue.sink, HttpSink) else 1
        if isinstance(queue.sink, BlobSink):  # an object a batch, as the logger says
            queue.batch_size, queue.batch_bytes = queue.sink.batch_records, None
            queue.linger = queue.sink.linger or (None if queue.batch_size > 1 else 0.0)
        queue.full = min(queue.batch_size, max(1, settings.queue_size // 2))
        queue.writers = [asyncio.get_running_loop().create_task(self._write(queue)) for _ in range(count)]
        self._queues = {
            **self._queues,
            spec.sink_key: queue,
        }  # a new dict: `stats` may be iterating the old one
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
            if len(records) < queue.full and queue.linger != 0 and not self._flushing:
                await self._linger(queue)  # a fuller batch costs less per event
                if not records:
                    continue
            batch = self._take(queue)
            queue.stats.queued = len(records)
            queue.sending += len(batch)
            try:
                await self._deliver(queue, batch)
            finally:
                queue.sending -= len(batch)

    async def _linger(self, queue: _SinkQueue) -> None:
        """Waits up to the queue's `linger` (None: as long as it takes) for a fuller batch: until the
        queue holds a batch, or half its room."""
        queue.filled.clear()
        queue.fill_target = queue.full
        try:
            async with asyncio.timeout(queue.linger):
                await queue.filled.wait()
        except TimeoutError:
            pass
        finally:
            queue.fill_target = 0

    @staticmethod
    def _take(queue: _SinkQueue) -> list[tuple[PayloadRecord, int]]:
        records, limit, most_bytes = queue.records, queue.batch_size, queue.batch_bytes
        batch = [records.popleft()]
        size = len(batch[0][0].data)
        while records and len(batch) < limit:
            size += len(records[0][0].data)
            if most_bytes is not None and size > most_bytes:
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
        if outcomes.count(None) == len(outcomes):  # all delivered: the usual case
            stats.sent += len(outcomes)
            queue.backoff = self.settings.backoff_initial
            return
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
