"""The gateway's gRPC proxy: HTTP/2 cleartext from clients, streamed to the replicas' gRPC ports.

A client connection that opens with the HTTP/2 connection preface (gRPC clients send it at once:
"prior knowledge", no Upgrade) is handed over from the HTTP/1.1 parser to `H2ClientConnection`.
Each of its streams is one gRPC call, a `GrpcCall`: it is routed by `:authority` like a REST request
by Host, takes a slot on a replica of the chosen revision (the same in-flight accounting, queue and
scale-from-zero hold), and is relayed frame by frame to a stream on an HTTP/2 connection to that
replica's gRPC port: headers, messages both ways, trailers. Flow control is end to end: the bytes
received on one side are acknowledged only once the other side has taken them.

The gateway's own failures are answered the gRPC way, as a response with only trailers:
UNIMPLEMENTED for a host nobody serves, UNAVAILABLE when no replica can take the call.

The client's connection is held to the gateway's HTTP/2 limits (`GatewayConfig.http2`), so what it
relays is never more than it would take itself: a header list is decoded within the limit, and a call
whose headers a replica advertises it would not take is refused here (RESOURCE_EXHAUSTED). A stream the
client resets before its frames have left for the replica never reaches the replica at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from modelplane.local.gateway.auth import REFUSAL
from modelplane.local.gateway.grpc.endpoint import H2Endpoint, Headers
from modelplane.local.gateway.grpc.upstream import H2Upstream
from modelplane.local.gateway.modelmesh_endpoint import (
    MESSAGE_NAMES_MODEL,
    MODEL_ID_HEADER,
    NoModelName,
    model_header,
    model_in_message,
)
from modelplane.local.gateway.observe import CallWatch
from modelplane.local.gateway.revisions import (
    MAX_CONNECT_ATTEMPTS,
    RevisionUpstreams,
    Unavailable,
    UpstreamReplica,
    acquire_rerouting,
)
from modelplane.protocol.grpc.status import status_headers
from modelplane.protocol.http2.hpack import header_list_size

if TYPE_CHECKING:
    from modelplane.local.gateway.context import GatewayContext

logger = logging.getLogger(__name__)


# gRPC status codes the gateway answers with.
CANCELLED, INVALID_ARGUMENT, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED = 1, 3, 4, 8
UNIMPLEMENTED, INTERNAL, UNAVAILABLE = 12, 13, 14
UNAUTHENTICATED = 16
_REFUSED_STREAM, _CANCEL = 7, 8  # HTTP/2 error codes of RST_STREAM
# The gateway's refusals (`Unavailable`'s status) as gRPC codes: a host nobody serves is UNIMPLEMENTED.
_GRPC_CODES = {400: INVALID_ARGUMENT, 404: UNIMPLEMENTED}
# What a call's client sent is kept, up to this many bytes, until its answer begins: a replica that
# refuses the call (it is stopping) processed none of it, and the call goes to another one.
REPLAY_LIMIT = 1024 * 1024
MAX_REFUSALS = 2  # replicas that may refuse a call before it fails


class H2ClientConnection(H2Endpoint):
    """One client's HTTP/2 connection: every stream on it is a gRPC call to proxy."""

    def __init__(
        self,
        context: GatewayContext,
        on_close: Callable[[H2ClientConnection], None],
    ) -> None:
        super().__init__(client_side=False, limits=context.config.http2)
        self.context = context
        self.calls: dict[int, GrpcCall] = {}
        self.closing = False
        self.head_since = None  # HTTP/1.1's; a slow HTTP/2 preface is idle time
        self._starting: list[GrpcCall] = []  # calls opened by the frames being read, started after them
        self._on_close = on_close
        self._idle = context.idle  # the gateway's connections with no call under way

    # -- what the gateway uses (the same as for HTTP/1.1 connections) --------------------------

    def close_when_idle(self, linger: float = 0.0) -> None:
        """Takes no new calls (GOAWAY, which tells the client the calls it may send again: no
        `linger` is needed); closes once the calls under way have ended."""
        if self.closing or self.closed:
            return
        self.closing = True
        self.send_goaway()
        if not self.calls:
            self.close()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def evict(self) -> None:
        self.close_when_idle()

    def head_timed_out(self, timeout: float) -> None:
        """Never called: `head_since` stays None."""

    # -- the client's frames -------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: Headers, end_stream: bool, new_stream: bool) -> None:
        if new_stream:
            self._new_call(stream_id, headers, end_stream)
            return
        # gRPC requests carry no trailers; end the request there, without them.
        call = self.calls.get(stream_id)
        if call is not None and end_stream and not call.client_ended:
            call.client_end()

    def on_data(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        call = self.calls.get(stream_id)
        if call is None:
            self.acknowledge(stream_id, flow_length)
            return
        if data or flow_length:
            call.client_data(data, flow_length)
        if end_stream and not call.client_ended:
            call.client_end()

    def on_reset(self, stream_id: int, error_code: int) -> None:
        call = self.calls.get(stream_id)
        if call is not None:
            call.client_reset()

    def on_window_opened(self, stream_id: int) -> None:
        if stream_id:
            call = self.calls.get(stream_id)
            if call is not None:
                call.pump_down()
            return
        for call in list(self.calls.values()):
            call.pump_down()

    def on_goaway(self, last_stream_id: int, error_code: int) -> None:
        self.closing = True
        if not self.calls:
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._idle[self] = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._starting:
            # Started once all the frames of this read are in: a stream reset by a frame of the same
            # read (rapid reset) costs no routing, no replica slot and nothing sent to a replica.
            starting, self._starting = self._starting, []
            for call in starting:
                if not call.ended and not self.closed:
                    call.start()
            self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._idle.pop(self, None)
        for call in list(self.calls.values()):
            call.client_reset()
        self._on_close(self)

    # -- used by the calls ---------------------------------------------------------------------

    def call_ended(self, call: GrpcCall) -> None:
        self.calls.pop(call.stream_id, None)
        if not self.calls:
            self.idle_since = self._loop.time()
            if not self.closed:
                self._idle[self] = None
            if self.closing and not self.closed:
                self.close()

    # -- internals -----------------------------------------------------------------------------

    def _new_call(self, stream_id: int, headers: Headers, ended: bool) -> None:
        if self.closing:  # opened before the client saw the GOAWAY: it may try again elsewhere
            self.reset(stream_id, _REFUSED_STREAM)
            return
        self.idle_since = None
        self._idle.pop(self, None)
        call = GrpcCall(self.context, self, stream_id, headers)
        self.calls[stream_id] = call
        if ended:
            call.client_ended = True
        self._starting.append(call)


class GrpcCall:
    """One stream of a client connection, relayed to one stream on a replica's gRPC port."""

    def __init__(
        self, context: GatewayContext, client: H2ClientConnection, stream_id: int, headers: Headers
    ) -> None:
        self.context = context
        self.client = client
        self.stream_id = stream_id
        self.headers = headers
        self.client_ended = False  # the request is complete
        self.ended = False  # the call is over for the gateway
        self._authority = b""
        self._path = b""
        self._model: bytes | None = None  # a ModelMesh call's model, which routes it
        self._revision: RevisionUpstreams | None = None
        self._arrived_at = 0.0  # when the call was routed, on the deadlines' clock
        self._replica: UpstreamReplica | None = None
        self._load_since = 0.0  # when the slot on `_replica` began to count as load (LoadMeter)
        self._upstream: H2Upstream | None = None
        self._upstream_id = 0
        self._up_ended = False  # END_STREAM went to the replica
        self._to_upstream: deque[list] = deque()  # [data, flow-controlled length] not yet sent up
        self._to_client: deque[list] = deque()  # the same, from the replica
        self._sent: list[bytes] | None = []  # what the client sent, while the call may be sent again
        self._sent_size = 0
        self._refusals = 0
        self._response_end: Headers | None = None  # trailers to send once the data is out
        self._response_end_bare = False  # the replica ended the response without trailers
        self._headers_sent = False
        self._task: asyncio.Task[None] | None = None
        self._watched = False
        self._awaiting_model = False  # at ModelMesh's endpoint, until the first message names the model
        self._header_model: bytes | None = None  # the model the headers name, where the message names none
        self.watch: CallWatch | None = None  # metrics (gateway/observe.py)

    # -- from the client -----------------------------------------------------------------------

    def start(self) -> None:
        content_type = b""
        token = self.context.token
        authorized = True
        if token is not None:
            self.headers, authorized = token.take(self.headers)
        for name, value in self.headers:
            if name == b":authority" or (name == b"host" and not self._authority):
                self._authority = value
            elif name == b":path":
                self._path = value
            elif name == b"content-type":
                content_type = value
        self.watch = watch = self.context.router.watch_call(
            self._authority if authorized else b"", self._path, self.headers
        )
        self.headers = watch.upstream_headers(self.headers)
        for data, _ in self._to_upstream:  # what came in the same read as the headers
            watch.request_body(data)
        if self.client_ended:
            watch.request_done()
        is_grpc = content_type.startswith(b"application/grpc")
        if not authorized:
            if is_grpc:
                self.fail(UNAUTHENTICATED, REFUSAL)
            else:  # a REST client reads the HTTP status, as over HTTP/1.1
                self._reply_http(401, REFUSAL, ((b"www-authenticate", b"Bearer"),))
            return
        if not is_grpc:
            self._reply_http(
                505,
                "the gateway takes HTTP/2 for gRPC calls only (content-type application/grpc); "
                "send REST requests over HTTP/1.1 (curl, which picks HTTP/2 over TLS: --http1.1)",
            )
            return
        model = model_header(self.headers)
        by_message = model is None or self._path in MESSAGE_NAMES_MODEL
        if by_message and self.context.router.models_at(self._authority) is not None:
            # ModelMesh's endpoint: the model is the one the first message names, else the header's.
            self._header_model = model
            self._awaiting_model = True
            self._route_by_message()
            return
        self._route(model)

    def _route(self, model: bytes | None) -> None:
        self._model = model
        try:
            revision = self.context.router.resolve(self._authority, self._path, model)
        except Unavailable as exc:
            self.fail(_GRPC_CODES.get(exc.status, UNAVAILABLE), exc.message)
            return
        if not revision.serves_grpc:
            self.fail(UNIMPLEMENTED, _no_grpc(revision, self._authority))
            return
        revision.count_request()
        self._revision = revision
        self._arrived_at = self.context.deadlines.now()
        replica = revision.try_acquire()
        if replica is not None:
            self._hold(replica)
            upstream = self.context.h2_pool.ready_connection(replica.grpc_address)
            if upstream is not None:
                self._open(upstream)
                return
        self._task = asyncio.get_running_loop().create_task(self._forward(replica))

    def client_data(self, data: bytes, flow_length: int) -> None:
        if self.ended or self._up_ended:
            self.client.acknowledge(self.stream_id, flow_length)
            return
        self._to_upstream.append([data, flow_length])
        if self.watch is not None:
            self.watch.request_body(data)
        if self._sent is not None:
            self._sent_size += len(data)
            if self._sent_size > REPLAY_LIMIT:
                self._sent = None
            else:
                self._sent.append(data)
        if self._upstream is not None:
            self.pump_up()
        elif self._awaiting_model:
            self._route_by_message()

    def client_end(self) -> None:
        self.client_ended = True
        if self.watch is not None:
            self.watch.request_done()
        if self._upstream is not None and not self.ended:
            self.pump_up()
        elif self._awaiting_model and not self.ended:
            self._route_by_message()

    def _route_by_message(self) -> None:
        """Routes a call at ModelMesh's endpoint once its first message shows the model's name."""
        try:
            model = model_in_message(b"".join(data for data, _ in self._to_upstream))
        except NoModelName as exc:
            self._awaiting_model = False
            if self._header_model is not None:
                self._route(self._header_model)
                return
            self.fail(INVALID_ARGUMENT, f"name the model with the {MODEL_ID_HEADER.decode()} header: {exc}")
            return
        if model is None:
            if self.client_ended:
                self._awaiting_model = False
                if self._header_model is not None:
                    self._route(self._header_model)
                    return
                self.fail(INVALID_ARGUMENT, f"name the model with the {MODEL_ID_HEADER.decode()} header")
            return
        self._awaiting_model = False
        self._route(model)

    def client_reset(self) -> None:
        """The client cancelled the call, or went away."""
        if self.ended:
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()  # it gives the slot back
            self._task = None
            self._end(reset_upstream=False)
            return
        self._end(reset_upstream=True)

    # -- from the replica (StreamSink) ---------------------------------------------------------

    def upstream_headers(self, headers: Headers, end_stream: bool) -> None:
        self._stop_deadline()
        self._sent = None  # the replica took the call
        watch = self.watch
        watch.response_head(headers)
        headers = watch.client_headers(headers)
        if end_stream:  # a response with only trailers
            watch.trailers(headers)
            self._headers_sent = True
            self.client.send_headers(self.stream_id, headers, end_stream=True)
            self._finish()
            return
        self._headers_sent = True
        self.client.send_headers(self.stream_id, headers)

    def upstream_data(self, data: bytes, flow_length: int, end_stream: bool) -> None:
        self._to_client.append([data, flow_length])
        self.watch.response_body(data)
        if end_stream:
            self._response_end_bare = True
        self.pump_down()

    def upstream_trailers(self, headers: Headers) -> None:
        self.watch.trailers(headers)
        self._response_end = headers
        self.pump_down()

    def upstream_reset(self, error_code: int) -> None:
        if self.ended:
            return
        if not self._headers_sent:
            self.fail(UNAVAILABLE, f"{self._replica_name()} reset the call (HTTP/2 error code {error_code})")
            return
        self.client.reset(self.stream_id, error_code)
        self._end(reset_upstream=False)

    def upstream_lost(self, reason: str) -> None:
        if not self.ended:
            self.fail(UNAVAILABLE, f"{self._replica_name()}: {reason}")

    def upstream_refused(self) -> None:
        """The replica did not take the call (HTTP/2 says none of it was processed): it goes to another
        replica if what the client sent is still at hand."""
        if self.ended:
            return
        if self._sent is None or self._refusals == MAX_REFUSALS:
            self.fail(
                UNAVAILABLE, f"{self._replica_name()}: the replica refused the call (it is shutting down)"
            )
            return
        self._refusals += 1
        self._stop_deadline()
        self._upstream, self._upstream_id, self._up_ended = None, 0, False
        # What the refusing replica had of the request (acknowledged to the client already), then
        # what was still waiting to go.
        waiting = sum(len(data) for data, _ in self._to_upstream)
        sent = b"".join(self._sent)[: self._sent_size - waiting]
        if sent:
            self._to_upstream.appendleft([sent, 0])
        self._release_slot()
        self._task = asyncio.get_running_loop().create_task(self._forward(None))

    def upstream_window_opened(self) -> None:
        self.pump_up()

    def deadline_passed(self, timeout: float) -> None:
        self._watched = False
        if not self.ended and not self._headers_sent:
            self.fail(
                DEADLINE_EXCEEDED,
                f"revision {self._revision.revision} did not start responding within {timeout:g}s",
            )

    # -- relaying ------------------------------------------------------------------------------

    def pump_up(self) -> None:
        """Sends what the client sent, as far as the replica's window allows, then the end."""
        upstream = self._upstream
        if upstream is None or self.ended or self._up_ended:
            return
        ended = self.client_ended
        if upstream.relay(self._upstream_id, self._to_upstream, self._passed_up, end_stream=ended) and ended:
            self._up_ended = True

    def pump_down(self) -> None:
        """Sends what the replica sent, as far as the client's window allows, then the trailers."""
        if self.ended or not self.client.relay(self.stream_id, self._to_client, self._passed_down):
            return
        if self._response_end is not None:
            self.client.send_headers(self.stream_id, self._response_end, end_stream=True)
            self._finish()
        elif self._response_end_bare:
            self.client.end_stream(self.stream_id)
            self._finish()

    def _passed_up(self, length: int) -> None:
        self.client.acknowledge(self.stream_id, length)

    def _passed_down(self, length: int) -> None:
        if self._upstream is not None:
            self._upstream.acknowledge(self._upstream_id, length)

    # -- forwarding ----------------------------------------------------------------------------

    def _reroute(self) -> RevisionUpstreams:
        """The revision the call's host routes it to now, its first revision having left the routes."""
        revision = self.context.router.resolve(self._authority, self._path, self._model)
        if not revision.serves_grpc:
            raise Unavailable(503, _no_grpc(revision, self._authority))
        revision.count_request()
        return revision

    async def _forward(self, replica: UpstreamReplica | None) -> None:
        revision = self._revision
        config = self.context.config
        try:
            for attempt in range(1, MAX_CONNECT_ATTEMPTS + 1):
                if replica is None:
                    timeout = self._timeout()
                    revision, replica = await acquire_rerouting(
                        revision,
                        self._reroute,
                        config.queue_timeout,
                        config.max_queued,
                        self._arrived_at + timeout - self.context.deadlines.now(),
                        timeout,
                    )
                    self._revision = revision
                self._hold(replica)
                try:
                    upstream = await self.context.h2_pool.connect(replica.grpc_address)
                except OSError as exc:
                    self._release_slot()
                    revision.set_aside(replica)
                    if attempt == MAX_CONNECT_ATTEMPTS:
                        raise Unavailable(
                            503,
                            f"cannot connect to the gRPC port {replica.grpc_address} of replica "
                            f"{replica.address} of revision {revision.revision}: {exc}",
                        ) from exc
                    replica = None
                    continue
                self._task = None
                self._open(upstream)
                return
        except Unavailable as exc:
            self._task = None
            self.fail(DEADLINE_EXCEEDED if exc.status == 504 else UNAVAILABLE, exc.message)
        except asyncio.CancelledError:
            self._release_slot()
            raise
        except Exception:
            logger.exception("gateway: forwarding the gRPC call %s failed", self._path)
            self._task = None
            self.fail(INTERNAL, "the gateway failed to forward the call")

    def _open(self, upstream: H2Upstream) -> None:
        limit = upstream.peer_max_header_list_size
        if limit < self.client.limits.max_header_list_size and header_list_size(self.headers) > limit:
            # The client's headers were within the gateway's limit; the replica takes less.
            self.fail(
                RESOURCE_EXHAUSTED, f"the call's headers are above the replica's limit of {limit} bytes"
            )
            return
        self._upstream = upstream
        end = self.client_ended and not self._to_upstream
        self._upstream_id = upstream.open_stream(self, self.headers, end_stream=end)
        self._up_ended = end
        self.context.deadlines.watch(self, self._timeout(), since=self._arrived_at)
        self._watched = True
        if self._to_upstream or (self.client_ended and not end):
            self.pump_up()

    def _timeout(self) -> float:
        """The call's own timeout, from its arrival: its revision's, else the gateway's."""
        return self._revision.timeout_seconds or self.context.config.response_timeout

    # -- ending --------------------------------------------------------------------------------

    def fail(self, code: int, message: str) -> None:
        """Ends the call with a gRPC status of the gateway's own."""
        if self.ended:
            return
        self.watch.status(code, message)
        trailers = status_headers(code, message, trailers_only=not self._headers_sent)
        if not self._headers_sent:
            trailers = self.watch.client_headers(trailers)
        self.client.send_headers(self.stream_id, trailers, end_stream=True)
        self._end(reset_upstream=True, reset_client=not self.client_ended)

    def _reply_http(self, status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        body = orjson.dumps({"error": message})
        headers = [
            (b":status", str(status).encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        self.client.send_headers(self.stream_id, headers)
        self.client.send_data(self.stream_id, body, end_stream=True)
        self._end(reset_upstream=False, reset_client=not self.client_ended)

    def _finish(self) -> None:
        """The response is complete: the replica's side of its stream is over too."""
        self._end(reset_upstream=not self._up_ended, reset_client=not self.client_ended, error_code=0)

    def _end(self, *, reset_upstream: bool, reset_client: bool = False, error_code: int = _CANCEL) -> None:
        if self.ended:
            return
        self.ended = True
        if self.watch is not None:
            self.watch.end(self._revision)
        self._stop_deadline()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.forget(self._upstream_id, reset_upstream, error_code)
            # What the replica sent that never reached the client still took the window of the
            # replica's connection, which every call on it shares: it is given back, or the calls
            # that follow would wait for a window that never opens again.
            for _, length in self._to_client:
                upstream.acknowledge(self._upstream_id, length)
        self._to_client.clear()
        if reset_client:
            # The client may still be sending: HTTP/2's way to say the rest is not wanted.
            self.client.reset(self.stream_id, 0)
        for _, length in self._to_upstream:
            self.client.acknowledge(self.stream_id, length)
        self._to_upstream.clear()
        self._release_slot()
        self.client.call_ended(self)

    def _hold(self, replica: UpstreamReplica) -> None:
        """The call holds a slot on `replica` from now on (until `_release_slot`)."""
        if replica is not self._replica:
            self._replica = replica
            self._load_since = self._revision.load.begin()

    def _release_slot(self) -> None:
        replica, self._replica = self._replica, None
        if replica is not None:
            self._revision.load.end(self._load_since)
            self._revision.release(replica)

    def _stop_deadline(self) -> None:
        if self._watched:
            self._watched = False
            self.context.deadlines.unwatch(self)

    def _replica_name(self) -> str:
        replica = self._replica
        if replica is None:
            return f"revision {self._revision.revision if self._revision else '?'}"
        return f"replica {replica.grpc_address} of revision {self._revision.revision}"


def _no_grpc(revision: RevisionUpstreams, authority: bytes) -> str:
    return f"revision {revision.revision} (host '{authority.decode('latin-1')}') does not serve gRPC"
