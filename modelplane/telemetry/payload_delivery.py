"""Delivering payload events without ever holding up a request.

`PayloadDelivery.submit` takes a record from any thread and returns at once: the record joins its
sink's queue, bounded (`queue_size` records), and a record that finds the queue full is dropped and
counted. A thread of its own, with its own event loop, turns records into events and sends them,
`workers` at a time per sink. A send that may work later is retried with back-off (doubling from
`backoff_initial` to `backoff_max`; while a sink backs off, none of its workers sends); after
`max_attempts` the record is dropped and counted. A sink that refuses an event (a 4xx) is not asked
again for it. So a slow or absent sink costs a request nothing: its queue fills, records are dropped,
and the counters (`stats()`, and /metrics) say how many.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
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
    workers: int = 4
    max_attempts: int = 5
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    send_timeout: float = 10.0
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
    def __init__(self, url: str, settings: DeliverySettings) -> None:
        self.url = url
        self.settings = settings
        self.records: deque[tuple[PayloadRecord, int]] = deque()  # with the attempts made
        self.stats = SinkStats(display_url(url))
        self.sink: Sink | None = None
        self.ready = asyncio.Event()
        self.wake_pending = False
        self.resume_at = 0.0  # the loop's clock: while backing off, nothing is sent before this
        self.backoff = settings.backoff_initial
        self.workers: list[asyncio.Task] = []
        self.broken: str | None = None  # why the sink cannot be opened at all
        self.sending = 0  # records taken from the queue and not yet delivered or dropped

    @property
    def idle(self) -> bool:
        return not self.records and not self.sending

    def drop(self, reason: str, count: int = 1) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + count


class PayloadDelivery:
    """Queues and delivers payload records; `start()` before `submit`, `stop()` at the end."""

    def __init__(self, settings: DeliverySettings | None = None) -> None:
        self.settings = settings or DeliverySettings()
        self._queues: dict[str, _SinkQueue] = {}
        self._lock = threading.Lock()  # creating a sink's queue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._accepting = False
        self._closed = False

    def start(self) -> None:
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="modelplane-payload-log", daemon=True
        )
        self._thread.start()
        started.wait()
        self._accepting = True

    def stop(self) -> None:
        """Stops taking records, gives the queues up to `flush_timeout` to empty, then drops the rest."""
        self._accepting = False
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def submit(self, record: PayloadRecord) -> None:
        """Queues one record for its sink. Never blocks; a full queue drops the record."""
        if not self._accepting:
            return
        url = record.spec.url
        queue = self._queues.get(url) or self._new_queue(url)
        if len(queue.records) >= self.settings.queue_size:
            queue.drop(QUEUE_FULL)
            return
        queue.records.append((record, 0))
        queue.stats.queued = len(queue.records)
        if not queue.wake_pending:
            queue.wake_pending = True
            self._loop.call_soon_threadsafe(self._wake, queue)

    def stats(self) -> list[SinkStats]:
        return [queue.stats for queue in list(self._queues.values())]

    # ---- the delivery thread ----

    def _new_queue(self, url: str) -> _SinkQueue:
        with self._lock:
            queue = self._queues.get(url)
            if queue is None:
                queue = _SinkQueue(url, self.settings)
                self._loop.call_soon_threadsafe(self._open, queue)
                self._queues = {**self._queues, url: queue}
        return queue

    def _run(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
        finally:
            loop.close()

    async def _serve(self, started: threading.Event) -> None:
        self._stopping = asyncio.Event()
        started.set()
        await self._stopping.wait()
        await self._flush()

    def _open(self, queue: _SinkQueue) -> None:
        settings = self.settings
        try:
            queue.sink = open_sink(
                queue.url,
                timeout=settings.send_timeout,
                file_max_bytes=settings.file_max_bytes,
                file_backups=settings.file_backups,
            )
        except ValueError as exc:  # admission refuses such URLs; a route built by hand may not have
            queue.broken = str(exc)
            logger.error("payload log sink %s cannot be used: %s", queue.stats.sink, exc)
        # A file takes one event at a time, so that its lines are written whole and in order.
        count = 1 if isinstance(queue.sink, FileSink) else settings.workers
        queue.workers = [asyncio.create_task(self._work(queue)) for _ in range(count)]

    def _wake(self, queue: _SinkQueue) -> None:
        queue.wake_pending = False
        queue.ready.set()

    async def _work(self, queue: _SinkQueue) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not queue.records:
                queue.ready.clear()
                if not queue.records:
                    await queue.ready.wait()
                continue
            wait = queue.resume_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            record, attempts = queue.records.popleft()
            queue.stats.queued = len(queue.records)
            queue.sending += 1
            try:
                await self._deliver(queue, record, attempts)
            finally:
                queue.sending -= 1

    async def _deliver(self, queue: _SinkQueue, record: PayloadRecord, attempts: int) -> None:
        if queue.sink is None:
            queue.drop(REFUSED)
            return
        event = record.to_event(time.time())
        try:
            await queue.sink.send(event)
        except RetryLater as exc:
            attempts += 1
            if attempts >= self.settings.max_attempts:
                queue.drop(UNDELIVERABLE)
                logger.warning("payload event %s to %s dropped: %s", event.id, queue.stats.sink, exc)
            else:
                queue.stats.retries += 1
                queue.records.appendleft((record, attempts))
                queue.stats.queued = len(queue.records)
            self._back_off(queue)
        except Refused as exc:
            queue.drop(REFUSED)
            logger.warning("payload event %s refused by %s: %s", event.id, queue.stats.sink, exc)
        except Exception:  # noqa: BLE001 - a bug here must not stop the delivery of the others
            queue.drop(UNDELIVERABLE)
            logger.exception("payload event %s to %s failed", event.id, queue.stats.sink)
        else:
            queue.stats.sent += 1
            queue.backoff = self.settings.backoff_initial

    def _back_off(self, queue: _SinkQueue) -> None:
        loop = asyncio.get_running_loop()
        queue.resume_at = max(queue.resume_at, loop.time() + queue.backoff)
        queue.backoff = min(queue.backoff * 2, self.settings.backoff_max)

    async def _flush(self) -> None:
        queues = list(self._queues.values())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.flush_timeout
        while not all(queue.idle for queue in queues) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        # Workers stop at their next turn (should a cancellation be lost in a timeout's race) or now.
        self._closed = True
        for queue in queues:
            queue.ready.set()
            for task in queue.workers:
                task.cancel()
            await asyncio.gather(*queue.workers, return_exceptions=True)
            if queue.records:
                queue.drop(SHUTDOWN, len(queue.records))
                queue.records.clear()
                queue.stats.queued = 0
            if queue.sink is not None:
                with contextlib.suppress(OSError):
                    queue.sink.close()
