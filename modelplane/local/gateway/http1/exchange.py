"""One proxied request and its response, from the first request byte to the last response byte.

The common case runs without a task: the replica has a free slot and an idle pooled connection, so
the request goes out from the client's read callback and the response comes back through the
upstream connection's callbacks. Anything that has to wait (a queued slot, a new connection, a
retry) moves into a task that runs the same steps with awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

from modelplane.local.gateway.auth import REFUSAL
from modelplane.local.gateway.http1.heads import request_head, response_head
from modelplane.local.gateway.http1.messages import error_response
from modelplane.local.gateway.http1.upstream import NO_BODY_STATUSES, UpstreamConnection
from modelplane.local.gateway.modelmesh_endpoint import model_header
from modelplane.local.gateway.observe import ANSWERED, BROKEN, CLIENT_GONE, ExchangeWatch
from modelplane.local.gateway.revisions import (
    MAX_CONNECT_ATTEMPTS,
    RevisionUpstreams,
    Unavailable,
    UpstreamReplica,
    acquire_rerouting,
)
from modelplane.protocol.http1_wire import CONTINUE, LAST_CHUNK, origin_form

if TYPE_CHECKING:
    from modelplane.local.gateway.context import GatewayContext

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Request bytes kept while no upstream connection takes them; beyond this the client is paused.
BODY_HIGH_WATER = 256 * 1024
# A pooled connection idle for this long (seconds) may have been closed by its replica: a request it
# carried is sent again if no byte of an answer came back. (Replicas keep idle connections for seconds.)
MAY_BE_STALE_AFTER = 1.0
# A replica closing an idle connection as the request goes out closes it at once: one whose connection
# ends later than this (seconds) after the request went out took the request, and died on it.
STALE_CLOSE_WINDOW = 0.1
# Request bytes kept after sending, so a request can be sent again if a pooled connection was stale.
REPLAY_LIMIT = 1024 * 1024
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})

# Why the client connection is not being read (bits); reading resumes when none is left.
PAUSED_FOR_BODY = 1  # the request body waits for an upstream connection
PAUSED_FOR_UPSTREAM = 2  # the upstream connection's send buffer is full
PAUSED_FOR_PIPELINE = 4  # an earlier request on this connection is still being answered

# How one attempt to forward a request ended.
DONE, LOST, TIMED_OUT = "done", "lost", "timed out"


class _ResponseBroken(Exception):
    """The replica failed after part of the response went to the client: only closing is left."""


class Client(Protocol):
    """The client connection an exchange answers on: what the exchange writes and pauses."""

    peer_ip: bytes

    def write(self, data: bytes) -> None: ...

    def write_all(self, pieces: list[bytes]) -> None: ...

    def pause_reading(self, reason: int) -> None: ...

    def resume_reading(self, reason: int) -> None: ...

    def abort(self) -> None: ...

    def exchange_finished(self, exchange: Exchange) -> None: ...


class Exchange:
    """A request on a client connection, forwarded to one replica of its revision."""

    def __init__(self, context: GatewayContext, client: Client) -> None:
        self.context = context
        self.client = client
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = b""
        self.keep_alive = True
        self.started = False
        self.watch: ExchangeWatch | None = None  # metrics and payload logging (gateway/observe.py)
        self._http10 = False
        self._authorized = True  # False: the gateway needs a token this request lacks
        self._host = b""
        self._request_id = b""
        self._generated_request_id = False
        self._head = b""
        self._chunked_request = False
        self._expect_continue = False
        self._request_done = False
        # Body bytes received so far, framed as sent upstream; None once over REPLAY_LIMIT.
        self._body: list[bytes] | None = []
        self._body_size = 0
        self._discard_body = False
        self._task: asyncio.Task[None] | None = None
        self._revision: RevisionUpstreams | None = None
        self._arrived_at = 0.0  # when the request started, on the deadlines' clock
        self._replica: UpstreamReplica | None = None
        self._load_since = 0.0  # when the slot on `_replica` began to count as load (LoadMeter)
        self._upstream: UpstreamConnection | None = None
        self._attempted: UpstreamConnection | None = None
        self._reused = False
        self._sent_at = 0.0  # when the request went out on a connection that may have been stale
        self._outcome: asyncio.Future[str] | None = None
        self._watched = False  # a response-header deadline is running
        self._failure = ""
        self._response_started = False  # bytes of the response went to the client
        self._hold_head = False
        self._chunked_response = False
        # Response bytes gathered while one read from the replica is parsed, written to the client
        # at once: one send per read instead of one per part (head, body, last chunk).
        self._out: list[bytes] = []

    # -- request side (called by ClientConnection) ---------------------------------------------

    def prepare(self, method: bytes, keep_alive: bool, http10: bool) -> None:
        """Builds the upstream request head from the client's, once the headers are complete."""
        self.method = method
        self.keep_alive = keep_alive
        self._http10 = http10
        token = self.context.token
        if token is not None:
            self.headers, self._authorized = token.take(self.headers)
        authority = None
        if self.url[:1] != b"/":
            self.url, authority = origin_form(self.url)
        head = request_head(method, self.url, self.headers, self.client.peer_ip)
        self._head = head.head
        self._host = head.host if authority is None else authority
        self._request_id = head.request_id
        self._generated_request_id = head.generated_request_id
        self._chunked_request = head.chunked
        self._expect_continue = head.expect_continue
        # A refused request is recorded under no host: nothing of it goes to a route's payload logger.
        watched_host = self._host if self._authorized else b""
        self.watch = self.context.router.watch(method, self.url, watched_host, self.headers, self._request_id)
        self._head = self.watch.upstream_head(self._head)

    def request_body(self, data: bytes) -> None:
        self.watch.request_body(data)
        if self._chunked_request:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._send_body(data)

    @property
    def request_complete(self) -> bool:
        """The whole request has arrived from the client."""
        return self._request_done

    def request_done(self) -> None:
        self._request_done = True
        self.watch.request_done()
        if self._chunked_request:
            self._send_body(LAST_CHUNK)

    def refused(self, status: int, message: str) -> None:
        """The request turned out malformed before it went on: its connection answers it, and closes."""
        self.watch.gateway_answer(status, message)
        self.watch.end(None, ANSWERED)

    def start(self) -> None:
        """Forwards the request: at once when a slot and an idle connection are free, else in a task."""
        self.started = True
        self._arrived_at = self.context.deadlines.now()
        try:
            replica = self._choose()
        except Unavailable as exc:
            self._reply_error(exc.status, exc.message)
            self._finish()
            return
        if replica is not None:
            upstream = self.context.http1_pool.idle_connection(replica)
            if upstream is not None:
                self._hold(replica)
                self._send(upstream, reused=True)
                return
        self._task = asyncio.get_running_loop().create_task(self._run(replica, None))

    def cancel(self) -> None:
        """The client went away: stop, and drop the upstream connection mid-flight."""
        self.watch.end(self._revision, CLIENT_GONE)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            return
        self._stop_deadline()
        self._drop_upstream()
        self._release_slot()

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

    # -- forwarding ----------------------------------------------------------------------------

    def _choose(self) -> UpstreamReplica | None:
        """Finds the revision and takes a free slot on one of its replicas if there is one."""
        if not self._authorized:
            raise Unavailable(401, REFUSAL)
        if self.method == b"CONNECT":
            raise Unavailable(405, "the gateway does not tunnel CONNECT requests")
        revision = self._revision = self._resolve()
        return revision.try_acquire()

    def _resolve(self) -> RevisionUpstreams:
        """The revision the request's host routes it to now (raises `Unavailable`)."""
        path = self.url.partition(b"?")[0]
        revision = self.context.router.resolve(self._host, path, model_header(self.headers))
        revision.count_request()
        return revision

    def _send(self, upstream: UpstreamConnection, reused: bool) -> None:
        """Writes the request (as much of the body as has arrived) on `upstream`."""
        self._upstream = self._attempted = upstream
        self._reused = reused
        if reused and upstream.idle_for >= MAY_BE_STALE_AFTER:
            self._sent_at = time.monotonic()
        upstream.start(self, head_only=self.method == b"HEAD")
        if self._expect_continue and not self._request_done:
            self.client.write(CONTINUE)
            self._expect_continue = False
        if self._body:
            upstream.write(b"".join([self._head, *self._body]))
            if self._body_size > REPLAY_LIMIT:
                self._body = None
        else:
            upstream.write(self._head)
        self.client.resume_reading(PAUSED_FOR_BODY)
        self.context.deadlines.watch(self, self._timeout(), since=self._arrived_at)
        self._watched = True

    def _timeout(self) -> float:
        """The request's own timeout, from its arrival: its revision's, else the gateway's."""
        return self._revision.timeout_seconds or self.context.config.response_timeout

    def _attempt_ended(self, outcome: str) -> None:
        self._stop_deadline()
        if self._outcome is not None:
            self._outcome.set_result(outcome)
        elif outcome is DONE:
            self._finish()
        else:
            self._task = asyncio.get_running_loop().create_task(self._run(None, outcome))

    async def _run(self, replica: UpstreamReplica | None, outcome: str | None) -> None:
        try:
            await self._forward(replica, outcome)
        except Unavailable as exc:
            self._reply_error(exc.status, exc.message)
        except asyncio.CancelledError:
            self._stop_deadline()
            self._drop_upstream()
            self._release_slot()
            return
        except _ResponseBroken:
            self.watch.end(self._revision, BROKEN)
            self._drop_upstream()
            self._release_slot()
            self.client.abort()
            return
        except Exception:
            logger.exception("gateway: forwarding %s %s failed", self.method, self.url)
            self._stop_deadline()
            self._drop_upstream()
            self._reply_error(502, "the gateway failed to forward the request")
        self._finish()

    async def _forward(self, replica: UpstreamReplica | None, outcome: str | None) -> None:
        """Attempts until one ends well, or raises `Unavailable` with what to tell the client.

        It starts either before the first attempt (with the slot `replica` if one was free) or
        after a first attempt that ended with `outcome`.
        """
        revision = self._revision
        config = self.context.config
        attempt = 0 if outcome is None else 1
        while True:
            if outcome is None:
                attempt += 1
                if replica is None:
                    timeout = self._timeout()
                    revision, replica = await acquire_rerouting(
                        revision,
                        self._resolve,
                        config.queue_timeout,
                        config.max_queued,
                        self._arrived_at + timeout - self.context.deadlines.now(),
                        timeout,
                    )
                    self._revision = revision
                self._hold(replica)
                try:
                    upstream, reused = await self.context.http1_pool.connect(replica)
                except OSError as exc:
                    self._release_slot()
                    revision.set_aside(replica)
                    if attempt == MAX_CONNECT_ATTEMPTS:
                        raise Unavailable(
                            502,
                            f"cannot connect to replica {replica.address} of revision {revision.revision}: {exc}",
                        ) from None
                    replica = None
                    continue
                self._outcome = asyncio.get_running_loop().create_future()
                self._send(upstream, reused)
                try:
                    outcome = await self._outcome
                finally:
                    self._outcome = None
            if outcome is DONE:
                return
            if outcome is TIMED_OUT:
                timeout = self._timeout()
                raise Unavailable(
                    504, f"revision {revision.revision} did not start responding within {timeout:g}s"
                )
            if self._response_started:
                raise _ResponseBroken()
            address = self._replica.address
            # A connection idle long enough may have been closed by the replica as the request went
            # out (nothing was processed), if it ended at once; one idle for less, or that ended
            # later, was cut by a replica that died on the request, which is not sent to another one
            # to kill it too. A replica that has left the
            # routes, unless it died (replicas/crashes.py), is being stopped, and a stopping replica
            # answers every request it read: one it closed on without a word it never took (the
            # request went out as it closed its idle connections).
            may_be_stale = (
                self._reused
                and self._attempted.idle_for >= MAY_BE_STALE_AFTER
                and time.monotonic() - self._sent_at < STALE_CLOSE_WINDOW
            )
            stopping = self._replica not in revision.replicas and not self.context.router.crashed(address)
            can_retry = (
                not self._attempted.received_any
                and self._body is not None
                and (may_be_stale or stopping or self.method in IDEMPOTENT)
                and attempt < MAX_ATTEMPTS
            )
            self._release_slot()
            if not can_retry:
                raise Unavailable(
                    502,
                    f"replica {address} of revision {revision.revision} {self._failure} "
                    "before the response was complete",
                )
            replica = outcome = None

    def deadline_passed(self, timeout: float) -> None:
        self.watch.upstream_error(self._revision, "timeout")
        self._watched = False
        self._drop_upstream()
        self._attempt_ended(TIMED_OUT)

    def _stop_deadline(self) -> None:
        if self._watched:
            self._watched = False
            self.context.deadlines.unwatch(self)

    def _reply_error(self, status: int, message: str) -> None:
        if self._response_started:
            self.client.abort()
            return
        self.watch.gateway_answer(status, message)
        if not self._request_done:
            # The rest of the request body may still come; the connection cannot be reused.
            self.keep_alive = False
            self._discard_body = True
        self.client.write(error_response(status, message, self._request_id, close=not self.keep_alive))

    def _finish(self) -> None:
        self.watch.end(self._revision, ANSWERED)
        self._release_slot()
        self.client.exchange_finished(self)

    def _hold(self, replica: UpstreamReplica) -> None:
        """The request holds a slot on `replica` from now on (until `_release_slot`)."""
        if replica is not self._replica:
            self._replica = replica
            self._load_since = self._revision.load.begin()

    def _release_slot(self) -> None:
        if self._replica is not None:
            self._revision.load.end(self._load_since)
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
        self._stop_deadline()
        self.watch.response_head(status, headers)
        has_body = self.method != b"HEAD" and status not in NO_BODY_STATUSES
        if content_length is None and has_body:
            # A body of unknown length: chunked to the client, or to the end of the connection.
            if self._http10:
                self.keep_alive = False
            else:
                self._chunked_response = True
        # With a known, non-empty body on its way, the head waits for the first body bytes so both
        # leave in one write (replicas often send them as two segments).
        self._hold_head = has_body and bool(content_length)
        self._out.append(
            response_head(
                status,
                reason,
                headers,
                request_id=self._request_id if self._generated_request_id else None,
                chunked=self._chunked_response,
                close=not self.keep_alive,
                keep_alive_header=self._http10,
            )
        )

    def upstream_body(self, data: bytes) -> None:
        self.watch.response_body(data)
        self._hold_head = False
        if self._chunked_response:
            self._out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self._out.append(data)

    def upstream_flush(self) -> None:
        if self._out and not self._hold_head:
            self._response_started = True
            self.client.write_all(self._out)
            self._out = []

    def upstream_done(self, reusable: bool) -> None:
        if self._chunked_response:
            self._out.append(LAST_CHUNK)
        self.upstream_flush()
        upstream, self._upstream = self._upstream, None
        if reusable and self._request_done:
            self.context.http1_pool.release(upstream)
        else:
            upstream.close()
        if not self._request_done:
            self.keep_alive = False
            self._discard_body = True
        self._attempt_ended(DONE)

    def upstream_failed(self, reason: str) -> None:
        self.watch.upstream_error(self._revision, "closed")
        self.upstream_flush()
        self._out = []  # a head still held back: the client gets a 502 instead
        self._failure = reason
        self._upstream = None
        self._attempt_ended(LOST)

    def upstream_pause_writing(self) -> None:
        self.client.pause_reading(PAUSED_FOR_UPSTREAM)

    def upstream_resume_writing(self) -> None:
        self.client.resume_reading(PAUSED_FOR_UPSTREAM)
