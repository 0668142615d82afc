"""`Http2Connection` on its own, with a transport that keeps what it is given."""

from __future__ import annotations

import asyncio

import pytest

from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2.connection import Http2Connection


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(type, stream id) of each frame in `data`."""
    found = []
    while data:
        high, low, kind, _, stream_id = f.HEADER.unpack_from(data)
        found.append((kind, stream_id & 0x7FFFFFFF))
        data = data[9 + (high << 16 | low) :]
    return found


@pytest.mark.parametrize("order", ["first opened first", "last opened first"])
def test_streams_reset_before_their_frames_left_are_never_sent_whatever_the_order(order):
    """The gateway opens streams to a replica for several clients in one turn of the loop, their
    headers and data interleaved, and their clients may cancel them in any order before the turn's
    write: none of their frames leaves, and the one still open goes out whole."""

    async def main() -> list[tuple[int, int]]:
        transport = _Transport()
        connection = Http2Connection(client_side=True)
        connection.connection_made(transport)
        connection.flush()
        transport.written = b""
        one, two, kept = (connection.new_stream_id() for _ in range(3))
        for stream_id in (one, two, kept):
            connection.send_headers(stream_id, [(b":method", b"POST"), (b":path", b"/x")])
        for stream_id in (one, two, kept, one, two):
            assert connection.send_data(stream_id, b"d" * 10) == 10
        for stream_id in (one, two) if order == "first opened first" else (two, one):
            connection.reset(stream_id, f.CANCEL)
        connection.flush()
        return _frames(transport.written)

    sent = asyncio.run(main())
    assert sent == [(f.HEADERS, 5), (f.DATA, 5)]
