"""A replica stand-in for the gateway tests, run as its own process: `python <this file> NAME [--raw]`.

It binds 127.0.0.1 on a port the OS picks and prints the port on its first line. The default mode is
an ASGI app on uvicorn (httptools, uvloop), like a model server. Paths:

- anything else: echo the request as JSON (replica name, method, path, headers, body size and hash,
  the gateway's source port, so tests can see connection reuse);
- `/chunked?n=N`: N body chunks without Content-Length (so the response is chunked);
- `/bytes?n=N`: N bytes with Content-Length;
- `/slow?seconds=S`: answers after S seconds, or notes the disconnect if the client goes first;
- `/crash`: promises 100000 bytes, sends 10, and the process dies;
- `/crash-after-head`: promises 100000 bytes, sends none, and the process dies;
- `/stats`: disconnects seen and the most requests it had in flight at once.

`--raw` starts a bare asyncio server instead that answers the first request on each connection
(keep-alive) and closes the connection on the second without answering, like a replica whose
keep-alive timeout fires just as a request arrives; and answers `/until-close` with a body that
ends with the connection (no Content-Length, not chunked). With `--raw --hold` it holds the second
request instead, prints `held`, and closes its connection without answering once a request for
`/release` comes (on any connection): a request cut at the moment the test chooses.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import sys
from urllib.parse import parse_qs

import orjson

NAME = sys.argv[1] if len(sys.argv) > 1 else "replica"
STATE = {"disconnects": 0, "in_flight": 0, "max_in_flight": 0, "requests": 0}
HELD: list[asyncio.Transport] = []  # `--raw --hold`: connections whose second request waits for /release


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    STATE["requests"] += 1
    STATE["in_flight"] += 1
    STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
    try:
        if path == "/stats":
            await _send(send, 200, orjson.dumps(STATE))
        elif path == "/chunked":
            await _chunked(send, int(query.get("n", "3")))
        elif path == "/bytes":
            await _send(send, 200, _pattern(int(query["n"])), b"application/octet-stream")
        elif path == "/crash":
            await _crash(send, b"0123456789")
        elif path == "/crash-after-head":
            await _crash(send, b"")
        elif path == "/slow":
            await _slow(scope, receive, send, float(query.get("seconds", "1")))
        else:
            await _echo(scope, receive, send)
    finally:
        STATE["in_flight"] -= 1


async def _read_body(receive) -> tuple[bytes, int]:
    parts, messages = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        messages += 1
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts), messages


def _describe(scope, body: bytes, messages: int) -> dict:
    return {
        "replica": NAME,
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": {name.decode(): value.decode() for name, value in scope["headers"]},
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_messages": messages,
        "client_port": scope["client"][1],
    }


async def _echo(scope, receive, send):
    body, messages = await _read_body(receive)
    await _send(send, 200, orjson.dumps(_describe(scope, body, messages)))


async def _slow(scope, receive, send, seconds: float):
    body, messages = await _read_body(receive)
    try:
        message = await asyncio.wait_for(receive(), seconds)
        if message["type"] == "http.disconnect":
            STATE["disconnects"] += 1
            return
    except TimeoutError:
        pass
    description = _describe(scope, body, messages) | {"in_flight": STATE["in_flight"]}
    await _send(send, 200, orjson.dumps(description))


async def _chunked(send, count: int):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for index in range(count):
        await send({"type": "http.response.body", "body": b"chunk-%d;" % index, "more_body": True})
        await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b""})


async def _crash(send, first_bytes: bytes):
    headers = [(b"content-length", b"100000")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if first_bytes:
        await send({"type": "http.response.body", "body": first_bytes, "more_body": True})
    await asyncio.sleep(0.2)
    os._exit(3)


async def _send(send, status: int, body: bytes, content_type: bytes = b"application/json"):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _pattern(size: int) -> bytes:
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


class DropSecondRequest(asyncio.Protocol):
    """Answers the first request on a connection, then closes on the next without a word."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        self.answered = 0

    def data_received(self, data):
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return
        self.buffer = rest[length:]
        if head.split(b" ")[1] == b"/until-close":
            # No Content-Length, not chunked: the body ends when the connection does.
            self.transport.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe body, ")
            self.transport.write(b"then the end")
            self.transport.close()
            return
        if head.split(b" ")[1] == b"/release":
            while HELD:
                HELD.pop().close()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            return
        if self.answered and "--hold" in sys.argv:
            HELD.append(self.transport)
            print("held", flush=True)
            return
        if self.answered:
            self.transport.close()
            return
        self.answered += 1
        port = self.transport.get_extra_info("peername")[1]
        body = orjson.dumps({"replica": NAME, "client_port": port})
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    if "--raw" in sys.argv:
        sock.setblocking(False)

        async def serve():
            server = await asyncio.get_running_loop().create_server(DropSecondRequest, sock=sock)
            await server.serve_forever()

        asyncio.run(serve())
        return
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=30,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
