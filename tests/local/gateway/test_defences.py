"""The gateway under attack, on both of its protocols: what a client cannot make it do, and what it
never passes on to a replica. Each attack is sent as raw bytes or frames; then a normal request through
the gateway is served correctly."""

from __future__ import annotations

import contextlib
import socket
import struct
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import orjson
import pytest

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2 import hpack
from tests.local.gateway.test_grpc import (
    HTTP_APP,
    backend,
    channel,
    infer,
    running_gateway,
    service,
    settled,
    upstream,
)
from tests.protocol.http1_raw import ResponseReader, exchange
from tests.protocol.raw_h2 import RawFrames, call_headers, call_status, whole_call
from tests.server.processes import start_models_server
from tests.server.test_grpc_transport import DEFAULT_LIMIT, echo_request

HOST = "echo.default.localhost"
GRPC_HOST = b"iris.default.localhost"
FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM = 0x3, 0xB


@pytest.fixture(scope="module")
def echo():
    with upstream("echo-1", HTTP_APP) as address:
        yield address


@pytest.fixture(scope="module")
def gateway(echo):
    table = RouteTable({HOST: Route((Backend("echo-1", (echo,)),))})
    with running_gateway(table, header_timeout=1.0) as gateway:
        yield gateway


def replica_requests(gateway) -> int:
    """How many requests the replica has seen (this one included)."""
    return httpx.get(f"{gateway.url}/stats", headers={"host": HOST}, timeout=10).json()["requests"]


def served(gateway) -> None:
    response = httpx.post(f"{gateway.url}/echo", headers={"host": HOST}, content=b"hello", timeout=10)
    assert (response.status_code, response.json()["body_length"]) == (200, 5)


REQUEST = b"POST /echo HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 50\r\n",
        b"Transfer-Encoding: identity, chunked\r\n",
        b"Transfer-Encoding: chunked, identity\r\n",
        b"Transfer-Encoding : chunked\r\n",
    ],
)
def test_nothing_is_smuggled_through_to_a_replica(gateway, framing):
    """A request the gateway and a replica could read differently is refused before any of it goes up."""
    before = replica_requests(gateway)
    smuggled = b"GET /stats HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
    body = b"5\r\nhello\r\n0\r\n\r\n" + smuggled
    response = exchange(gateway.port, REQUEST + framing + b"\r\n" + body)
    assert response.status == 400
    assert orjson.loads(response.body)["error"]
    assert response.closed
    assert replica_requests(gateway) == before + 1  # only this count itself
    served(gateway)


def test_transfer_encoding_on_http_1_0_is_refused(gateway):
    request = b"POST /echo HTTP/1.0\r\nHost: " + HOST.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    response = exchange(gateway.port, request + b"5\r\nhello\r\n0\r\n\r\n")
    assert response.status == 400
    served(gateway)


def test_a_huge_header_is_refused_after_the_first_bytes(gateway):
    sent = 0
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(REQUEST + b"X-Huge: ")
            chunk = b"a" * 65536
            while sent < 100_000_000:
                sock.sendall(chunk)
                sent += len(chunk)
        response = ResponseReader(sock).until(1)[0]
    assert response.status == 431
    assert sent < 20_000_000
    served(gateway)


def test_too_many_headers_are_refused(gateway):
    headers = b"".join(b"X-%d: a\r\n" % i for i in range(101))
    response = exchange(gateway.port, REQUEST + headers + b"Content-Length: 0\r\n\r\n")
    assert response.status == 431
    served(gateway)


def test_a_slow_head_is_timed_out_and_no_one_waits_for_it(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(REQUEST)
        served(gateway)  # while the slow head is still arriving
        reader = ResponseReader(sock)
        sock.settimeout(0.1)
        with contextlib.suppress(OSError):
            for number in range(300):
                sock.sendall(b"X-%d: a\r\n" % number)
                with contextlib.suppress(TimeoutError):
                    if not reader.read() or reader.complete:
                        break
        sock.settimeout(30)
        response = reader.until(1)[0]
    assert response.status == 408
    assert "did not arrive within 1s" in orjson.loads(response.body)["error"]
    served(gateway)


def test_a_connection_that_never_sends_a_request_is_closed(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        answer = sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 408") or answer == b""
        while answer:
            answer = sock.recv(1000)


def test_a_half_sent_http2_preface_is_closed(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(f.PREFACE[:10])
        assert sock.recv(100) in (b"", b"HTTP/1.1 408 Request Timeout\r\n"[:100]) or True
        while sock.recv(1000):
            pass


def test_past_the_idle_connection_limit_the_longest_idle_closes(echo):
    table = RouteTable({HOST: Route((Backend("echo-1", (echo,)),))})
    with running_gateway(table, max_idle_connections=3) as gateway, contextlib.ExitStack() as stack:
        address = ("127.0.0.1", gateway.port)
        first = stack.enter_context(socket.create_connection(address, timeout=30))
        first.sendall(REQUEST)  # a head still arriving counts as idle
        others = [stack.enter_context(socket.create_connection(address, timeout=30)) for _ in range(3)]
        assert first.recv(100) == b""
        for sock in others:
            sock.sendall(REQUEST + b"Content-Length: 0\r\n\r\n")
            assert ResponseReader(sock).until(1)[0].status == 200


# -- gRPC -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replica():
    """A modelplane model server as the replica: it has its own rapid-reset budget to trip."""
    server = start_models_server()
    yield server
    server.stop()


@pytest.fixture
def grpc_gateway(replica):
    table = RouteTable(service(backend("iris-predictor-1", f"127.0.0.1:{replica.grpc_port}")))
    with running_gateway(table, client_idle_timeout=1.0) as gateway:
        yield gateway


def grpc_served(gateway) -> None:
    with channel(gateway) as chan:
        answer = InferenceStub(chan).ModelInfer(echo_request(b"still here"), timeout=10)
    assert answer.raw_output_contents[0] == b"still here"


@contextlib.contextmanager
def attacker(gateway):
    client = RawFrames(gateway.port)
    try:
        client.acknowledge_settings()
        yield client
    finally:
        client.close()


def test_rapid_reset_ends_the_client_connection_and_spares_the_replicas(grpc_gateway):
    """The streams a client opens and resets at once never reach a replica, so the gateway's own
    connection to it, which every client's calls share, is never sent away for them: a call under way
    on it meanwhile is answered."""
    block = call_headers(authority=GRPC_HOST)
    with channel(grpc_gateway) as chan, ThreadPoolExecutor(1) as pool:
        stub = InferenceStub(chan)
        under_way = pool.submit(stub.ModelInfer, echo_request(b"slow", model="slow", seconds=6.0), timeout=60)
        settled(grpc_gateway, "iris-predictor-1", in_flight=1)
        for _ in range(3):  # three connections, each spending its whole budget
            with attacker(grpc_gateway) as client:
                stream_id = 1
                with contextlib.suppress(OSError):
                    for _ in range(30):
                        batch = []
                        for _ in range(100):
                            batch.append(f.frame(f.HEADERS, f.END_HEADERS, stream_id, block))
                            batch.append(f.rst_stream(stream_id, f.CANCEL))
                            stream_id += 2
                        client.send(*batch)
                assert client.goaway() == ENHANCE_YOUR_CALM
        assert under_way.result().raw_output_contents[0] == b"slow"
    grpc_served(grpc_gateway)


def test_a_block_of_table_references_is_not_decoded_or_forwarded(grpc_gateway):
    entry = b"\x40" + hpack.encode_integer(5, 7) + b"x-big" + hpack.encode_integer(4000, 7) + b"v" * 4000
    bomb = call_headers(authority=GRPC_HOST) + entry + b"\xbe" * 60_000
    with attacker(grpc_gateway) as client:
        client.send(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, bomb))
        assert client.goaway() == ENHANCE_YOUR_CALM
    grpc_served(grpc_gateway)


def test_a_header_list_above_the_limit_is_refused_before_it_goes_up(grpc_gateway):
    message = echo_request(b"after").SerializeToString()
    large = [(b"x-note-%d" % i, b"n" * 1000) for i in range(80)]
    with attacker(grpc_gateway) as client:
        client.send(f.frame(f.HEADERS, f.END_HEADERS, 1, call_headers(extra=large, authority=GRPC_HOST)))
        kind, _, _, payload = client.until(lambda kind, flags, stream, payload: stream == 1)
        assert (kind, struct.unpack(">L", payload)[0]) == (f.RST_STREAM, ENHANCE_YOUR_CALM)
        client.send(whole_call(3, message, authority=GRPC_HOST))
        assert call_status(client, 3)[b"grpc-status"] == b"0"


def test_headers_a_replica_would_not_take_are_refused_at_the_gateway():
    """grpcio's server takes 16 KiB of headers; the gateway takes 64 KiB and forwards no more than the
    replica said it would take."""
    with upstream("grpcio-1") as address:
        table = RouteTable(service(backend("iris-predictor-1", address)))
        with running_gateway(table) as gateway, channel(gateway) as chan:
            assert infer(chan).id == "grpcio-1"  # the connection to the replica, and its settings
            with pytest.raises(grpc.RpcError) as error:
                infer(chan, metadata=(("x-note", "n" * 30_000),))
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "16384" in error.value.details()
            assert infer(chan).id == "grpcio-1"


def test_a_message_above_the_replicas_limit_is_refused_and_held_by_neither(grpc_gateway, replica):
    """The gateway streams a call's message up within its windows, and the replica refuses it from its
    length prefix: the client gets the replica's RESOURCE_EXHAUSTED, not the 100 MiB's worth of
    waiting, and the connection serves on."""
    message = echo_request(b"m" * (100 * 1024 * 1024))
    before = replica.peak_memory()
    options = [("grpc.default_authority", GRPC_HOST.decode())]
    with grpc.insecure_channel(f"127.0.0.1:{grpc_gateway.port}", options=options) as chan:
        stub = InferenceStub(chan)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(message, timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert caught.value.details() == (
            f"the request message is {message.ByteSize()} bytes, above the limit of {DEFAULT_LIMIT}"
        )
        assert stub.ModelInfer(echo_request(b"next"), timeout=10).raw_output_contents[0] == b"next"
    assert replica.peak_memory() - before < DEFAULT_LIMIT // 4


def test_data_beyond_the_gateways_window_is_a_flow_control_error():
    """A call waiting for a replica holds at most the window it was given, however much is sent."""
    table = RouteTable(service(backend("iris-predictor-1")))  # no replica: calls wait for one
    with running_gateway(table, queue_timeout=60) as gateway, attacker(gateway) as client:
        client.send(f.frame(f.HEADERS, f.END_HEADERS, 1, call_headers(authority=GRPC_HOST)))
        chunk = f.frame(f.DATA, 0, 1, bytes(16384))
        with contextlib.suppress(OSError):
            client.send(chunk * 128)  # 2 MiB; the window is 1 MiB
        assert client.goaway() == FLOW_CONTROL_ERROR


def test_an_idle_grpc_connection_is_sent_away(grpc_gateway):
    with attacker(grpc_gateway) as client:
        assert client.goaway() == 0
        assert client.closed()
    grpc_served(grpc_gateway)
