"""The router's HTTP client against raw HTTP servers that answer in the ways servers do."""

from __future__ import annotations

import asyncio
import base64
import functools
import socket

import pytest

from modelplane.protocol.http_client import (
    BatchBroken,
    Endpoint,
    HttpClient,
    HttpConnection,
    TransportError,
    message,
    parse_target,
    without_password,
)


def synchronously(test):
    """Run an async test on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawServer:
    """Answers each request with the next of `answers`, then closes the connection once none are left.

    None closes the connection on receiving a request, without answering it.
    """

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/models/m:predict?x=1"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length")).split(
                        b":"
                    )[1]
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()


def post(url: str, body: bytes = b"{}", client: HttpClient | None = None):
    return (client or HttpClient()).post(parse_target(url), body, b"Content-Type: application/json\r\n")


@synchronously
async def test_sends_a_post_with_host_length_and_headers():
    server = RawServer([OK])
    async with server as url:
        response = await post(url, b'{"a":1}')
    assert (response.status, response.body) == (200, b"ok")
    request = server.requests[0]
    assert request.startswith(b"POST /v1/models/m:predict?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nContent-Length: 7\r\n" in request and b"\r\nContent-Type: application/json\r\n" in request
    assert request.endswith(b'\r\n\r\n{"a":1}')


@synchronously
async def test_reuses_a_kept_alive_connection():
    server = RawServer([OK, OK, OK])
    client = HttpClient()
    async with server as url:
        for _ in range(3):
            assert (await post(url, client=client)).body == b"ok"
    assert server.connections == 1


@synchronously
async def test_reads_chunked_and_close_delimited_bodies():
    chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    async with RawServer([chunked]) as url:
        response = await post(url)
    assert (response.status, response.body) == (404, b"abcde")
    async with RawServer([b"HTTP/1.0 200 OK\r\n\r\nuntil the end"]) as url:
        response = await post(url)
    assert (response.status, response.body) == (200, b"until the end")


@synchronously
async def test_retries_once_when_a_pooled_connection_was_closed_by_the_server():
    server = RawServer([OK, None, OK])  # the kept-alive connection closes when the second request comes
    client = HttpClient()
    async with server as url:
        await post(url, client=client)
        assert (await post(url, client=client)).body == b"ok"
    assert server.connections == 2


@synchronously
async def test_a_response_cut_short_is_a_transport_error():
    async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]) as url:
        with pytest.raises(TransportError, match="before a whole response"):
            await post(url)


@synchronously
async def test_an_unreachable_host_is_a_transport_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with pytest.raises(TransportError, match="cannot connect to 127.0.0.1"):
        await post(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "unsupported protocol scheme"),
        ("ftp://host/x", "unsupported protocol scheme"),
        ("http://single-1.default.{$your-domain}/switch", "invalid host"),
        ("http://host:99999/", "invalid URL"),
    ],
)
def test_urls_that_cannot_be_called(url, message):
    with pytest.raises(ValueError, match=message):
        parse_target(url)


@synchronously
async def test_skips_an_interim_100_continue():
    async with RawServer([b"HTTP/1.1 100 Continue\r\n\r\n" + OK]) as url:
        response = await post(url)
    assert (response.status, response.body) == (200, b"ok")


def test_a_name_under_localhost_is_reached_on_the_loopback_with_its_own_host_header():
    target = parse_target("http://iris.default.localhost:8080/v1/models/iris:predict")
    assert target.endpoint == Endpoint("127.0.0.1", 8080, False)
    assert target.head == b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: iris.default.localhost:8080\r\n"


def test_credentials_in_the_url_become_basic_authorization_and_stay_out_of_the_host():
    target = parse_target("http://us%40er:p%3Ass@example.com:81/x?q=1", "GET")
    assert target.head == b"GET /x?q=1 HTTP/1.1\r\nHost: example.com:81\r\n"
    assert target.authorization == b"Authorization: Basic " + base64.b64encode(b"us@er:p:ss") + b"\r\n"
    assert parse_target("http://user@example.com/").authorization.endswith(
        base64.b64encode(b"user:") + b"\r\n"
    )
    assert parse_target("http://example.com/").authorization == b""
    assert without_password("http://u:secret@h:1/p?q") == "http://u:***@h:1/p?q"
    assert without_password("http://u@h/p") == "http://u@h/p"


def test_a_request_without_a_body_has_no_content_length():
    target = parse_target("http://h/p", "GET")
    assert message(target, b"X: 1\r\n", None) == (b"GET /p HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n", b"")


@synchronously
async def test_a_batch_goes_in_one_write_and_its_answers_come_in_order():
    answers = [b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\nreply" % status for status in (200, 400, 201)]
    async with RawServer(answers) as url:
        target = parse_target(url)
        connection = await HttpConnection.open(target.endpoint, None)
        batch = [message(target, b"", body) for body in (b"a", b"bb", b"ccc")]
        got = await connection.send(batch, body_limit=3)
        assert [(answer.status, answer.body) for answer in got] == [
            (200, b"rep"),
            (400, b"rep"),
            (201, b"rep"),
        ]
        assert connection.usable
        connection.close()


@synchronously
async def test_a_batch_cut_short_says_which_answers_came():
    async with RawServer([OK, None]) as url:
        target = parse_target(url)
        connection = await HttpConnection.open(target.endpoint, None)
        with pytest.raises(BatchBroken, match="before a whole response") as broken:
            await connection.send([message(target, b"", b"1"), message(target, b"", b"2")])
        assert [answer.status for answer in broken.value.answers] == [200]


ACCEPTED = b"HTTP/1.1 202 Accepted\r\nServer: raw\r\nContent-Length: 0\r\n\r\n"
FAILED = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"


@synchronously
async def test_answers_that_repeat_are_counted_and_any_other_bytes_parsed():
    # Each batch: how many requests it carries, and the chunks the server writes its answers in.
    batches = [
        (3, [ACCEPTED * 3]),  # three copies of one answer: learnt
        (4, [ACCEPTED * 2, ACCEPTED + FAILED]),  # copies, then a chunk that is not
        (3, [ACCEPTED[:10], ACCEPTED[10:] + ACCEPTED * 2]),  # an answer split across chunks
        (2, [FAILED * 2]),  # another answer repeated
        (2, [ACCEPTED + ACCEPTED[:-1], ACCEPTED[-1:]]),
    ]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for count, chunks in batches:
            for _ in range(count):
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.05)  # each chunk its own read at the client
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    target = parse_target(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/events")
    connection = await HttpConnection.open(target.endpoint, None)
    parsed: list[bytes] = []
    parse = connection._parse
    connection._parse = lambda data: (parsed.append(data), parse(data))
    got = []
    for count, _ in batches:
        answers = await connection.send([message(target, b"", b"e")] * count)
        got.append([(answer.status, answer.body) for answer in answers])
    connection.close()
    server.close()

    accepted, failed = (202, b""), (500, b"oops")
    assert got == [
        [accepted] * 3,
        [accepted] * 3 + [failed],
        [accepted] * 3,
        [failed] * 2,
        [accepted] * 2,
    ]
    # Only the first copies of an answer, and what was not whole copies of the one learnt, were parsed.
    assert parsed == [
        ACCEPTED * 3,
        ACCEPTED + FAILED,
        ACCEPTED[:10],
        ACCEPTED[10:] + ACCEPTED * 2,
        FAILED * 2,
        ACCEPTED + ACCEPTED[:-1],
        ACCEPTED[-1:],
    ]


@synchronously
async def test_a_long_answer_is_not_kept_to_be_recognised():
    long_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
    async with RawServer([long_answer, long_answer]) as url:
        target = parse_target(url)
        connection = await HttpConnection.open(target.endpoint, None)
        for _ in range(2):
            (answer,) = await connection.send([message(target, b"", b"a")])
            assert (answer.status, answer.body) == (200, b"x" * 2000)
            assert connection._repeated is None
        connection.close()


STRAY_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"


class StrayBytesServer:
    """Answers the first request it gets with `first`, and writes `stray` on that connection only when
    the next request comes on it (the worst moment: the client has sent that request). Every other
    request is answered `200 ok`."""

    def __init__(self, first: bytes, stray: bytes) -> None:
        self.first: bytes | None = first
        self.stray = stray

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/models/m:predict"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        owes_stray = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
                if self.first is not None:
                    writer.write(self.first)
                    self.first, owes_stray = None, True
                else:
                    writer.write(self.stray + OK if owes_stray else OK)
                    owes_stray = False
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.mark.parametrize(
    "bodiless",
    [
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
    ],
    ids=["204", "204-no-length", "304"],
)
@pytest.mark.parametrize("stray", [b"GARBAGE", STRAY_ANSWER], ids=["garbage", "an-answer"])
@synchronously
async def test_the_request_after_a_bodiless_answer_is_not_answered_by_its_stray_bytes(bodiless, stray):
    client = HttpClient()
    async with StrayBytesServer(bodiless, stray) as url:
        first = await post(url, client=client)
        assert (first.body, first.status) == (b"", int(bodiless.split(b" ")[1]))
        for _ in range(3):
            after = await post(url, client=client)
            assert (after.status, after.body) == (200, b"ok")
    client.close()


@pytest.mark.parametrize(
    "first",
    [b"HTTP/1.1 204 No Content\r\n\r\n" + STRAY_ANSWER, OK + STRAY_ANSWER, OK + b"GARBAGE"],
    ids=["204", "200", "200-garbage"],
)
@synchronously
async def test_bytes_beyond_the_answer_in_its_own_read_are_not_kept_for_the_next_request(first):
    client = HttpClient()
    async with StrayBytesServer(first, b"") as url:
        answer = await post(url, client=client)
        assert answer.status in (200, 204)
        for _ in range(2):
            after = await post(url, client=client)
            assert (after.status, after.body) == (200, b"ok")
    client.close()


@synchronously
async def test_a_batch_answered_204_each_still_comes_over_one_connection():
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    server = RawServer([no_content] * 3)
    async with server as url:
        target = parse_target(url)
        connection = await HttpConnection.open(target.endpoint, None)
        got = await connection.send([message(target, b"", b"e")] * 3)
        assert [answer.status for answer in got] == [204] * 3
        connection.close()
    assert server.connections == 1
