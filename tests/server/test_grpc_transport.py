"""The gRPC port's HTTP/2 transport: flow control, framing, concurrency, limits, deadlines, shutdown.

Each test runs a real server process and speaks to it with grpcio or, where the transport itself is
under test, frame by frame with the `h2` library (tests/protocol/raw_h2.py).
"""

from __future__ import annotations

import contextlib
import gzip
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import h2.events
import h2.settings
import numpy as np
import pytest

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.protocol.http2 import frames, hpack
from tests.protocol.raw_h2 import Answer, RawFrames, RawH2, call_headers, call_status, grpc_frame, whole_call
from tests.server.processes import start_models_server

Tensor = pb.ModelInferRequest.InferInputTensor


def echo_request(payload: bytes, model: str = "echo", **parameters: float) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(
        model_name=model, inputs=[Tensor(name="blob", datatype="UINT8", shape=[len(payload)])]
    )
    message.raw_input_contents.append(payload)
    for key, value in parameters.items():
        message.parameters[key].double_param = value
    return message


@pytest.fixture(scope="module")
def small_limit_server():
    server = start_models_server("--grpc-max-message-length", "4096")
    yield server
    server.stop()


def test_a_large_answer_follows_a_slow_readers_small_windows(test_models_server):
    payload = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    client = RawH2(
        test_models_server.grpc_port,
        {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000, h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384},
    )
    try:
        stream_id = client.start_call(grpc_frame(echo_request(payload).SerializeToString()))
        # Nothing is acknowledged at first: the server must stop at the windows, not overrun them
        # (h2 ends the connection with a FLOW_CONTROL_ERROR if it does).
        while not client.answers[stream_id].body:
            client.receive(acknowledge=False)
        client.sock.settimeout(0.3)  # a moment more, in which nothing beyond the window may come
        with contextlib.suppress(TimeoutError):
            while True:
                client.receive(acknowledge=False)
        received = len(client.answers[stream_id].body)
        assert 0 < received <= 1000
        client.sock.settimeout(10)
        client.conn.acknowledge_received_data(received, stream_id)
        client.flush()
        answer = client.wait(stream_id)
        assert answer.status[b"grpc-status"] == b"0"
        assert answer.message().raw_output_contents[0] == payload
    finally:
        client.close()


def test_many_calls_in_flight_on_one_channel(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        stub = InferenceStub(channel)
        payloads = [bytes([i]) * (i * 37 + 1) for i in range(64)]
        futures = [stub.ModelInfer.future(echo_request(p)) for p in payloads]
        for payload, future in zip(payloads, futures, strict=True):
            assert future.result(timeout=30).raw_output_contents[0] == payload


def test_a_slow_call_holds_up_no_other(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        stub = InferenceStub(channel)
        slow = [stub.ModelInfer.future(echo_request(b"x", model="slow", seconds=5.0)) for _ in range(2)]
        # Answered while both slow calls, on the same connection, are still under way.
        assert stub.ModelInfer(echo_request(b"quick"), timeout=30).raw_output_contents[0] == b"quick"
        assert not any(future.done() for future in slow)
        for future in slow:
            assert future.result(timeout=30).raw_output_contents[0] == b"x"


def test_gzip_messages_are_inflated(test_models_server):
    payload = b"modelplane " * 1000
    with grpc.insecure_channel(
        f"127.0.0.1:{test_models_server.grpc_port}", compression=grpc.Compression.Gzip
    ) as channel:
        answer = InferenceStub(channel).ModelInfer(echo_request(payload), timeout=10)
    assert answer.raw_output_contents[0] == payload


@pytest.mark.parametrize(
    ("method", "message", "code", "detail"),
    [
        ("NoSuchMethod", b"", grpc.StatusCode.UNIMPLEMENTED, "NoSuchMethod"),
        ("ModelInfer", b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT, "cannot be parsed"),
    ],
)
def test_calls_the_service_cannot_take(test_models_server, method, message, code, detail):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        with pytest.raises(grpc.RpcError) as caught:
            call(message, timeout=10)
    assert caught.value.code() == code
    assert detail in caught.value.details()


def test_the_deadline_a_client_sends_ends_the_call(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        message = echo_request(b"x", model="slow", seconds=3.0).SerializeToString()
        stream_id = client.start_call(grpc_frame(message), extra=[(b"grpc-timeout", b"300m")])
        answer = client.wait(stream_id)
        # The model would have answered OK after 3 s: only the deadline gives this status.
        assert answer.status[b"grpc-status"] == b"4"  # DEADLINE_EXCEEDED
    finally:
        client.close()


def test_messages_above_the_limit_are_resource_exhausted(small_limit_server):
    with grpc.insecure_channel(f"127.0.0.1:{small_limit_server.grpc_port}") as channel:
        stub = InferenceStub(channel)
        assert stub.ModelInfer(echo_request(b"a" * 1000), timeout=10).raw_output_contents[0] == b"a" * 1000
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(echo_request(b"a" * 100_000), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "4096" in caught.value.details()
        # The connection is still good after the refused call.
        assert stub.ModelInfer(echo_request(b"b"), timeout=10).raw_output_contents[0] == b"b"


# The model server's default limit; a server that gathered a too-large message before refusing it
# would hold this much, and one that refuses it from its length prefix holds next to nothing.
DEFAULT_LIMIT = 64 * 1024 * 1024


@pytest.fixture
def fresh_server():
    """A server of its own, so that the most memory it has held is this test's doing alone."""
    server = start_models_server()
    yield server
    server.stop()


@pytest.mark.parametrize("sent", ["the first frame", "all of it"])
def test_a_message_declared_above_the_limit_is_refused_from_its_prefix(fresh_server, sent):
    """As grpcio: RESOURCE_EXHAUSTED as soon as the length prefix declares too much, and the stream is
    reset, so the rest is never gathered; what the client still sends is dropped and the connection
    serves on."""
    declared = 300 * 1024 * 1024
    before = fresh_server.peak_memory()
    client = RawFrames(fresh_server.grpc_port)
    try:
        client.acknowledge_settings()
        first = struct.pack(">BL", 0, declared) + bytes(16384 - 5)
        client.send(
            frames.frame(frames.HEADERS, frames.END_HEADERS, 1, call_headers()),
            frames.frame(frames.DATA, 0, 1, first),
        )
        status = call_status(client, 1)
        assert status[b"grpc-status"] == b"8"  # RESOURCE_EXHAUSTED
        assert status[b"grpc-message"] == b"the request message is %d bytes, above the limit of %d" % (
            declared,
            DEFAULT_LIMIT,
        )
        kind, _, _, payload = client.until(lambda kind, flags, stream, payload: stream == 1)
        assert (kind, struct.unpack(">L", payload)[0]) == (frames.RST_STREAM, frames.NO_ERROR)
        if sent == "all of it":
            chunk = bytes(512 * 1024)
            rest = declared + 5 - len(first)
            for _ in range(rest // len(chunk)):
                client.send(frames.frame(frames.DATA, 0, 1, chunk))
            client.send(frames.frame(frames.DATA, frames.END_STREAM, 1, bytes(rest % len(chunk))))
        client.send(whole_call(3, echo_request(b"next").SerializeToString()))
        assert call_status(client, 3)[b"grpc-status"] == b"0"
    finally:
        client.close()
    assert fresh_server.peak_memory() - before < DEFAULT_LIMIT // 4


def test_grpcio_sending_a_message_above_the_limit_gets_resource_exhausted(fresh_server):
    message = echo_request(b"m" * (100 * 1024 * 1024))
    before = fresh_server.peak_memory()
    with grpc.insecure_channel(f"127.0.0.1:{fresh_server.grpc_port}") as channel:
        stub = InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(message, timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert caught.value.details() == (
            f"the request message is {message.ByteSize()} bytes, above the limit of {DEFAULT_LIMIT}"
        )
        # The same connection serves on.
        assert stub.ModelInfer(echo_request(b"next"), timeout=10).raw_output_contents[0] == b"next"
    assert fresh_server.peak_memory() - before < DEFAULT_LIMIT // 4


def test_a_compressed_message_that_inflates_above_the_limit_is_refused(small_limit_server):
    inflated = echo_request(b"\0" * 1_000_000).SerializeToString()
    deflated = gzip.compress(inflated)
    client = RawH2(small_limit_server.grpc_port)
    try:
        body = struct.pack(">BL", 1, len(deflated)) + deflated
        stream_id = client.start_call(body, extra=[(b"grpc-encoding", b"gzip")])
        answer = client.wait(stream_id)
        assert answer.status[b"grpc-status"] == b"8"  # RESOURCE_EXHAUSTED
    finally:
        client.close()


def test_other_content_types_get_415(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        stream_id = client.conn.get_next_available_stream_id()
        client.answers[stream_id] = answer = Answer()
        client.conn.send_headers(
            stream_id,
            [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", b"/inference.GRPCInferenceService/ServerLive"),
                (b":authority", b"localhost"),
                (b"content-type", b"application/json"),
            ],
            end_stream=True,
        )
        client.flush()
        client.wait(stream_id)
        assert answer.headers[b":status"] == b"415"
    finally:
        client.close()


def test_pings_are_answered(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        client.conn.ping(b"modelpln")
        client.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            acks = [e for e in client.receive() if isinstance(e, h2.events.PingAckReceived)]
            if acks:
                assert acks[0].ping_data == b"modelpln"
                return
        pytest.fail("no PING acknowledgement")
    finally:
        client.close()


def test_a_protocol_error_ends_the_connection_with_goaway(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        # A HEADERS frame on an even (server-initiated) stream id.
        client.sock.sendall(struct.pack(">BHBBL", 0, 1, 0x1, 0x5, 2) + b"\x82")
        assert client.wait_for_goaway() == 1  # PROTOCOL_ERROR
    finally:
        client.close()
    # The server is still up for everyone else.
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        assert InferenceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=10).live


def test_http1_on_the_grpc_port_gets_a_readable_refusal(test_models_server):
    with socket.create_connection(("127.0.0.1", test_models_server.grpc_port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 505 ")
    assert b"HTTP/2 only (gRPC)" in answer


def test_a_stopping_server_finishes_the_calls_under_way():
    server = start_models_server("--grace-seconds", "10")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = InferenceStub(channel)
            # A first call connects the channel, so that the slow one starts when it is sent (on a
            # loaded machine, connecting alone could outlast the pause below).
            assert stub.ModelInfer(echo_request(b"warm", model="slow", seconds=0)).raw_output_contents
            future = stub.ModelInfer.future(echo_request(b"kept", model="slow", seconds=1.5))
            time.sleep(0.5)  # the call is under way
            stopper = threading.Thread(target=server.stop, kwargs={"sig": signal.SIGTERM})
            stopper.start()
            assert future.result(timeout=15).raw_output_contents[0] == b"kept"
            stopper.join(15)
        assert server.process.returncode == 0
    finally:
        server.stop()


def test_two_clients_in_threads_share_the_server(test_models_server):
    def calls(seed: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
            stub = InferenceStub(channel)
            for i in range(50):
                payload = bytes([seed, i]) * (i + 1)
                assert stub.ModelInfer(echo_request(payload), timeout=10).raw_output_contents[0] == payload

    with ThreadPoolExecutor(4) as pool:
        for result in [pool.submit(calls, seed) for seed in range(4)]:
            result.result()


def test_header_blocks_in_continuation_frames_and_padded_data(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        client.wait_for_settings()  # the server's, which raise the frame size; set it back below
        client.conn.max_outbound_frame_size = 16384  # so a large header block is split
        stream_id = client.conn.get_next_available_stream_id()
        client.answers[stream_id] = Answer()
        metadata = [(b"x-note-%d" % i, b"n" * 1000) for i in range(40)]  # about 40 KB of headers
        client.conn.send_headers(
            stream_id,
            [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", b"/inference.GRPCInferenceService/ModelInfer"),
                (b":authority", b"localhost"),
                (b"content-type", b"application/grpc"),
                *metadata,
            ],
        )
        message = grpc_frame(echo_request(b"padded").SerializeToString())
        client.conn.send_data(stream_id, message, end_stream=True, pad_length=17)
        client.flush()
        answer = client.wait(stream_id)
        assert answer.status[b"grpc-status"] == b"0"
        assert answer.message().raw_output_contents[0] == b"padded"
    finally:
        client.close()


def test_garbage_on_a_connection_never_takes_the_server_down(test_models_server):
    rng = np.random.default_rng(3)
    for round_number in range(30):
        with socket.create_connection(("127.0.0.1", test_models_server.grpc_port), timeout=10) as sock:
            noise = rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
            if round_number % 2:  # after a proper preface, so the frame reader sees it
                noise = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + noise
            with contextlib.suppress(OSError):
                sock.sendall(noise)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        answer = InferenceStub(channel).ModelInfer(echo_request(b"still here"), timeout=10)
    assert answer.raw_output_contents[0] == b"still here"
    assert test_models_server.process.poll() is None


def test_an_oversized_header_block_ends_the_connection(test_models_server):
    client = RawH2(test_models_server.grpc_port)
    try:
        client.wait_for_settings()
        # Written as a raw frame: h2's own (Huffman) encoding of so large a value takes many seconds.
        block = hpack.encode([(b":method", b"POST"), (b":path", b"/x"), (b"x-huge", b"h" * 300_000)])
        client.sock.sendall(frames.frame(frames.HEADERS, frames.END_HEADERS | frames.END_STREAM, 1, block))
        assert client.wait_for_goaway() == 0xB  # ENHANCE_YOUR_CALM
    finally:
        client.close()
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        assert InferenceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=10).live


def test_a_bug_in_a_model_is_internal_with_its_message_and_the_server_serves_on(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        stub = InferenceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(echo_request(b"x", model="buggy"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "ZeroDivisionError" in caught.value.details()
        assert stub.ModelInfer(echo_request(b"after"), timeout=10).raw_output_contents[0] == b"after"
