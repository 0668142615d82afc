"""How the HTTP server writes pipelined answers: the answers made in one step of the loop leave in one
write, and an answer never waits for a later request's handler."""

from __future__ import annotations

import asyncio

from modelplane.protocol import http_server


class RecordingTransport(asyncio.Transport):
    """Keeps each write as it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False  # the write side was closed (a lingering close begins with it)

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def connection(handler) -> tuple[http_server.HttpServerProtocol, RecordingTransport]:
    limits = http_server.ServerLimits(read_timeout=None, idle_timeout=5)
    protocol = http_server.HttpServerProtocol(handler, http_server.ServerState(), limits)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def bodies(writes: list[bytes]) -> list[bytes]:
    return [answer.rsplit(b"\r\n\r\n", 1)[1] for answer in b"".join(writes).split(b"HTTP/1.1 ")[1:]]


async def echo(request: http_server.HttpRequest) -> http_server.HttpResponse:
    return http_server.HttpResponse(200, request.body, b"text/plain")


def test_pipelined_answers_made_at_once_leave_in_one_write():
    async def scenario() -> list[bytes]:
        protocol, transport = connection(echo)
        protocol.data_received(b"".join(post(b"%d" % n) for n in range(10)))
        for _ in range(5):
            await asyncio.sleep(0)
        return transport.writes

    writes = asyncio.run(scenario())
    assert len(writes) == 1
    assert bodies(writes) == [b"%d" % n for n in range(10)]


def test_an_answer_does_not_wait_for_the_handler_of_the_next_request():
    release = None

    async def handler(request: http_server.HttpRequest) -> http_server.HttpResponse:
        if request.body == b"slow":
            await release.wait()
        return await echo(request)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        nonlocal release
        release = asyncio.Event()
        protocol, transport = connection(handler)
        protocol.data_received(post(b"fast") + post(b"slow") + post(b"last"))
        for _ in range(5):
            await asyncio.sleep(0)
        before = list(transport.writes)
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return before, transport.writes

    before, after = asyncio.run(scenario())
    assert bodies(before) == [b"fast"]
    assert bodies(after) == [b"fast", b"slow", b"last"]


def test_a_closing_answer_is_written_with_those_held_before_the_connection_closes():
    async def scenario() -> RecordingTransport:
        protocol, transport = connection(echo)
        closing = b"POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc"
        protocol.data_received(post(b"a") + post(b"b") + closing + post(b"never"))
        for _ in range(5):
            await asyncio.sleep(0)
        return transport

    transport = asyncio.run(scenario())
    assert transport.eof  # the server's side closed after the answers, lingering for the client's
    assert bodies(transport.writes) == [b"a", b"b", b"c"]
    assert b"Connection: close" in transport.writes[-1]
