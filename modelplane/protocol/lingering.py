"""Closing a connection the server will read no more from, without losing what it last wrote.

Closing a socket that still holds unread bytes resets the connection, and the reset overtakes what was
still on its way: a client that sent a body too large, or a flood of frames, would see its connection
reset instead of the 413 or GOAWAY that says why. So the server closes its write side once everything is
sent, drops what the client still sends, and closes the socket when the client closes too (as nginx's
lingering close). A client that goes on sending is cut after `LINGER_SECONDS` or `LINGER_BYTES`, or after
the rest of a refused body whose length it declared, if that is more: most HTTP clients send a whole body
before they read, and a proxy forwarding one is cut mid-write (and answers 502) if the reset comes first.
"""

from __future__ import annotations

import asyncio

LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class LingeringClose:
    """Starts closing `transport`; its protocol hands `drop` whatever arrives from then on."""

    __slots__ = ("_transport", "_left")

    def __init__(self, transport: asyncio.Transport, declared: int = 0) -> None:
        """`declared`: the bytes the client said are still to come (the rest of a refused body)."""
        self._transport = transport
        self._left = max(LINGER_BYTES, declared)
        if not transport.can_write_eof():  # TLS: no half-close
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()  # so that the client's bytes are dropped, not left unread
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def drop(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left < 0:
            self._transport.close()
