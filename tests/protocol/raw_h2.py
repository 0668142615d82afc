"""A blocking HTTP/2 client on the `h2` library, for driving the gRPC port frame by frame.

grpcio hides the transport; these tests need to set the client's windows, read slowly, send pings,
malformed frames and unusual headers, and see exactly what the server sends back.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.http2 import frames, hpack

MODEL_INFER = b"/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Answer:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    reset_code: int | None = None

    @property
    def status(self) -> dict[bytes, bytes]:
        """grpc-status and grpc-message, from the trailers or a trailers-only answer."""
        return self.trailers or self.headers

    def message(self) -> pb.ModelInferResponse:
        compressed, length = struct.unpack_from(">BL", self.body)
        assert compressed == 0 and len(self.body) == 5 + length
        return pb.ModelInferResponse.FromString(bytes(self.body[5:]))


def grpc_frame(message: bytes) -> bytes:
    return struct.pack(">BL", 0, len(message)) + message


class RawH2:
    def __init__(self, port: int, settings: dict | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events: list = []
        self.answers: dict[int, Answer] = {}
        self.ended: set[int] = set()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start_call(self, body: bytes, path: bytes = MODEL_INFER, extra: list | None = None) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"localhost"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *(extra or []),
        ]
        self.conn.send_headers(stream_id, headers)
        self.answers[stream_id] = Answer()
        view = memoryview(body)
        while True:  # as the server's windows allow
            size = min(
                len(view), self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if size == 0 and view:
                self.flush()
                self.receive()
                continue
            self.conn.send_data(stream_id, view[:size].tobytes(), end_stream=size == len(view))
            view = view[size:]
            if not view:
                break
        self.flush()
        return stream_id

    def receive(self, acknowledge: bool = True) -> list:
        """Read once from the socket; return the events (and answer the data, unless told not to)."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        events = self.conn.receive_data(data)
        for event in events:
            self.events.append(event)
            answer = self.answers.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                answer.headers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                answer.body += event.data
                if acknowledge:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                answer.trailers = dict(event.headers)
            elif isinstance(event, h2.events.StreamReset):
                answer.reset_code = event.error_code
                self.ended.add(event.stream_id)
            if isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
        self.flush()
        return events

    def wait_for_settings(self) -> None:
        """Until the server's SETTINGS have arrived."""
        while not any(isinstance(event, h2.events.RemoteSettingsChanged) for event in self.events):
            self.receive()

    def wait_for_goaway(self) -> int:
        """Until the server ends the connection; returns its GOAWAY's error code."""
        while True:
            for event in self.receive():
                if isinstance(event, h2.events.ConnectionTerminated):
                    return event.error_code

    def wait(self, stream_id: int) -> Answer:
        while stream_id not in self.ended:
            self.receive()
        return self.answers[stream_id]

    def close(self) -> None:
        self.sock.close()


class RawFrames:
    """A client that writes whatever frames it is given and reads the server's frames one by one.

    Unlike `RawH2`, nothing checks what is sent: this is the attacker's side of the connection. Its
    receive windows are as large as HTTP/2 allows, so the server's answers never wait for it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._buffer = b""
        self.sock.sendall(
            frames.PREFACE
            + frames.settings({frames.INITIAL_WINDOW_SIZE: frames.MAX_WINDOW})
            + frames.window_update(0, frames.MAX_WINDOW - frames.DEFAULT_WINDOW)
        )

    def send(self, *data: bytes) -> None:
        self.sock.sendall(b"".join(data))

    def acknowledge_settings(self) -> None:
        """Reads up to the server's SETTINGS and acknowledges them."""
        self.until(lambda kind, flags, stream, payload: kind == frames.SETTINGS and not flags & frames.ACK)
        self.send(frames.frame(frames.SETTINGS, frames.ACK, 0))

    def next_frame(self) -> tuple[int, int, int, bytes] | None:
        """(type, flags, stream id, payload) of the server's next frame; None once it closed."""
        while True:
            if len(self._buffer) >= 9:
                high, low, kind, flags, stream = frames.HEADER.unpack_from(self._buffer)
                length = high << 16 | low
                if len(self._buffer) >= 9 + length:
                    payload = self._buffer[9 : 9 + length]
                    self._buffer = self._buffer[9 + length :]
                    return kind, flags, stream & 0x7FFFFFFF, payload
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self._buffer += data

    def until(self, wanted) -> tuple[int, int, int, bytes]:
        """Reads frames up to the first for which `wanted(kind, flags, stream, payload)` holds."""
        while True:
            found = self.next_frame()
            if found is None:
                raise ConnectionError("the server closed the connection")
            if wanted(*found):
                return found

    def goaway(self) -> int:
        """Reads up to the server's GOAWAY; returns its error code."""
        payload = self.until(lambda kind, *_: kind == frames.GOAWAY)[3]
        return struct.unpack_from(">L", payload, 4)[0]

    def closed(self) -> bool:
        """Reads until the server closes the connection (True) or sends a GOAWAY (False)."""
        while True:
            found = self.next_frame()
            if found is None:
                return True
            if found[0] == frames.GOAWAY:
                return False

    def close(self) -> None:
        self.sock.close()


def call_headers(
    path: bytes = MODEL_INFER, extra: list | None = None, authority: bytes = b"localhost"
) -> bytes:
    """The HPACK block of a gRPC call's request headers."""
    return hpack.encode(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *(extra or []),
        ]
    )


def whole_call(
    stream_id: int, message: bytes, extra: list | None = None, authority: bytes = b"localhost"
) -> bytes:
    """A unary call in frames: its headers, then its one message (in frames of HTTP/2's default
    largest size), ending the stream."""
    body = grpc_frame(message)
    data = [
        frames.frame(
            frames.DATA,
            frames.END_STREAM if start + 16384 >= len(body) else 0,
            stream_id,
            body[start : start + 16384],
        )
        for start in range(0, len(body), 16384)
    ]
    return b"".join(
        [
            frames.frame(
                frames.HEADERS, frames.END_HEADERS, stream_id, call_headers(extra=extra, authority=authority)
            ),
            *data,
        ]
    )


def call_status(client: RawFrames, stream_id: int) -> dict[bytes, bytes]:
    """The grpc-status and grpc-message the server ends `stream_id` with (HPACK decoded)."""
    decoder = hpack.Decoder()
    status: dict[bytes, bytes] = {}
    while True:
        kind, flags, stream, payload = client.until(lambda kind, flags, stream, payload: stream == stream_id)
        if kind == frames.HEADERS:
            status.update(decoder.decode(frames.strip_padding(flags, payload)))
        if kind == frames.RST_STREAM or flags & frames.END_STREAM:
            return status
