"""Large request bodies at the HTTP server: a connection keeps nothing of a request once it is answered,
refused or given up, and a client that sends a whole body over the limit before it reads gets the 413.

A connection is a reference cycle (its parser calls back into it), which only the cycle collector frees,
maybe many requests later; a large body it kept would stay in memory that long. The collector is off in
the tests of what is kept, so that what is kept is what a server would keep between collections."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import weakref

import pytest

from modelplane.protocol import http_server
from modelplane.protocol.http2 import hpack
from modelplane.protocol.http2 import server as http2_server
from modelplane.protocol.http2.server import H2Request, H2Response
from tests.protocol.raw_h2 import RawH2, grpc_frame


def post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def serve(handler, max_body_size: int | None = None):
    """A server on a loopback port: (its shared state, its asyncio server, the port)."""
    state = http_server.ServerState()
    limits = http_server.ServerLimits(read_timeout=None, idle_timeout=30, max_body_size=max_body_size)
    server = await asyncio.get_running_loop().create_server(
        lambda: http_server.HttpServerProtocol(handler, state, limits), "127.0.0.1", 0
    )
    return state, server, server.sockets[0].getsockname()[1]


async def exchange(
    port: int, data: bytes, *, until_received: bytes | None = b"\r\n\r\n"
) -> tuple[asyncio.StreamWriter, bytes]:
    """Sends `data` and reads until `until_received` has come (None: reads nothing); the connection stays
    open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    while until_received is not None and until_received not in received:
        received += await reader.read(65536)
    return writer, received


async def until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not get there")


def without_collector(scenario):
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(scenario())
    finally:
        gc.enable()


async def echo(request: http_server.HttpRequest) -> http_server.HttpResponse:
    return http_server.HttpResponse(200, b"%d" % len(request.body), b"text/plain")


def test_a_kept_alive_connection_holds_no_body_once_its_request_is_answered():
    async def scenario():
        state, server, port = await serve(echo)
        writer, answer = await exchange(port, post(b"x" * 300_000), until_received=b"300000")
        (connection,) = state.connections
        held = list(connection._body)
        writer.close()
        server.close()
        return answer, held

    answer, held = without_collector(scenario)
    assert answer.startswith(b"HTTP/1.1 200")
    assert held == []


def test_a_body_refused_as_too_large_is_let_go_as_it_is_refused():
    async def scenario():
        state, server, port = await serve(echo, max_body_size=100_000)
        head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = b"".join(b"%x\r\n%s\r\n" % (50_000, b"x" * 50_000) for _ in range(3))
        writer, answer = await exchange(port, head + chunks)
        connections = list(state.connections)
        held = [list(connection._body) for connection in connections]
        writer.close()
        server.close()
        return answer, held

    answer, held = without_collector(scenario)
    assert answer.startswith(b"HTTP/1.1 413")
    assert held in ([], [[]])  # the connection may have closed already


def test_a_request_whose_client_left_is_let_go_with_its_connection():
    arrived = None
    requests: list[weakref.ref] = []

    async def waits_forever(request: http_server.HttpRequest) -> http_server.HttpResponse:
        requests.append(weakref.ref(request))
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async def scenario():
        nonlocal arrived
        arrived = asyncio.Event()
        state, server, port = await serve(waits_forever)
        writer, _ = await exchange(port, post(b"x" * 300_000), until_received=None)
        await arrived.wait()
        writer.close()
        await until(lambda: not state.connections)
        server.close()

    without_collector(scenario)
    assert requests[0]() is None


def test_a_client_that_sends_a_whole_body_over_the_limit_before_reading_gets_the_413():
    """Most HTTP clients (and the gateway, forwarding a body) send the whole body before they read: the
    server drops the rest of a body whose length was declared, rather than resetting the connection
    once it has dropped a few MiB of it, which would reach the client before the 413 could."""
    body = b"x" * (16 * 1024 * 1024)

    def send_then_read(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(post(body))
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    async def scenario() -> bytes:
        _, server, port = await serve(echo, max_body_size=1024 * 1024)
        answer = await asyncio.to_thread(send_then_read, port)
        server.close()
        return answer

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("how", ["reset", "closed"])
def test_a_grpc_call_the_client_gave_up_is_let_go(how):
    """A call cancelled by its client (a deadline resets its stream) or by its connection's end: the
    cancelled task's frames hold the call and its request; the server lets go of the task."""
    arrived = None
    requests: list[weakref.ref] = []

    async def waits_forever(request: H2Request) -> H2Response:
        requests.append(weakref.ref(request))
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    def call_then_give_up(port: int, called: threading.Event, gave_up: threading.Event) -> None:
        client = RawH2(port)
        stream_id = client.start_call(grpc_frame(b"x" * 300_000))
        called.wait(30)
        if how == "reset":
            client.conn.reset_stream(stream_id)
            client.flush()
            gave_up.wait(30)
        client.close()

    async def scenario():
        nonlocal arrived
        arrived = asyncio.Event()
        connections: set = set()
        limits = http2_server.ServerLimits(
            max_body_size=1 << 20,
            too_large_response=lambda limit, headers: H2Response(hpack.encode([(b":status", b"413")])),
            failure_response=lambda exc: H2Response(hpack.encode([(b":status", b"500")])),
        )
        server = await asyncio.get_running_loop().create_server(
            lambda: http2_server.Http2ServerProtocol(waits_forever, connections, limits), "127.0.0.1", 0
        )
        called, gave_up = threading.Event(), threading.Event()
        client = asyncio.create_task(
            asyncio.to_thread(call_then_give_up, server.sockets[0].getsockname()[1], called, gave_up)
        )
        await arrived.wait()
        called.set()
        await until(lambda: requests[0]() is None)
        gave_up.set()
        await client
        server.close()

    without_collector(scenario)
