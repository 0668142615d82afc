"""The gRPC port under attack: each attack is sent as raw frames, answered as docs/security.md says
(GOAWAY ENHANCE_YOUR_CALM or a protocol error, the connection closed), and then a normal call on a new
connection is served."""

from __future__ import annotations

import contextlib
import socket
import struct

import grpc
import pytest

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2 import hpack
from modelplane.protocol.lingering import LINGER_BYTES
from tests.protocol.raw_h2 import RawFrames, call_headers, call_status, whole_call
from tests.server.processes import start_models_server
from tests.server.test_grpc_transport import echo_request

PROTOCOL_ERROR, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x1, 0x9, 0xB


@pytest.fixture(scope="module")
def short_timeouts_server():
    server = start_models_server("--body-timeout", "1", "--idle-timeout", "1")
    yield server
    server.stop()


def served(server) -> None:
    """A normal call, on a new connection, is answered correctly."""
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        answer = InferenceStub(channel).ModelInfer(echo_request(b"still here"), timeout=10)
    assert answer.raw_output_contents[0] == b"still here"
    assert server.process.poll() is None


@contextlib.contextmanager
def attacker(server):
    client = RawFrames(server.grpc_port)
    try:
        yield client
    finally:
        client.close()


def test_rapid_reset_ends_the_connection(test_models_server):
    """CVE-2023-44487: streams opened and reset at once, faster than any is answered."""
    block = call_headers()
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        stream_id = 1
        with contextlib.suppress(OSError):
            for _ in range(30):  # 3,000 streams, far more than the budget of 1,000
                batch = []
                for _ in range(100):
                    batch.append(f.frame(f.HEADERS, f.END_HEADERS, stream_id, block))
                    batch.append(f.rst_stream(stream_id, f.CANCEL))
                    stream_id += 2
                client.send(*batch)
        assert client.goaway() == ENHANCE_YOUR_CALM
    served(test_models_server)


def test_resets_between_answered_calls_are_fine(test_models_server):
    """A client may cancel calls, however many, as long as it also completes some."""
    message = echo_request(b"x").SerializeToString()
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        for number in range(2000):  # twice the resets the budget holds, each after an answered call
            answered, cancelled = 4 * number + 1, 4 * number + 3
            client.send(
                whole_call(answered, message),
                f.frame(f.HEADERS, f.END_HEADERS, cancelled, call_headers()),
                f.rst_stream(cancelled, f.CANCEL),
            )
            assert call_status(client, answered)[b"grpc-status"] == b"0"


def test_a_flood_of_empty_continuation_frames_ends_the_connection(test_models_server):
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        empty = f.frame(f.CONTINUATION, 0, 1, b"")
        with contextlib.suppress(OSError):
            client.send(f.frame(f.HEADERS, 0, 1, call_headers()))
            for _ in range(100):
                client.send(empty * 1000)
        assert client.goaway() == ENHANCE_YOUR_CALM
    served(test_models_server)


def test_a_block_of_table_references_is_not_decoded_past_the_limit(test_models_server):
    """A 4 KB table entry referenced 60,000 times would decode to 240 MB; decoding stops at 128 KiB."""
    entry = b"\x40" + hpack.encode_integer(5, 7) + b"x-big" + hpack.encode_integer(4000, 7) + b"v" * 4000
    bomb = call_headers() + entry + b"\xbe" * 60_000  # index 62: the newest entry
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        client.send(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, bomb))
        assert client.goaway() == ENHANCE_YOUR_CALM
    served(test_models_server)


def test_a_header_list_above_the_advertised_size_resets_only_its_stream(test_models_server):
    """Between the limit (64 KiB) and twice it, the list is decoded (the table stays in step) and its
    stream refused; the connection serves on."""
    message = echo_request(b"after").SerializeToString()
    large = [(b"x-note-%d" % i, b"n" * 1000) for i in range(80)]  # about 82 KB decoded
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        client.send(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, call_headers(extra=large)))
        kind, _, _, payload = client.until(lambda kind, flags, stream, payload: stream == 1)
        assert (kind, struct.unpack(">L", payload)[0]) == (f.RST_STREAM, ENHANCE_YOUR_CALM)
        client.send(whole_call(3, message))
        assert call_status(client, 3)[b"grpc-status"] == b"0"


@pytest.mark.parametrize(
    ("updates", "detail"),
    [(b"\x3f\xe1\x3f", "a size above the one allowed"), (b"\x20\x20\x20", "three updates in one block")],
)
def test_table_size_updates_the_decoder_must_refuse(test_models_server, updates, detail):
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        client.send(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, updates + call_headers()))
        assert client.goaway() == COMPRESSION_ERROR, detail
    served(test_models_server)


FLOODS = {
    "PING": f.frame(f.PING, 0, 0, b"12345678"),
    "SETTINGS": f.settings({}),
    "WINDOW_UPDATE": f.window_update(1, 1),
    "PRIORITY": f.frame(f.PRIORITY, 0, 1, b"\x00\x00\x00\x00\x10"),
    "unknown type": f.frame(0x20, 0, 0, b"?"),
    "RST_STREAM of a closed stream": f.rst_stream(1, f.CANCEL),
    "empty DATA": f.frame(f.DATA, 0, 1, b""),
}


@pytest.mark.parametrize("kind", FLOODS)
def test_a_flood_of_frames_that_move_nothing_ends_the_connection(test_models_server, kind):
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        if kind == "empty DATA":
            client.send(f.frame(f.HEADERS, f.END_HEADERS, 1, call_headers()))
        elif kind == "RST_STREAM of a closed stream":
            client.send(whole_call(1, echo_request(b"x").SerializeToString()))
            call_status(client, 1)
        with contextlib.suppress(OSError):
            for _ in range(10):
                client.send(FLOODS[kind] * 500)
        assert client.goaway() == ENHANCE_YOUR_CALM
    served(test_models_server)


def test_a_client_that_does_not_read_stops_being_read(test_models_server):
    """The answers and PING acknowledgements it is owed stop the reading instead of queueing up."""
    payload = bytes(range(256)) * (80 * 1024)  # a 20 MiB answer, far above the 1 MiB it may leave unread
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        client.send(whole_call(1, echo_request(payload).SerializeToString()))
        body = bytearray(client.until(lambda kind, flags, stream, data: kind == f.DATA)[3])
        # The answer is written: the server stopped reading, so the pings fill the socket buffers.
        # A small send buffer keeps the flood well under what the server drops once it ends the
        # connection (LINGER_BYTES): a flood beyond that is cut with a reset, which may overtake the
        # end of the answer (the kernel's own send buffer grows past 4 MiB here).
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        client.sock.setblocking(False)
        pings = f.frame(f.PING, 0, 0, b"12345678") * 4000
        flood = 0
        with pytest.raises(BlockingIOError):
            while True:
                flood += client.sock.send(pings)
        assert flood < LINGER_BYTES
        client.sock.setblocking(True)
        while True:  # read, the answer comes whole
            kind, flags, stream, data = client.next_frame()
            if kind == f.DATA:
                body += data
            elif kind == f.HEADERS and flags & f.END_STREAM:
                break
        assert pb.ModelInferResponse.FromString(bytes(body[5:])).raw_output_contents[0] == payload
        # The pings read after it spend the control-frame budget: the connection ends.
        assert not any(frame[0] == f.DATA for frame in iter(client.next_frame, None))
    served(test_models_server)


def test_streams_beyond_the_advertised_limit_once_it_is_known(test_models_server):
    block = call_headers()
    with attacker(test_models_server) as client:
        client.acknowledge_settings()
        client.send(*(f.frame(f.HEADERS, f.END_HEADERS, 2 * n + 1, block) for n in range(1025)))
        assert client.goaway() == PROTOCOL_ERROR
    served(test_models_server)


def test_streams_beyond_the_limit_before_it_is_known_are_refused(test_models_server):
    """Until the client has acknowledged the server's SETTINGS it may not know the limit yet."""
    block = call_headers()
    with attacker(test_models_server) as client:
        client.send(*(f.frame(f.HEADERS, f.END_HEADERS, 2 * n + 1, block) for n in range(1025)))
        kind, _, _, payload = client.until(lambda kind, flags, stream, payload: stream == 2049)
        assert (kind, struct.unpack(">L", payload)[0]) == (f.RST_STREAM, f.REFUSED_STREAM)


def test_a_message_that_stops_arriving_is_cancelled(short_timeouts_server):
    """A client declares a 1 MB message, sends some of it and stalls: the body timeout answers it."""
    declared = struct.pack(">BL", 0, 1_000_000) + b"x" * 1000
    message = echo_request(b"after").SerializeToString()
    with attacker(short_timeouts_server) as client:
        client.acknowledge_settings()
        client.send(f.frame(f.HEADERS, f.END_HEADERS, 1, call_headers()), f.frame(f.DATA, 0, 1, declared))
        status = call_status(client, 1)
        assert status[b"grpc-status"] == b"1"  # CANCELLED
        assert b"stopped arriving" in status[b"grpc-message"]
        client.send(whole_call(3, message))
        assert call_status(client, 3)[b"grpc-status"] == b"0"
    served(short_timeouts_server)


def test_an_idle_connection_is_sent_away(short_timeouts_server):
    with attacker(short_timeouts_server) as client:
        client.acknowledge_settings()
        assert client.goaway() == 0  # NO_ERROR: gRPC clients reconnect when they next need to
        assert client.closed()
    served(short_timeouts_server)


def test_a_half_sent_preface_is_closed(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.grpc_port), timeout=30) as sock:
        sock.sendall(f.PREFACE[:10])
        assert sock.recv(100) == b""
    served(short_timeouts_server)
