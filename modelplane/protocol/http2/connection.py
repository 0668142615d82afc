"""One HTTP/2 connection (cleartext, prior knowledge) on asyncio: frames in and out, flow control.

`Http2Connection` reads frames and keeps the connection's state: the peer's settings, both sides'
flow-control windows, which streams are open, HPACK's table. What a stream means is left to a subclass,
through the hooks `on_headers`, `on_data`, `on_reset`, `on_window_opened` and `on_goaway`. Both ends of
modelplane speak through it: the model server's gRPC port (server.py) and the gateway's gRPC proxy, to
clients and to replicas.

Received data is acknowledged (WINDOW_UPDATE) when the subclass says it has been used, so a relay
passes the other side's back-pressure on; with `auto_acknowledge` the windows stay open and only a
size limit bounds what a stream holds. Sent data follows the peer's windows and frame size: `window()`
says how much may go now, and `on_window_opened` when more may.

Frames are written once per turn of the event loop, all of them in one write.

The peer is held to what it was told (modelplane/protocol/http2/limits.py): the receive windows, the
concurrent streams and header-list size advertised in SETTINGS, and budgets for what costs the
connection work without moving any stream forward (resets before an answer, control frames).
A peer past a limit gets a GOAWAY (ENHANCE_YOUR_CALM, or PROTOCOL_ERROR / FLOW_CONTROL_ERROR when it
broke the protocol) and the connection closes, lingering on the server side (modelplane/protocol/
lingering.py) so that the GOAWAY arrives; the other connections never notice.
"""

from __future__ import annotations

import asyncio
import logging

from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2.hpack import Decoder, HeaderListTooLarge, Headers, HpackError, encode
from modelplane.protocol.http2.limits import DEFAULT_LIMITS, Http2Limits, TokenBucket
from modelplane.protocol.lingering import LingeringClose

log = logging.getLogger("modelplane.http2")

OUR_MAX_FRAME_SIZE = 1 << 20


class _StreamWindows:
    __slots__ = ("send", "receive", "unacknowledged", "local_closed", "remote_closed")

    def __init__(self, send: int, receive: int) -> None:
        self.send = send  # what the peer takes on this stream now
        self.receive = receive  # what the peer may send on this stream now
        self.unacknowledged = 0  # received and used, not yet returned with a WINDOW_UPDATE
        self.local_closed = False
        self.remote_closed = False


class Http2Connection(asyncio.Protocol):
    def __init__(
        self,
        *,
        client_side: bool,
        receive_window: int = f.MAX_WINDOW,
        auto_acknowledge: bool = True,
        limits: Http2Limits = DEFAULT_LIMITS,
    ) -> None:
        self.client_side = client_side
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.streams: dict[int, _StreamWindows] = {}
        self.highest_inbound_stream_id = 0
        self.peer_max_concurrent_streams = 2**31 - 1
        self.peer_max_header_list_size = 2**31 - 1
        self.limits = limits
        self._loop = asyncio.get_running_loop()
        self._receive_window = receive_window
        self._auto_acknowledge = auto_acknowledge
        self._max_concurrent_streams = limits.max_concurrent_streams
        # A header block above this (encoded, or decoded so far) is not decoded further.
        self._header_block_limit = 2 * limits.max_header_list_size
        self._buffer = b""
        self._preface_pending = not client_side
        self._settings_acknowledged = False  # the peer has applied our SETTINGS
        self._reading_paused = False
        self._lingering: LingeringClose | None = None  # closing after a GOAWAY for a fault
        self._decoder = Decoder()
        # The header block being received: stream, flags, fragments, size, CONTINUATION frames.
        self._header_block: tuple[int, int, list[bytes], int, int] | None = None
        now = self._loop.time()
        self._resets = TokenBucket(limits.reset_burst, limits.reset_rate, now)
        self._streams_completed = 0  # each earns back a reset
        self._control_frames = TokenBucket(limits.control_frame_burst, limits.control_frame_rate, now)
        self._frames_sent = 0  # HEADERS and DATA: each earns back a control frame
        self._receive_window_left = f.DEFAULT_WINDOW  # what the peer may send on the connection now
        # Streams of ours whose frames are all still in `_out`: id -> index of the first one.
        self._unsent_streams: dict[int, int] = {}
        self._send_window = f.DEFAULT_WINDOW
        self._peer_initial_window = f.DEFAULT_WINDOW
        self._peer_max_frame = f.DEFAULT_MAX_FRAME_SIZE
        self._connection_unacknowledged = 0
        self._next_stream_id = 1
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._handlers = {
            f.DATA: self._on_data_frame,
            f.HEADERS: self._on_headers_frame,
            f.RST_STREAM: self._on_rst_stream_frame,
            f.SETTINGS: self._on_settings_frame,
            f.PUSH_PROMISE: self._on_push_promise_frame,
            f.PING: self._on_ping_frame,
            f.GOAWAY: self._on_goaway_frame,
            f.WINDOW_UPDATE: self._on_window_update_frame,
            f.CONTINUATION: self._on_continuation_frame,
            f.PRIORITY: self._on_priority_frame,
        }

    # -- hooks for subclasses -------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: Headers, end_stream: bool, new_stream: bool) -> None:
        """A header block: a stream's first (`new_stream`), or trailers."""

    def on_data(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        """Data on an open stream; `flow_length` (padding included) is what `acknowledge` takes."""

    def on_reset(self, stream_id: int, error_code: int) -> None:
        """The peer reset a stream."""

    def on_window_opened(self, stream_id: int) -> None:
        """More may be sent on a stream, or (stream 0) on every stream."""

    def on_goaway(self, last_stream_id: int, error_code: int) -> None:
        """The peer opens no more streams; ours above `last_stream_id` were not processed."""

    def on_protocol_error(self, message: str) -> None:
        """The connection is ending because of a fault of the peer's (a GOAWAY has been sent)."""
        log.info("closing an HTTP/2 connection: %s", message)

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.client_side:
            self._write(f.PREFACE)
            self._send_settings()
        else:
            transport.set_write_buffer_limits(high=self.limits.write_buffer_high)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def pause_writing(self) -> None:
        """The peer is not reading what it is owed: read nothing more from it until it does."""
        if not self.client_side and not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._reading_paused and not self.transport.is_closing():
            self._reading_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering.drop(data)
            return
        buffer = self._buffer + data if self._buffer else data
        try:
            if self._preface_pending:
                if len(buffer) < len(f.PREFACE):
                    self._buffer = buffer
                    if not f.PREFACE.startswith(buffer):
                        self.not_http2(buffer)
                    return
                if not buffer.startswith(f.PREFACE):
                    self.not_http2(buffer)
                    return
                self._preface_pending = False
                buffer = buffer[len(f.PREFACE) :]
                self._send_settings()
            self._buffer = self._read_frames(buffer)
        except f.ConnectionFault as fault:
            self._fail(fault.code, str(fault))
        except HpackError as exc:
            self._fail(f.COMPRESSION_ERROR, str(exc))
        except HeaderListTooLarge as exc:
            self._fail(f.ENHANCE_YOUR_CALM, str(exc))
        self.flush()

    def not_http2(self, received: bytes) -> None:
        """A server's client did not open with the HTTP/2 preface."""
        self.transport.close()

    # -- sending ----------------------------------------------------------------------------------

    def new_stream_id(self) -> int:
        """The id for a new stream of ours (client side); its headers are to be sent next."""
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        self.streams[stream_id] = _StreamWindows(self._peer_initial_window, self._receive_window)
        self._unsent_streams[stream_id] = len(self._out)
        return stream_id

    def window(self, stream_id: int) -> int:
        """How many bytes of data may be sent on the stream now (at most one frame)."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed:
            return 0
        return max(0, min(stream.send, self._send_window, self._peer_max_frame))

    def send_headers(self, stream_id: int, headers: Headers | bytes, end_stream: bool = False) -> None:
        """Headers (or an HPACK block made with `hpack.encode`) on a stream."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed or self.closed:
            return
        block = headers if isinstance(headers, bytes) else encode(headers)
        self._write(f.header_frames(stream_id, block, end_stream, self._peer_max_frame))
        self._frames_sent += 1
        if end_stream:
            self._close_local(stream_id, stream)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> int:
        """Sends as much of `data` as the windows allow; returns how many bytes went."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed or self.closed:
            return 0
        view = memoryview(data)
        sent = 0
        while True:
            size = min(len(view) - sent, stream.send, self._send_window, self._peer_max_frame)
            if size < 0:
                size = 0
            last = end_stream and sent + size == len(view)
            if size == 0 and not last:
                return sent
            self._write(f.frame(f.DATA, f.END_STREAM if last else 0, stream_id, view[sent : sent + size]))
            self._frames_sent += 1
            stream.send -= size
            self._send_window -= size
            sent += size
            if last:
                self._close_local(stream_id, stream)
                return sent
            if sent == len(view):
                return sent

    def end_stream(self, stream_id: int) -> None:
        self.send_data(stream_id, b"", end_stream=True)

    def reset(self, stream_id: int, error_code: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None or self.closed:
            return
        first = self._unsent_streams.pop(stream_id, None)
        if first is not None:
            self._unsend(stream_id, first)  # the peer never hears of it: no work for it, no reset to count
            return
        self._write(f.rst_stream(stream_id, error_code))

    def acknowledge(self, stream_id: int, length: int) -> None:
        """`length` received bytes have been used: the peer may send as many more."""
        if not length or self.closed:
            return
        self._used_on_connection(length)
        stream = self.streams.get(stream_id)
        if stream is not None and not stream.remote_closed:
            stream.unacknowledged += length
            if stream.unacknowledged >= self._receive_window // 2:
                self._write(f.window_update(stream_id, stream.unacknowledged))
                stream.receive += stream.unacknowledged
                stream.unacknowledged = 0

    def send_goaway(self, error_code: int = f.NO_ERROR, message: str = "") -> None:
        if not self.closed:
            self._write(f.goaway(self.highest_inbound_stream_id, error_code, message))

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._unsent_streams:
            self._unsent_streams.clear()
        if self._out:
            out, self._out = self._out, []
            if not self.closed and not self.transport.is_closing():
                self.transport.write(b"".join(out))

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def _send_settings(self) -> None:
        ours = {
            f.MAX_CONCURRENT_STREAMS: self._max_concurrent_streams,
            f.INITIAL_WINDOW_SIZE: self._receive_window,
            f.MAX_FRAME_SIZE: OUR_MAX_FRAME_SIZE,
            f.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
            f.ENABLE_PUSH: 0,
        }
        self._write(f.settings(ours))
        if self._receive_window > f.DEFAULT_WINDOW:
            self._write(f.window_update(0, self._receive_window - f.DEFAULT_WINDOW))
            self._receive_window_left = self._receive_window

    def _unsend(self, stream_id: int, first: int) -> None:
        """Takes a stream of ours that has not left yet out of what is to be written."""
        out = self._out
        for index in range(first, len(out)):
            frame = out[index]
            if not frame:  # a frame of a stream taken out before this one
                continue
            length_high, length_low, kind, _, frame_stream = f.HEADER.unpack_from(frame)
            if frame_stream & 0x7FFFFFFF == stream_id:
                if kind == f.DATA:
                    self._send_window += length_high << 16 | length_low
                out[index] = b""

    def _close_local(self, stream_id: int, stream: _StreamWindows) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            del self.streams[stream_id]
            self._streams_completed += 1  # a stream that ran its course earns back a reset

    def _close_remote(self, stream_id: int, stream: _StreamWindows) -> None:
        stream.remote_closed = True
        if stream.local_closed:
            del self.streams[stream_id]
            self._streams_completed += 1

    def _fail(self, code: int, message: str) -> None:
        self.send_goaway(code, message)
        self.flush()
        transport = self.transport
        if transport.get_write_buffer_size() > self.limits.write_buffer_high:
            transport.abort()  # a peer that does not read would hold the socket open forever
        elif self.client_side:
            transport.close()  # a replica the gateway gives up on
        else:
            self.closed = True  # nothing more is sent, nor read
            self._reading_paused = False
            self._lingering = LingeringClose(transport)
        self.on_protocol_error(message)

    def _unproductive(self, what: str) -> None:
        """A frame that costs work and moves no stream forward: it spends the control-frame budget."""
        if not self._control_frames.take(self._loop.time(), self._frames_sent):
            raise f.ConnectionFault(f.ENHANCE_YOUR_CALM, f"too many {what} frames")

    # -- frames from the peer -----------------------------------------------------------------

    def _read_frames(self, buffer: bytes) -> bytes:
        pos, end = 0, len(buffer)
        unpack = f.HEADER.unpack_from
        handlers = self._handlers
        while end - pos >= 9:
            length_high, length_low, kind, flags, stream_id = unpack(buffer, pos)
            length = length_high << 16 | length_low
            if length > OUR_MAX_FRAME_SIZE:
                raise f.ConnectionFault(f.FRAME_SIZE_ERROR, f"a frame of {length} bytes")
            if end - pos - 9 < length:
                break
            payload = buffer[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if self._header_block is not None and kind != f.CONTINUATION:
                raise f.ConnectionFault(f.PROTOCOL_ERROR, "a header block was interrupted")
            handler = handlers.get(kind)
            if handler is not None:
                handler(flags, stream_id & 0x7FFFFFFF, payload)
            else:  # a frame of an unknown type is ignored (RFC 9113 §5.5)
                self._unproductive("unknown")
            if self.closed or self.transport.is_closing():
                return b""
        return buffer[pos:]

    def _on_headers_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        payload = f.strip_padding(flags, payload)
        if flags & f.PRIORITY_FLAG:
            payload = payload[5:]
        if len(payload) > self._header_block_limit:
            raise f.ConnectionFault(f.ENHANCE_YOUR_CALM, f"a header block of {len(payload)} bytes")
        if flags & f.END_HEADERS:
            self._on_header_block(stream_id, flags, payload)
        else:
            self._header_block = (stream_id, flags, [payload], len(payload), 0)

    def _on_continuation_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._header_block is None or self._header_block[0] != stream_id:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        _, first_flags, fragments, size, continuations = self._header_block
        size += len(payload)
        continuations += 1
        if size > self._header_block_limit:
            raise f.ConnectionFault(f.ENHANCE_YOUR_CALM, f"a header block of more than {size} bytes")
        if continuations > self.limits.max_continuation_frames:
            raise f.ConnectionFault(
                f.ENHANCE_YOUR_CALM, f"a header block in more than {continuations - 1} CONTINUATION frames"
            )
        fragments.append(payload)
        self._header_block = (stream_id, first_flags, fragments, size, continuations)
        if flags & f.END_HEADERS:
            self._header_block = None
            self._on_header_block(stream_id, first_flags, b"".join(fragments))

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        # Always decoded, to keep the table in step with the peer's; a list twice the limit is not.
        headers, size = self._decoder.decode_sized(block, self._header_block_limit)
        too_large = size > self.limits.max_header_list_size
        end_stream = bool(flags & f.END_STREAM)
        stream = self.streams.get(stream_id)
        if stream is not None:
            if stream.remote_closed:
                raise f.ConnectionFault(f.STREAM_CLOSED, f"headers on stream {stream_id} after its end")
            if too_large:
                self.reset(stream_id, f.ENHANCE_YOUR_CALM)
                self.on_reset(stream_id, f.ENHANCE_YOUR_CALM)
                return
            if end_stream:
                self._close_remote(stream_id, stream)
            self.on_headers(stream_id, headers, end_stream, False)
            return
        if self.client_side or not stream_id & 1:
            if stream_id < self._next_stream_id or stream_id <= self.highest_inbound_stream_id:
                return  # a stream already over on our side (reset): nothing to do
            raise f.ConnectionFault(f.PROTOCOL_ERROR, f"stream {stream_id} cannot be opened by the peer")
        if stream_id <= self.highest_inbound_stream_id:
            return  # a stream already over on our side (reset): nothing to do
        self.highest_inbound_stream_id = stream_id
        if too_large:
            self._unproductive("oversized HEADERS")
            self._write(f.rst_stream(stream_id, f.ENHANCE_YOUR_CALM))
            return
        if len(self.streams) >= self._max_concurrent_streams:
            if (
                self._settings_acknowledged
            ):  # the peer knows the limit, and went past it (nghttp2 does the same)
                raise f.ConnectionFault(
                    f.PROTOCOL_ERROR,
                    f"more than the {self._max_concurrent_streams} concurrent streams allowed",
                )
            self._unproductive("refused HEADERS")
            self._write(f.rst_stream(stream_id, f.REFUSED_STREAM))
            return
        stream = self.streams[stream_id] = _StreamWindows(self._peer_initial_window, self._receive_window)
        if end_stream:
            stream.remote_closed = True
        self.on_headers(stream_id, headers, end_stream, True)

    def _on_data_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "DATA on stream 0")
        length = len(payload)
        self._receive_window_left -= length
        if self._receive_window_left < 0:
            raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, "DATA beyond the connection's window")
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            # A stream we reset, or ended early: its data still counts against the connection.
            self._used_on_connection(length)
            return
        end_stream = bool(flags & f.END_STREAM)
        if not length and not end_stream:
            self._unproductive("empty DATA")
        if end_stream:
            self._close_remote(stream_id, stream)
        data = f.strip_padding(flags, payload)
        if self._auto_acknowledge:  # a stream's window is never reopened: the body limit bounds it
            self._used_on_connection(length)
            self.on_data(stream_id, data, 0, end_stream)
        else:
            stream.receive -= length
            if stream.receive < 0:
                raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, f"DATA beyond the window of stream {stream_id}")
            self.on_data(stream_id, data, length, end_stream)

    def _used_on_connection(self, length: int) -> None:
        """Received bytes that are used (or dropped): the connection's window opens again by half."""
        self._connection_unacknowledged += length
        if self._connection_unacknowledged >= self._receive_window // 2:
            self._write(f.window_update(0, self._connection_unacknowledged))
            self._receive_window_left += self._connection_unacknowledged
            self._connection_unacknowledged = 0

    def _on_rst_stream_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4 or stream_id == 0:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "a malformed RST_STREAM")
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            self._unproductive("RST_STREAM of closed streams")
            return
        self.on_reset(stream_id, f.u32(payload))
        if (
            not self.client_side
            and not stream.local_closed
            and not self._resets.take(self._loop.time(), self._streams_completed)
        ):
            raise f.ConnectionFault(f.ENHANCE_YOUR_CALM, "streams reset faster than they are answered")

    def _on_settings_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload")
            if self._settings_acknowledged:
                self._unproductive("SETTINGS acknowledgement")
            self._settings_acknowledged = True
            return
        self._unproductive("SETTINGS")
        if len(payload) > 6 * self.limits.max_settings_entries:
            raise f.ConnectionFault(f.ENHANCE_YOUR_CALM, f"a SETTINGS frame of {len(payload) // 6} entries")
        for key, value in f.parse_settings(payload):
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, "initial window size above 2^31-1")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self.streams.values():
                    stream.send += delta
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME_SIZE <= value <= (1 << 24) - 1:
                    raise f.ConnectionFault(f.PROTOCOL_ERROR, f"max frame size {value} is out of range")
                self._peer_max_frame = value
            elif key == f.MAX_CONCURRENT_STREAMS:
                self.peer_max_concurrent_streams = value
            elif key == f.MAX_HEADER_LIST_SIZE:
                self.peer_max_header_list_size = value
        self._write(f.frame(f.SETTINGS, f.ACK, 0))
        self.on_window_opened(0)

    def _on_push_promise_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        raise f.ConnectionFault(f.PROTOCOL_ERROR, "PUSH_PROMISE, which we disabled")

    def _on_ping_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 8 or stream_id:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "a PING must be 8 bytes on stream 0")
        self._unproductive("PING")
        if not flags & f.ACK:
            self._write(f.frame(f.PING, f.ACK, 0, payload))

    def _on_priority_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._unproductive("PRIORITY")  # priorities are not acted on

    def _on_goaway_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) < 8 or stream_id:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "a malformed GOAWAY")
        self.on_goaway(f.u32(payload) & 0x7FFFFFFF, f.u32(payload, 4))

    def _on_window_update_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        self._unproductive("WINDOW_UPDATE")
        increment = f.u32(payload) & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise f.ConnectionFault(f.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > f.MAX_WINDOW:
                raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, "the connection window went above 2^31-1")
            self.on_window_opened(0)
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if increment == 0 or stream.send + increment > f.MAX_WINDOW:
            self.reset(stream_id, f.PROTOCOL_ERROR if increment == 0 else f.FLOW_CONTROL_ERROR)
            self.on_reset(stream_id, f.PROTOCOL_ERROR if increment == 0 else f.FLOW_CONTROL_ERROR)
            return
        stream.send += increment
        self.on_window_opened(stream_id)
