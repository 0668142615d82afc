"""The router's HTTP face, a raw ASGI app.

`GET /readyz` answers readiness (503 while draining), `GET /metrics` the Prometheus metrics, and every
other path and method runs the graph from its root node, as in KServe.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from modelplane.graph.headers import HeaderPropagator
from modelplane.graph.http_client import HttpClient
from modelplane.graph.metrics import METRICS_CONTENT_TYPE, RouterMetrics
from modelplane.graph.router import GraphRouter, RequestContext, Result, RoutingError
from modelplane.graph.spec import RouterTimeouts

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"


@dataclass
class RouterState:
    ready: bool = True


class RouterApp:
    def __init__(
        self,
        router: GraphRouter,
        client: HttpClient,
        propagator: HeaderPropagator,
        metrics: RouterMetrics,
        timeouts: RouterTimeouts,
        state: RouterState,
    ) -> None:
        self._router = router
        self._client = client
        self._propagator = propagator
        self._metrics = metrics
        self._timeouts = timeouts
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/readyz":
                await self._readyz(send)
            elif path == "/metrics" and scope["method"] == "GET":
                await _respond(send, 200, METRICS_CONTENT_TYPE.encode(), self._metrics.render())
            else:
                await self._route(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _readyz(self, send: Any) -> None:
        if self.state.ready:
            await _respond(send, 200, None, b"")
        else:
            await _respond(send, 503, _TEXT, b"shutting down\n")

    async def _route(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeouts.server_read):
                body = await _read_body(receive)
        except TimeoutError:
            cause = f"the request body did not arrive within the serverRead timeout of {self._timeouts.server_read:g}s"
            await _respond_error(send, 408, cause)
            return
        if body is None:  # the client went away
            return
        context = RequestContext(headers=self._propagator.render(scope["headers"]))
        remaining = self._timeouts.server_write - (time.monotonic() - started)
        try:
            async with asyncio.timeout(remaining) as context.deadline:
                result = await self._router.route(body, context)
        except TimeoutError:
            await _respond_error(send, 504, _write_timeout_cause(self._timeouts.server_write, context))
            return
        except RoutingError as exc:
            await _respond_error(send, exc.status, exc.cause)
            return
        await _respond_result(send, result)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Any) -> bytes | None:
    message = await receive()
    if message["type"] != "http.request":
        return None
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _write_timeout_cause(seconds: float, context: RequestContext) -> str:
    cause = f"the graph did not answer within the serverWrite timeout of {seconds:g}s"
    if context.running:
        cause += "; still waiting for " + ", ".join(sorted(set(context.running.values())))
    return cause


async def _respond_result(send: Any, result: Result) -> None:
    payload = result.payload
    if not payload.raw:
        content_type = None
    elif payload.is_json:
        content_type = _JSON
    else:
        content_type = _TEXT if _is_text(payload.raw) else b"application/octet-stream"
    await _respond(send, result.status, content_type, payload.raw)


async def _respond_error(send: Any, status: int, cause: str) -> None:
    body = orjson.dumps({"error": "Failed to process request", "cause": cause})
    await _respond(send, status, _JSON, body)


async def _respond(send: Any, status: int, content_type: bytes | None, body: bytes) -> None:
    headers = [(b"content-length", b"%d" % len(body))]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
