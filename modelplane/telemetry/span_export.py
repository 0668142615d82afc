"""Sending finished spans to where the OTEL_* variables say, without holding up the requests they trace.

Over OTLP/HTTP with protobuf (the default), each span is encoded when it ends (`otlp_wire`) and joins a
bounded queue; what is queued is joined into export requests and POSTed, as the SDK's batch span
processor does and with its variables (`OTEL_BSP_SCHEDULE_DELAY`, `..._MAX_QUEUE_SIZE`,
`..._MAX_EXPORT_BATCH_SIZE`, `..._EXPORT_TIMEOUT`): at once when a batch is full, else every schedule
delay. It all happens on the process's event loop (the one tracing is configured on), between requests,
over a kept-alive connection, and a span that ends on another thread, or on a worker thread's own loop
(an explainer's queries to its predictor), is handed to that loop: an exporter's thread would cost more
than its work, taking the interpreter from the loop at each of its steps and waiting for it back.

Any other exporter (OTLP over gRPC, the console, a credential provider's session) is the SDK's own,
behind its batch span processor; it is given a `ReadableSpan` of each span, at the SDK's cost.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import logging
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.protocol.http_client import HttpConnection, TransportError, message, parse_target
from modelplane.telemetry import otlp_wire
from modelplane.telemetry.spans import API_KINDS, Span

logger = logging.getLogger("modelplane.tracing")

_LOCAL_PARENT, _REMOTE_PARENT = otlp_wire.HAS_IS_REMOTE, otlp_wire.HAS_IS_REMOTE | otlp_wire.IS_REMOTE
_RETRYABLE = frozenset({429, 502, 503, 504})  # OTLP/HTTP: the collector may take the batch later
_WARN_EVERY = 30.0  # seconds between two warnings of lost spans
KEPT_BODY = 200  # bytes of the collector's answer kept, to say why it refused a batch


@dataclass(frozen=True)
class BatchSettings:
    schedule_delay: float = 5.0  # seconds
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    export_timeout: float = 30.0  # seconds, for one batch, its retries included

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BatchSettings:
        def number(name: str, default: float) -> float:
            raw = environ.get(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                logger.warning("%s=%r is not a number: using %g", name, raw, default)
                return default
            return value if value > 0 else default

        queue = int(number("OTEL_BSP_MAX_QUEUE_SIZE", cls.max_queue_size))
        return cls(
            schedule_delay=number("OTEL_BSP_SCHEDULE_DELAY", cls.schedule_delay * 1000) / 1000,
            max_queue_size=queue,
            max_export_batch_size=min(
                int(number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", cls.max_export_batch_size)), queue
            ),
            export_timeout=number("OTEL_BSP_EXPORT_TIMEOUT", cls.export_timeout * 1000) / 1000,
        )


class ExportFailed(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class OtlpHttpTransport:
    """POSTs export requests to an OTLP/HTTP endpoint, configured as the SDK's OTLP/HTTP exporter reads
    the OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout, compression, certificates): on the
    event loop over a kept-alive connection (`send`), or, when there is no loop to send on (the last
    spans of a process that stops), blocking (`send_blocking`)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        def setting(name: str, default: str = "") -> str:
            return (
                environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
                or environ.get(f"OTEL_EXPORTER_OTLP_{name}")
                or default
            )

        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not endpoint:
            base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
            endpoint = f"{base.removesuffix('/')}/v1/traces"
        self.endpoint = endpoint
        self._target = parse_target(endpoint)
        from opentelemetry.util.re import parse_env_headers

        headers = {"Content-Type": "application/x-protobuf", "User-Agent": "modelplane"}
        headers.update(parse_env_headers(setting("HEADERS"), liberal=True))
        try:
            self._timeout = float(setting("TIMEOUT", "10"))
        except ValueError:
            self._timeout = 10.0
        self._compression = setting("COMPRESSION", "none").strip().lower()
        if self._compression in ("gzip", "deflate"):
            headers["Content-Encoding"] = self._compression
        self._headers = headers
        self._header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode(
            "latin-1"
        )
        self._ssl: ssl.SSLContext | None = None
        if self._target.endpoint.tls:
            self._ssl = ssl.create_default_context(cafile=setting("CERTIFICATE") or None)
            certificate = setting("CLIENT_CERTIFICATE")
            if certificate:
                self._ssl.load_cert_chain(certificate, setting("CLIENT_KEY") or None)
        self._connection: HttpConnection | None = None

    async def send(self, payload: bytes) -> None:
        """One export request, on the running loop; raises ExportFailed."""
        request = message(self._target, self._header_lines, self._compress(payload))
        for attempt in (
            1,
            2,
        ):  # a kept-alive connection the collector closed meanwhile: once more, on a new one
            connection = self._connection
            reused = connection is not None and connection.usable
            try:
                async with asyncio.timeout(self._timeout):
                    if not reused:
                        connection = self._connection = await HttpConnection.open(
                            self._target.endpoint, self._ssl
                        )
                    (answer,) = await connection.send([request], KEPT_BODY)
            except TimeoutError:
                self.close()
                raise ExportFailed(f"no answer within {self._timeout:g}s", retryable=True) from None
            except TransportError as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise ExportFailed(str(exc), retryable=True) from None
            except BaseException:
                self.close()
                raise
            self._check(answer.status, answer.body)
            return

    def send_blocking(self, payload: bytes) -> None:
        """One export request, on this thread; raises ExportFailed."""
        endpoint = self._target.endpoint
        if endpoint.tls:
            connection = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=self._timeout, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=self._timeout)
        try:
            path = self._target.head.split(b" ", 2)[1].decode("latin-1")
            connection.request("POST", path, body=self._compress(payload), headers=self._headers)
            response = connection.getresponse()
            self._check(response.status, response.read(200))
        except (OSError, http.client.HTTPException) as exc:
            raise ExportFailed(f"{type(exc).__name__}: {exc}", retryable=True) from None
        finally:
            connection.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _compress(self, payload: bytes) -> bytes:
        if self._compression == "gzip":
            return gzip.compress(payload, compresslevel=6)
        if self._compression == "deflate":
            return zlib.compress(payload)
        return payload

    @staticmethod
    def _check(status: int, body: bytes) -> None:
        if status >= 300:
            raise ExportFailed(f"the collector answered {status}: {body!r}", status in _RETRYABLE)


class SpanBatcher:
    """Queues encoded spans and sends them in batches, on its event loop: a batch as soon as it is full,
    what is queued every schedule delay. One export request is in flight at a time; spans that find the
    queue full are dropped (and counted).

    Its loop is the one it is made on (the server's); made with none running, the first one a span ends
    on, and the next one after that loop closes. Spans ended elsewhere are handed to it, so that its
    timer, set where it runs, sends them: a worker thread's own loop runs only while its caller waits."""

    def __init__(
        self, transport: OtlpHttpTransport, resource: bytes, scope: bytes, settings: BatchSettings
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.dropped = 0
        self._max_queued, self._batch_size = settings.max_queue_size, settings.max_export_batch_size
        self._resource = resource
        self._scope = scope
        self._queue: list[bytes] = []
        self._loop = _running_loop()
        self._thread = threading.get_ident() if self._loop is not None else None  # the loop's
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._all_due = False  # the schedule delay passed while a batch was in flight
        self._stopping = False  # no more retries: what fails now is dropped
        self._stopped = False  # no more spans
        self._warned_at = -_WARN_EVERY

    def add(self, encoded: bytes) -> None:
        """Queues a span; starts its sending when it fills a batch or begins the queue."""
        if _thread_id() != self._thread:
            self._hand_over(encoded)
            return
        queue = self._queue
        queued = len(queue)
        if queued >= self._max_queued or self._stopped:
            self.dropped += 1
            self._warn(f"the queue of {self._max_queued} spans is full")
            return
        queue.append(encoded)
        if queued == 0 or queued + 1 == self._batch_size:
            self._kick()

    def shutdown(self) -> None:
        """Sends what is queued (within the export timeout) and stops. From another thread than the
        loop's, the loop sends it; on the loop's thread, or with no loop running, this thread does."""
        self._stopping = True
        loop = self._loop
        if loop is not None and loop.is_running() and _running_loop() is not loop:
            drained = asyncio.run_coroutine_threadsafe(self._drain(), loop)
            try:
                drained.result(self.settings.export_timeout)
            except Exception as exc:  # noqa: BLE001 - stopping goes on: what is left is sent below
                logger.warning("spans not sent on the event loop at exit: %s", exc)
        self._stopped = True
        while self._queue:
            batch = self._take()
            try:
                self.transport.send_blocking(otlp_wire.export_request(self._resource, self._scope, batch))
            except ExportFailed as exc:
                self.dropped += len(batch)
                self._warn(f"{self.transport.endpoint}: {exc}")

    def _hand_over(self, encoded: bytes) -> None:
        """A span that ended on another thread than the loop's."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self.add, encoded)
                return
            except RuntimeError:  # it closed meanwhile
                pass
        if self._adopt():
            self.add(encoded)
            self._kick()  # for the spans that waited for a loop
        elif len(self._queue) >= self._max_queued or self._stopped:
            self.dropped += 1
            self._warn(f"the queue of {self._max_queued} spans is full")
        else:  # no loop runs to send it on now: it waits for the next batch, or for shutdown
            self._queue.append(encoded)

    def _adopt(self) -> bool:
        """Whether this thread's running loop is the batcher's, or now becomes it, in place of none or
        of a closed one (whose timer and task never run again)."""
        loop = _running_loop()
        if loop is self._loop:
            return loop is not None
        if loop is None or (self._loop is not None and not self._loop.is_closed()):
            return False
        self._loop, self._thread, self._timer, self._task = loop, _thread_id(), None, None
        return True

    # -- on the loop ---------------------------------------------------------------------------

    def _kick(self) -> None:
        if not self._adopt():
            return  # the spans wait for the loop's next batch, or for shutdown
        if self._task is not None:
            return  # it looks at the queue again when its batch is sent
        if len(self._queue) >= self._batch_size:
            self._task = self._loop.create_task(self._send_batches())
        elif self._timer is None:
            self._timer = self._loop.call_later(self.settings.schedule_delay, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._stopped:
            return
        self._all_due = True
        if self._task is None and self._queue:
            self._task = self._loop.create_task(self._send_batches())

    async def _send_batches(self) -> None:
        queue = self._queue
        try:
            while len(queue) >= self._batch_size or (self._all_due and queue):
                await self._send(self._take())
            self._all_due = False
        finally:
            self._task = None
            if queue and self._timer is None and not self._stopped:
                self._timer = self._loop.call_later(self.settings.schedule_delay, self._due)

    async def _drain(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._all_due = True
        while self._task is not None:
            await asyncio.shield(self._task)
        while self._queue:
            await self._send(self._take())
        self.transport.close()

    def _take(self) -> list[bytes]:
        batch = self._queue[: self._batch_size]
        del self._queue[: self._batch_size]
        return batch

    async def _send(self, batch: list[bytes]) -> None:
        payload = otlp_wire.export_request(self._resource, self._scope, batch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.export_timeout
        backoff = 1.0
        while True:
            try:
                await self.transport.send(payload)
                return
            except ExportFailed as exc:
                if not exc.retryable or self._stopping or loop.time() + backoff > deadline:
                    self.dropped += len(batch)
                    self._warn(f"{self.transport.endpoint}: {exc}")
                    return
            await asyncio.sleep(backoff)
            backoff *= 2

    def _warn(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning("spans lost (%d so far): %s", self.dropped, reason)


_running_loop = asyncio._get_running_loop  # None off a loop, where asyncio.get_running_loop raises
_thread_id = threading.get_ident  # a tenth of the cost of asking for the running loop, on each span


class OtlpHttpExport:
    """The fast path: spans encoded as they end, batched to an OTLP/HTTP endpoint."""

    def __init__(
        self, environ: Mapping[str, str], resource: Mapping[str, Any], scope: tuple[str, str]
    ) -> None:
        transport = OtlpHttpTransport(environ)
        self.destination = transport.endpoint
        self._batcher = SpanBatcher(
            transport,
            otlp_wire.resource_field(resource),
            otlp_wire.scope_field(*scope),
            BatchSettings.from_environ(environ),
        )

    def finish(self, span: Span) -> None:
        flags = _REMOTE_PARENT if span.remote_parent else _LOCAL_PARENT
        self._batcher.add(otlp_wire.span_field(span, flags))

    def shutdown(self) -> None:
        self._batcher.shutdown()


class SdkExport:
    """Any other exporter: the SDK's, behind its batch span processor (`processor`, which the tracer
    provider owns and shuts down), given a `ReadableSpan` of each span."""

    def __init__(self, processor: Any, resource: Any, scope: tuple[str, str]) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self._processor = processor
        self._resource = resource
        self._scope = InstrumentationScope(*scope)

    def finish(self, span: Span) -> None:
        self._processor.on_end(readable(span, self._resource, self._scope))

    def shutdown(self) -> None:
        pass  # the provider shuts its processor down


def readable(span: Span, resource: Any, scope: Any) -> Any:
    """The SDK's `ReadableSpan` of a span, for the SDK's exporters."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

    parent = None
    if span.parent_id:
        parent = SpanContext(
            int.from_bytes(span.trace_id, "big"),
            int.from_bytes(span.parent_id, "big"),
            is_remote=span.remote_parent,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    code = (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR)[span.status]
    return ReadableSpan(
        span.name,
        context=span.get_span_context(),
        parent=parent,
        resource=resource,
        attributes=span.attributes,
        events=[Event(name, attributes, when) for name, when, attributes in span.events],
        kind=API_KINDS[span.kind],
        status=Status(code, span.status_message or None if code is StatusCode.ERROR else None),
        start_time=span.start,
        end_time=span.end_time,
        instrumentation_scope=scope,
    )
