"""The messages between `modelplane up` and its gateway worker processes.

Each message is a pickled tuple behind its length, over a Unix socket pair: both ends are this
program, started by the same user, so pickle's trust is the process's own.

From the platform: `("start", GatewayConfig, RouteTable)`, `("routes", seq, RouteTable)`,
`("metrics?", seq)`, `("handover",)`, `("resume",)`, `("stop",)`. From a worker: `("ready",)`,
`("applied", seq)`, `("demand", revision)`, `("stats", {revision: RevisionStats})`,
`("metrics", seq, exposition_text)` (seq 0: sent unasked), `("handover",)` (nothing follows until
`resume`).
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct

_LENGTH = struct.Struct("!I")


def frame(message: tuple) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


def receive(sock: socket.socket) -> tuple | None:
    """The next message from a blocking socket; None once the other end has gone."""
    head = _exactly(sock, _LENGTH.size)
    if head is None:
        return None
    body = _exactly(sock, _LENGTH.unpack(head)[0])
    return None if body is None else pickle.loads(body)


async def read_message(reader: asyncio.StreamReader) -> tuple | None:
    """The next message from a stream; None once the other end has gone."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        return pickle.loads(await reader.readexactly(_LENGTH.unpack(head)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        try:
            chunk = sock.recv(min(missing, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
