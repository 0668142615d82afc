"""A stand-in for the InferenceServices a graph calls: a real HTTP server, run as its own process.

    python tests/graph/stub_service.py [--port 0]

prints `listening on http://127.0.0.1:PORT` once bound. Every POST is recorded; what it answers depends
on the path:

    /success           200 {"predictions":[{"message":"SUCCESS"}]}   (KServe's e2e success-200 model)
    /error             404 {"detail":"Intentional 404 code"}         (KServe's e2e error-404 model)
    /echo              200 the request body as it came
    /reply?status=S&body=B&content_type=T   status S with body B
    .../redirect?status=S&to=L   status S (307 by default) with Location L (without `to`, its own path
                       and query: a redirect to itself); `to=` empty: no Location
    /any-path?delay_ms=N   (any of the above) answers after N ms

GET /__log answers the recorded requests as JSON, `[{"method", "path", "query", "body", "headers"}]`,
oldest first;
GET /__log?clear=1 also forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from urllib.parse import parse_qs

import orjson
import uvicorn
import uvloop

SUCCESS = b'{"predictions":[{"message":"SUCCESS"}]}'
ERROR = b'{"detail":"Intentional 404 code"}'


class StubService:
    def __init__(self) -> None:
        self.log: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        query = {
            k: v[-1] for k, v in parse_qs(scope["query_string"].decode(), keep_blank_values=True).items()
        }
        if path == "/__log":
            answer = orjson.dumps(self.log)
            if "clear" in query:
                self.log = []
            await _respond(send, 200, answer)
            return
        self.log.append(
            {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "body": body.decode("utf-8", "replace"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            }
        )
        if "delay_ms" in query:
            await asyncio.sleep(float(query["delay_ms"]) / 1000)
        if path == "/success":
            await _respond(send, 200, SUCCESS)
        elif path == "/error":
            await _respond(send, 404, ERROR)
        elif path == "/echo":
            await _respond(send, 200, body)
        elif path.endswith("/redirect"):
            location = query.get("to", path + "?" + scope["query_string"].decode())
            extra = [(b"location", location.encode())] if location else []
            await _respond(send, int(query.get("status", "307")), b"moved", b"text/plain", extra)
        elif path == "/reply":
            content_type = query.get("content_type", "application/json").encode()
            await _respond(
                send, int(query.get("status", "200")), query.get("body", "").encode(), content_type
            )
        else:
            await _respond(send, 404, b'{"detail":"Not Found"}')


async def _respond(
    send, status: int, body: bytes, content_type: bytes = b"application/json", extra: list | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # before the line below: a client may connect the moment it reads it
    config = uvicorn.Config(
        StubService(),
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
