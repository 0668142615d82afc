"""A TLS connection of the API across a restart in place (SIGHUP).

A plain connection is handed to the program run next as its descriptor (connection.py). A TLS one
cannot be: its session (keys, sequence numbers) lives in this process, which `exec` replaces. So a relay
process, forked with a copy of that session, keeps it: it decrypts what the client sends into one end of
a socket pair and encrypts what comes back from it, and the other end is handed over as a plain
connection. The client goes on with the certificate it negotiated, on the same connection; new
connections get the certificate the next program reads. The relay ends when either side closes (the
API closes a connection idle for `HEAD_TIMEOUT`), and is no child of the platform's (it is forked twice).

Only the standard library's TLS protocol (`asyncio.sslproto`) lets its session be reached, so the API's
TLS port uses it (tls_or_plain.py, `keeps_session`), not the event loop's own.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import os
import select
import signal
import socket
import ssl

from modelplane.local.replicas.inherited import kept_across_exec

_CHUNK = 256 * 1024


def relayable(transport: asyncio.BaseTransport) -> bool:
    """Whether `transport` is a TLS connection whose session a relay can take."""
    return isinstance(transport, asyncio.sslproto._SSLProtocolTransport)


def relayed_across_exec(transport: asyncio.sslproto._SSLProtocolTransport) -> int | None:
    """Starts a relay for this TLS connection, which must lie between requests; a descriptor, kept
    across `exec`, of the plain end the next program serves. None while TLS records are still on
    their way out (then try again later)."""
    tls = transport._ssl_protocol
    raw = tls._transport
    if (
        tls is None
        or raw is None
        or tls._state != asyncio.sslproto.SSLProtocolState.WRAPPED
        or tls._get_write_buffer_size()
        or raw.get_write_buffer_size()
    ):
        return None
    client = raw.get_extra_info("socket")
    ours, theirs = socket.socketpair()
    try:
        _fork_relay(client.fileno(), ours.fileno(), tls._sslobj, tls._incoming, tls._outgoing)
        return kept_across_exec(theirs)
    finally:
        ours.close()
        theirs.close()


def _fork_relay(
    client: int, plain: int, session: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> None:
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    # The child forks the relay and ends at once: the relay is reparented, never a zombie of the platform.
    try:
        if os.fork() == 0:
            os.setsid()
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            _close_all_but(client, plain)
            with contextlib.suppress(BaseException):
                _relay(client, plain, session, incoming, outgoing)
    finally:
        os._exit(0)


def _close_all_but(*kept: int) -> None:
    """Closes every descriptor of the relay but `kept`: the store, the listening sockets and the other
    connections are the next program's."""
    low = 0
    for fd in sorted(kept):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _relay(
    client: int, plain: int, session: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> None:
    for fd in (client, plain):
        os.set_blocking(fd, True)
    closed_by_client = _deliver(session, plain)  # what the client had sent before the fork
    while not closed_by_client:
        _send_all(client, outgoing.read())
        readable, _, _ = select.select([client, plain], [], [])
        if client in readable:
            data = os.read(client, _CHUNK)
            if not data:
                return
            incoming.write(data)
            closed_by_client = _deliver(session, plain)
        if plain in readable and not closed_by_client:
            data = os.read(plain, _CHUNK)
            if not data:
                break
            session.write(data)
    with contextlib.suppress(ssl.SSLError):
        session.unwrap()  # close_notify
    _send_all(client, outgoing.read())


def _deliver(session: ssl.SSLObject, plain: int) -> bool:
    """Passes on what the client sent that can be decrypted now; whether it closed its side."""
    while True:
        try:
            data = session.read(_CHUNK)
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLZeroReturnError:
            return True
        if not data:
            return True
        _send_all(plain, data)


def _send_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
