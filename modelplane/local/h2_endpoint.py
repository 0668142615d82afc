"""What both ends of the gateway's gRPC proxy share: an h2 state machine on an asyncio transport.

`H2ClientConnection` (h2_proxy.py, the clients' side) and `H2Upstream` (h2_upstream.py, the
replicas' side) send through these methods; the bytes h2 produces are written once per loop turn,
so the frames one event causes leave in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame

Headers = list[tuple[bytes, bytes]]


def _goaway_event(frame: GoAwayFrame) -> tuple[list, list]:
    event = h2.events.ConnectionTerminated()
    try:
        event.error_code = h2.errors.ErrorCodes(frame.error_code)
    except ValueError:
        event.error_code = frame.error_code
    event.last_stream_id = frame.last_stream_id
    event.additional_data = frame.additional_data or None
    return [], [event]


class H2Endpoint(asyncio.Protocol):
    def __init__(self, client_side: bool, check_inbound: bool) -> None:
        # Headers are checked once, as they come in from the client; what the gateway sends on is
        # those same headers (or a replica's, which it trusts), so checking them again on the way
        # out would only cost time (h2's header checks are most of its work per call).
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=client_side,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=check_inbound,
                normalize_inbound_headers=check_inbound,
            )
        )
        # h2 ends the whole connection on a GOAWAY, sent or received: it refuses even the frames of
        # the streams still under way, which HTTP/2 lets finish (a replica or a client shutting down
        # gracefully). So a received GOAWAY only becomes the ConnectionTerminated event here, the
        # proxy stops opening streams on that connection itself, and its own GOAWAY is written as a
        # bare frame (`send_goaway`).
        # (h2's frame dispatch table is internal: pyproject pins h2 below 5, and without the table
        # a GOAWAY ends the streams under way, as h2 does.)
        dispatch = getattr(self.conn, "_frame_dispatch_table", None)
        if isinstance(dispatch, dict) and GoAwayFrame in dispatch:
            dispatch[GoAwayFrame] = _goaway_event
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since: float | None = None
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.idle_since = self._loop.time()
        self.conn.initiate_connection()
        self.flush()

    def window(self, stream_id: int) -> int:
        """How many bytes the peer takes on this stream now (at most one frame)."""
        try:
            return min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return 0

    def send_headers(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        if not self.closed:
            self.conn.send_headers(stream_id, headers, end_stream=end_stream)
            self.schedule_flush()

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        if not self.closed:
            self.conn.send_data(stream_id, data, end_stream=end_stream)
            self.schedule_flush()

    def end_stream(self, stream_id: int) -> None:
        if not self.closed:
            self.conn.end_stream(stream_id)
            self.schedule_flush()

    def reset(self, stream_id: int, error_code: int) -> None:
        if not self.closed:
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.conn.reset_stream(stream_id, error_code)
            self.schedule_flush()

    def acknowledge(self, stream_id: int, length: int) -> None:
        """The peer may send `length` more bytes: what it sent has been passed on."""
        if length and not self.closed:
            self.conn.acknowledge_received_data(length, stream_id)
            self.schedule_flush()

    def relay(
        self, stream_id: int, queue: deque[list], passed_on: Callable[[int], None], end_stream: bool = False
    ) -> bool:
        """Sends the queued `[data, flow-controlled length]` chunks on `stream_id` as far as the
        peer's window allows, calling `passed_on(length)` for each chunk once it is all sent.
        True when the queue is empty; with `end_stream`, the stream is ended then too (with the
        last chunk, not in a frame of its own)."""
        while queue:
            window = self.window(stream_id)
            if window <= 0:
                return False
            item = queue[0]
            data = item[0]
            if len(data) <= window:
                queue.popleft()
                last = end_stream and not queue
                self.send_data(stream_id, data, end_stream=last)
                passed_on(item[1])
                if last:
                    return True
            else:
                self.send_data(stream_id, data[:window])
                item[0] = data[window:]
        if end_stream:
            self.end_stream(stream_id)
        return True

    def send_goaway(self) -> None:
        """Tells the peer to open no more streams; those it opened so far go on."""
        self.flush()
        if not self.closed:
            last = self.conn.highest_inbound_stream_id or 0
            self.transport.write(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)
