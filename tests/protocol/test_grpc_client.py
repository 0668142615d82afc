"""modelplane's gRPC client (modelplane/protocol/grpc/client.py) against grpcio's server: answers of
any size, the server's status codes, deadlines, cancellation, the server's stream limit, TLS, and a
server that is not there or goes away."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

from modelplane.local.ports import free_loopback_port
from modelplane.protocol.grpc.client import GrpcCallError, GrpcChannel, grpc_timeout
from tests.local.certificates import write_certificates

ECHO = "/test.Echo/Echo"
FAIL = "/test.Echo/Fail"
SLOW = "/test.Echo/Slow"


class EchoServer:
    """grpcio's server with three methods on raw bytes: Echo answers the request with its metadata
    before it, Fail ends the call with the status the request names, Slow answers after a second
    (and says, in `cancelled`, when the call was over before it)."""

    def __init__(self, *, credentials: grpc.ServerCredentials | None = None, max_streams: int = 100) -> None:
        self.cancelled = threading.Event()
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self._echo),
            "Fail": grpc.unary_unary_rpc_method_handler(self._fail),
            "Slow": grpc.unary_unary_rpc_method_handler(self._slow),
        }
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            handlers=[grpc.method_handlers_generic_handler("test.Echo", handlers)],
            options=[
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
                ("grpc.max_concurrent_streams", max_streams),
            ],
        )
        self.port = free_loopback_port()
        if credentials is None:
            self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        else:
            self.server.add_secure_port(f"127.0.0.1:{self.port}", credentials)
        self.server.start()

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = ",".join(
            f"{k}={v}" for k, v in sorted(context.invocation_metadata()) if k.startswith("x-")
        )
        return metadata.encode() + b"|" + request

    def _fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        code = grpc.StatusCode[request.decode()]
        context.abort(code, f"failed as asked: {request.decode()} \u2714")

    def _slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            time.sleep(1)
            if not context.is_active():
                self.cancelled.set()
            return request
        finally:
            with self._lock:
                self.concurrent -= 1

    def stop(self) -> None:
        self.server.stop(None).wait()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.stop()


def call(channel: GrpcChannel, method: str, message: bytes, **options) -> bytes:
    async def one() -> bytes:
        try:
            return await channel.unary(method, message, **options)
        finally:
            channel.close()

    return asyncio.run(one())


def test_answers_of_any_size_come_back_with_the_metadata_sent(echo):
    address = f"127.0.0.1:{echo.port}"
    assert (
        call(GrpcChannel(address, address), ECHO, b"hello", metadata=[("x-request-id", "r1")])
        == b"x-request-id=r1|hello"
    )
    large = bytes(range(256)) * 40_000  # 10 MB: far past HTTP/2's default windows, both ways
    assert call(GrpcChannel(address, address), ECHO, large) == b"|" + large


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE]
)
def test_the_servers_status_and_message_reach_the_caller(echo, code):
    address = f"127.0.0.1:{echo.port}"
    with pytest.raises(GrpcCallError) as failed:
        call(GrpcChannel(address, address), FAIL, code.name.encode())
    assert failed.value.code == code
    assert failed.value.details == f"failed as asked: {code.name} \u2714"
    assert failed.value.connected


def test_a_method_the_server_does_not_have_is_unimplemented(echo):
    address = f"127.0.0.1:{echo.port}"
    with pytest.raises(GrpcCallError) as failed:
        call(GrpcChannel(address, address), "/test.Echo/Nothing", b"")
    assert failed.value.code == grpc.StatusCode.UNIMPLEMENTED


def test_a_call_past_its_deadline_is_deadline_exceeded_and_the_server_hears_it_is_cancelled(echo):
    address = f"127.0.0.1:{echo.port}"

    async def impatient() -> None:
        channel = GrpcChannel(address, address)
        started = time.monotonic()
        with pytest.raises(GrpcCallError) as failed:
            await channel.unary(SLOW, b"x", timeout=0.2)
        assert failed.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 0.9
        assert await asyncio.to_thread(echo.cancelled.wait, 5)  # the connection is still open
        channel.close()

    asyncio.run(impatient())


def test_a_caller_that_gives_up_cancels_its_call(echo):
    address = f"127.0.0.1:{echo.port}"

    async def give_up() -> None:
        channel = GrpcChannel(address, address)
        task = asyncio.create_task(channel.unary(SLOW, b"x"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(echo.cancelled.wait, 5)  # the connection is still open
        assert await channel.unary(ECHO, b"after") == b"|after"
        channel.close()

    asyncio.run(give_up())


def test_calls_beyond_the_servers_stream_limit_go_on_another_connection():
    server = EchoServer(max_streams=2)
    address = f"127.0.0.1:{server.port}"

    async def many() -> list[bytes]:
        channel = GrpcChannel(address, address)
        await channel.unary(ECHO, b"")  # the server's SETTINGS, with its limit, have come
        try:
            return await asyncio.gather(*(channel.unary(SLOW, b"%d" % i) for i in range(6)))
        finally:
            connections = len(channel._connections)
            channel.close()
            assert connections == 3

    try:
        assert asyncio.run(many()) == [b"%d" % i for i in range(6)]
        assert server.most_concurrent == 6
    finally:
        server.stop()


def test_a_server_that_is_not_there_is_unavailable_and_not_connected():
    address = f"127.0.0.1:{free_loopback_port()}"
    with pytest.raises(GrpcCallError) as failed:
        call(GrpcChannel(address, address), ECHO, b"")
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert not failed.value.connected


def test_a_server_that_stops_during_a_call_makes_it_unavailable():
    server = EchoServer()
    address = f"127.0.0.1:{server.port}"

    async def cut_off() -> None:
        channel = GrpcChannel(address, address)
        task = asyncio.create_task(channel.unary(SLOW, b"x"))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(server.stop)
        with pytest.raises(GrpcCallError) as failed:
            await task
        assert failed.value.code == grpc.StatusCode.UNAVAILABLE
        assert not channel._connections
        channel.close()

    asyncio.run(cut_off())


def test_over_tls_the_server_is_verified_and_spoken_to_in_http2(tmp_path):
    ca, certificate, key = write_certificates(tmp_path)
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), certificate.read_bytes())])
    server = EchoServer(credentials=credentials)
    try:
        trusting = ssl.create_default_context(cafile=str(ca))
        trusting.set_alpn_protocols(["h2"])
        authority = f"localhost:{server.port}"
        assert (
            call(GrpcChannel(f"127.0.0.1:{server.port}", authority, trusting), ECHO, b"secret") == b"|secret"
        )
        untrusting = ssl.create_default_context()
        untrusting.set_alpn_protocols(["h2"])
        with pytest.raises(GrpcCallError) as failed:
            call(GrpcChannel(f"127.0.0.1:{server.port}", authority, untrusting), ECHO, b"secret")
        assert failed.value.code == grpc.StatusCode.UNAVAILABLE and not failed.value.connected
        assert "certificate" in failed.value.details
    finally:
        server.stop()


class ScriptedServer(asyncio.Protocol):
    """An HTTP/2 server on the `h2` package that refuses the first call it sees, by `how` (a GOAWAY
    naming no stream, then the connection closed; or a REFUSED_STREAM reset), and echoes every other;
    or (`message-first`) answers every call NOT_FOUND, its grpc-message before its grpc-status."""

    calls_seen = 0

    def __init__(self, how: str) -> None:
        self.how = how
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.bodies: dict[int, bytes] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                ScriptedServer.calls_seen += 1
                if self.how == "message-first":
                    status = [(b"grpc-message", b"no model %E2%9C%94"), (b"grpc-status", b"5")]
                    ok = [(b":status", b"200"), (b"content-type", b"application/grpc")]
                    self.conn.send_headers(event.stream_id, ok + status, end_stream=True)
                elif ScriptedServer.calls_seen > 1:
                    self.bodies[event.stream_id] = b""
                elif self.how == "goaway":
                    self.conn.close_connection(last_stream_id=0)
                    self.transport.write(self.conn.data_to_send())
                    self.transport.close()
                    return
                else:
                    self.conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id in self.bodies:
                    self.bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.bodies:
                ok = [(b":status", b"200"), (b"content-type", b"application/grpc")]
                self.conn.send_headers(event.stream_id, ok)
                self.conn.send_data(event.stream_id, self.bodies.pop(event.stream_id))
                self.conn.send_headers(event.stream_id, [(b"grpc-status", b"0")], end_stream=True)
        self.transport.write(self.conn.data_to_send())


@pytest.mark.parametrize("how", ["goaway", "refused-stream"])
def test_a_call_the_server_refused_before_it_began_is_made_again(how):
    async def refused_once() -> bytes:
        ScriptedServer.calls_seen = 0
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ScriptedServer(how), "127.0.0.1", 0)
        address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        channel = GrpcChannel(address, address)
        try:
            return await channel.unary(ECHO, b"again", timeout=5)
        finally:
            channel.close()
            server.close()

    assert asyncio.run(refused_once()) == b"again"
    assert ScriptedServer.calls_seen == 2


def test_a_deadline_is_sent_in_at_most_eight_digits():
    assert grpc_timeout(0.0001) == b"1m"
    assert grpc_timeout(600) == b"600000m"
    assert grpc_timeout(10**6) == b"1000000S"
    assert grpc_timeout(10**9) == b"16666667M"
    assert grpc_timeout(1e300) == b"99999999H"


def test_the_status_message_is_kept_whatever_order_the_trailers_come_in():
    async def not_found() -> GrpcCallError:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ScriptedServer("message-first"), "127.0.0.1", 0)
        address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        channel = GrpcChannel(address, address)
        try:
            with pytest.raises(GrpcCallError) as failed:
                await channel.unary(ECHO, b"", timeout=5)
            return failed.value
        finally:
            channel.close()
            server.close()

    failed = asyncio.run(not_found())
    assert (failed.code, failed.details) == (grpc.StatusCode.NOT_FOUND, "no model \u2714")
