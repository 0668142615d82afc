"""The gateway's HTTP/1.1 reverse proxy, at the asyncio protocol level.

`ClientConnection` parses requests from one client connection with httptools; each request becomes
an `Exchange`, which takes a replica slot, borrows a pooled upstream connection and streams the
request body up and the response body down as the bytes arrive, with back-pressure both ways.
Requests on one connection are answered in order (pipelined ones wait their turn).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httptools

from modelplane.local.gateway_config import GatewayConfig
from modelplane.local.gateway_revisions import Replica, RevisionState, Unavailable
from modelplane.local.http_messages import (
    CONTINUE,
    HOP_BY_HOP,
    LAST_CHUNK,
    connection_headers,
    error_response,
    status_line,
)
from modelplane.local.http_upstream import NO_BODY_STATUSES, UpstreamConnection, UpstreamPool

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Request bytes kept while no upstream connection takes them; beyond this the client is paused.
BODY_HIGH_WATER = 256 * 1024
# Request bytes kept after sending, so a request can be sent again if a pooled connection was stale.
REPLAY_LIMIT = 1024 * 1024
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})

# Why the client connection is not being read; reading resumes when no reason is left.
PAUSED_FOR_BODY = 1  # the request body waits for an upstream connection
PAUSED_FOR_UPSTREAM = 2  # the upstream connection's send buffer is full
PAUSED_FOR_PIPELINE = 4  # an earlier request on this connection is still being answered

# How one attempt to forward a request ended.
DONE, LOST, TIMED_OUT = "done", "lost", "timed out"


class Router(Protocol):
    def resolve(self, host_header: bytes, path: bytes) -> RevisionState: ...


class _ResponseBroken(Exception):
    """The replica failed after part of the response went to the client: only closing is left."""


class ClientConnection(asyncio.Protocol):
    """One client connection: parses its requests and answers them in order."""

    def __init__(
        self,
        router: Router,
        pool: UpstreamPool,
        config: GatewayConfig,
        on_close: Callable[[ClientConnection], None],
    ) -> None:
        self.router = router
        self.pool = pool
        self.config = config
        self.transport: asyncio.Transport | None = None
        self.peer_ip = b""
        self.closed = False
        self.closing = False
        self._on_close = on_close
        self._parser = httptools.HttpRequestParser(self)
        self._parsing: Exchange | None = None
        self._active: Exchange | None = None
        self._waiting: deque[Exchange] = deque()
        self._pauses = 0
        self._ignore_input = False
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return self._active is None and self._parsing is None

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def write_chunk(self, data: bytes) -> None:
        if not self.closed:
            self.transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))

    def pause_reading(self, reason: int) -> None:
        if not self._pauses and not self.closed:
            self.transport.pause_reading()
        self._pauses |= reason

    def resume_reading(self, reason: int) -> None:
        if not self._pauses & reason:
            return
        self._pauses &= ~reason
        if not self._pauses and not self.closed:
            self.transport.resume_reading()

    def close_when_idle(self) -> None:
        """Stops taking requests; closes now if idle, else after the current response."""
        self.closing = True
        if self.idle and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_ip = str(peer[0]).encode()
        self._start_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._ignore_input:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrades (websocket, h2c) are not proxied: the request is served as plain HTTP/1.1
            # with the upgrade headers dropped, and the connection closes after it.
            self._ignore_input = True
            if self._parsing is not None:
                self._parsing.keep_alive = False
        except httptools.HttpParserError as exc:
            self._malformed(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._active is not None:
            self._active.cancel()
        self._waiting.clear()
        self._on_close(self)

    def pause_writing(self) -> None:
        if self._active is not None:
            self._active.client_pause_writing()

    def resume_writing(self) -> None:
        if self._active is not None:
            self._active.client_resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._parsing = Exchange(self)

    def on_url(self, url: bytes) -> None:
        self._parsing.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsing.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self._parsing
        parser = self._parser
        exchange.prepare(
            parser.get_method(),
            parser.should_keep_alive() and not self.closing,
            parser.get_http_version() == "1.0",
        )
        if self._active is None:
            self._active = exchange
            exchange.start()
        else:
            self._waiting.append(exchange)
            self.pause_reading(PAUSED_FOR_PIPELINE)

    def on_body(self, body: bytes) -> None:
        self._parsing.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self._parsing = self._parsing, None
        exchange.request_done()

    # -- sequencing ----------------------------------------------------------------------------

    def exchange_finished(self, exchange: Exchange) -> None:
        self._active = None
        if self.closed:
            return
        if not exchange.keep_alive or self.closing:
            self.transport.close()
            return
        self.resume_reading(PAUSED_FOR_BODY | PAUSED_FOR_UPSTREAM)
        if self._waiting:
            self._active = self._waiting.popleft()
            self._active.start()
            if not self._waiting:
                self.resume_reading(PAUSED_FOR_PIPELINE)
        elif self._parsing is None:
            self._start_idle_timer()

    def _malformed(self, exc: Exception) -> None:
        self._ignore_input = True
        if self._active is None:
            message = f"malformed HTTP request: {exc}"
            self.write(error_response(400, message, None, close=True))
            self.transport.close()
        else:
            self.abort()

    def _start_idle_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(self.config.client_idle_timeout, self._close_idle)

    def _close_idle(self) -> None:
        self._idle_timer = None
        if self.idle and not self.closed:
            self.transport.close()


class Exchange:
    """One request and its response, from the first request byte to the last response byte."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = b""
        self.keep_alive = True
        self.started = False
        self._http10 = False
        self._host = b""
        self._request_id = b""
        self._generated_request_id = False
        self._head = b""
        self._chunked_request = False
        self._expect_continue = False
        self._request_done = False
        # Body bytes received so far, as sent upstream; None once over REPLAY_LIMIT.
        self._body: list[bytes] | None = []
        self._body_size = 0
        self._discard_body = False
        self._task: asyncio.Task[None] | None = None
        self._revision: RevisionState | None = None
        self._replica: Replica | None = None
        self._upstream: UpstreamConnection | None = None
        self._outcome: asyncio.Future[str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failure = ""
        self._response_started = False
        self._chunked_response = False

    # -- request side (called by ClientConnection) ---------------------------------------------

    def prepare(self, method: bytes, keep_alive: bool, http10: bool) -> None:
        """Builds the upstream request head from the client's, once the headers are complete."""
        self.method = method
        self.keep_alive = keep_alive
        self._http10 = http10
        lowered = [(name.lower(), name, value) for name, value in self.headers]
        drop = HOP_BY_HOP
        forwarded_for = b""
        for lower, _, value in lowered:
            if lower == b"host":
                self._host = value
            elif lower == b"x-request-id":
                self._request_id = value
            elif lower == b"connection":
                drop = drop | connection_headers(value)
            elif lower == b"transfer-encoding":
                self._chunked_request = b"chunked" in value.lower()
            elif lower == b"expect":
                self._expect_continue = value.lower() == b"100-continue"
            elif lower == b"x-forwarded-for":
                forwarded_for = value
        head = [method, b" ", self.url, b" HTTP/1.1\r\n"]
        for lower, name, value in lowered:
            if lower in drop or lower == b"expect" or lower == b"x-forwarded-for":
                continue
            head.append(b"%b: %b\r\n" % (name, value))
        if not self._request_id:
            self._request_id = str(uuid.uuid4()).encode()
            self._generated_request_id = True
            head.append(b"x-request-id: %b\r\n" % self._request_id)
        peer = self.client.peer_ip
        head.append(
            b"x-forwarded-for: %b\r\n" % (b"%b, %b" % (forwarded_for, peer) if forwarded_for else peer)
        )
        if self._chunked_request:
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        self._head = b"".join(head)

    def request_body(self, data: bytes) -> None:
        if self._chunked_request:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._send_body(data)

    def request_done(self) -> None:
        self._request_done = True
        if self._chunked_request:
            self._send_body(LAST_CHUNK)

    def start(self) -> None:
        self.started = True
        self._task = asyncio.get_running_loop().create_task(self._run())

    def cancel(self) -> None:
        """The client went away: stop, and drop the upstream connection mid-flight."""
        if self._task is not None:
            self._task.cancel()

    def client_pause_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.pause_reading()

    def client_resume_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.resume_reading()

    def _send_body(self, data: bytes) -> None:
        if self._discard_body:
            return
        upstream = self._upstream
        if upstream is not None:
            upstream.write(data)
        body = self._body
        if body is None:
            return
        body.append(data)
        self._body_size += len(data)
        if upstream is None:
            if self._body_size > BODY_HIGH_WATER:
                self.client.pause_reading(PAUSED_FOR_BODY)
        elif self._body_size > REPLAY_LIMIT:
            self._body = None

    # -- the forwarding task -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._forward()
        except Unavailable as exc:
            self._reply_error(exc.status, exc.message)
        except asyncio.CancelledError:
            self._drop_upstream()
            self._release_slot()
            return
        except _ResponseBroken:
            self._drop_upstream()
            self._release_slot()
            self.client.abort()
            return
        except Exception:
            logger.exception("gateway: forwarding %s %s failed", self.method, self.url)
            self._drop_upstream()
            if self._response_started:
                self._release_slot()
                self.client.abort()
                return
            self._reply_error(502, "the gateway failed to forward the request")
        self._release_slot()
        self.client.exchange_finished(self)

    async def _forward(self) -> None:
        if self.method == b"CONNECT":
            raise Unavailable(405, "the gateway does not tunnel CONNECT requests")
        path = self.url.partition(b"?")[0]
        revision = self.client.router.resolve(self._host, path)
        revision.requests_total += 1
        config = self.client.config
        timeout = revision.timeout_seconds or config.response_timeout
        refused: set[str] = set()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            replica = await revision.acquire(config.queue_timeout, config.max_queued, refused)
            self._revision, self._replica = revision, replica
            try:
                upstream, reused = await self.client.pool.connect(replica)
            except OSError as exc:
                self._release_slot()
                refused.add(replica.address)
                if attempt == MAX_ATTEMPTS or all(r.address in refused for r in revision.replicas):
                    raise Unavailable(
                        502,
                        f"cannot connect to replica {replica.address} of revision {revision.revision}: {exc}",
                    ) from None
                continue
            outcome = await self._attempt(upstream, timeout)
            if outcome is DONE:
                return
            if outcome is TIMED_OUT:
                raise Unavailable(
                    504, f"revision {revision.revision} did not start responding within {timeout:g}s"
                )
            if self._response_started:
                raise _ResponseBroken()
            can_retry = (
                not upstream.received_any
                and self._body is not None
                and (reused or self.method in IDEMPOTENT)
                and attempt < MAX_ATTEMPTS
            )
            self._release_slot()
            if not can_retry:
                raise Unavailable(
                    502,
                    f"replica {replica.address} of revision {revision.revision} {self._failure} "
                    "before the response was complete",
                )

    async def _attempt(self, upstream: UpstreamConnection, timeout: float) -> str:
        """Sends the request on `upstream` and waits until its response has been relayed."""
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        self._upstream = upstream
        upstream.start(self, head_only=self.method == b"HEAD")
        if self._expect_continue and not self._request_done:
            self.client.write(CONTINUE)
            self._expect_continue = False
        if self._body:
            upstream.write(b"".join([self._head, *self._body]))
        else:
            upstream.write(self._head)
        if self._body is not None and self._body_size > REPLAY_LIMIT:
            self._body = None
        self.client.resume_reading(PAUSED_FOR_BODY)
        self._timer = loop.call_later(timeout, self._time_out)
        try:
            return await self._outcome
        finally:
            self._timer.cancel()

    def _time_out(self) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._drop_upstream()
            self._outcome.set_result(TIMED_OUT)

    def _reply_error(self, status: int, message: str) -> None:
        if self._response_started:
            self.client.abort()
            return
        if not self._request_done:
            # The rest of the request body may still come; the connection cannot be reused.
            self.keep_alive = False
            self._discard_body = True
        self.client.write(error_response(status, message, self._request_id, close=not self.keep_alive))

    def _release_slot(self) -> None:
        if self._replica is not None:
            self._revision.release(self._replica)
            self._replica = None

    def _drop_upstream(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.close()

    # -- response side (ResponseSink, called by the upstream connection) -----------------------

    def upstream_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], content_length: int | None
    ) -> None:
        self._timer.cancel()
        self._response_started = True
        drop = HOP_BY_HOP
        has_request_id = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"connection":
                drop = drop | connection_headers(value)
            elif lower == b"x-request-id":
                has_request_id = True
        head = [status_line(status, reason)]
        for name, value in headers:
            if name.lower() not in drop:
                head.append(b"%b: %b\r\n" % (name, value))
        if self._generated_request_id and not has_request_id:
            head.append(b"x-request-id: %b\r\n" % self._request_id)
        has_body = self.method != b"HEAD" and status not in NO_BODY_STATUSES
        if content_length is None and has_body:
            if self._http10:
                self.keep_alive = False  # the body ends when the connection does
            else:
                self._chunked_response = True
                head.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        elif self._http10:
            head.append(b"connection: keep-alive\r\n")
        head.append(b"\r\n")
        self.client.write(b"".join(head))

    def upstream_body(self, data: bytes) -> None:
        if self._chunked_response:
            self.client.write_chunk(data)
        else:
            self.client.write(data)

    def upstream_done(self, reusable: bool) -> None:
        if self._chunked_response:
            self.client.write(LAST_CHUNK)
        upstream, self._upstream = self._upstream, None
        if reusable and self._request_done:
            self.client.pool.release(upstream)
        else:
            upstream.close()
        if not self._request_done:
            self.keep_alive = False
            self._discard_body = True
        self._outcome.set_result(DONE)

    def upstream_failed(self, reason: str) -> None:
        self._failure = reason
        self._upstream = None
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(LOST)

    def upstream_pause_writing(self) -> None:
        self.client.pause_reading(PAUSED_FOR_UPSTREAM)

    def upstream_resume_writing(self) -> None:
        self.client.resume_reading(PAUSED_FOR_UPSTREAM)
