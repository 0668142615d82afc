"""What the router answers to each HTTP request.

`GET /readyz` answers readiness (503 while draining), `GET /metrics` the Prometheus metrics, and every
other path and method runs the graph from its root node, as in KServe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from modelplane.graph.headers import HeaderPropagator
from modelplane.graph.metrics import METRICS_CONTENT_TYPE, RouterMetrics
from modelplane.graph.router import GraphRouter, RequestContext, Result, RoutingError
from modelplane.graph.spec import RouterTimeouts
from modelplane.protocol.http_client import HttpClient
from modelplane.protocol.http_server import HttpRequest, HttpResponse
from modelplane.telemetry import tracing

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"

log = logging.getLogger("modelplane.router")


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
        self.timeouts = timeouts
        self.state = state

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.split(b"?", 1)[0]
        if path == b"/readyz":
            return HttpResponse(200) if self.state.ready else HttpResponse(503, b"shutting down\n", _TEXT)
        if path == b"/metrics" and request.method == b"GET":
            return HttpResponse(200, self._metrics.render(), METRICS_CONTENT_TYPE.encode())
        return await self._route(request)

    def close(self) -> None:
        self._client.close()

    async def _route(self, request: HttpRequest) -> HttpResponse:
        if not tracing.enabled():
            return await self._run_graph(request)
        path = request.path.split(b"?", 1)[0].decode("latin-1")
        method = request.method.decode("latin-1")
        span, trace_lines = tracing.enter(request.headers, method, path, "graph router")
        if span is None:
            return await self._run_graph(request, trace_lines)
        with span:
            response = await self._run_graph(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.fail()
            return response

    async def _run_graph(self, request: HttpRequest, trace_lines: bytes | None = None) -> HttpResponse:
        """`trace_lines`: the trace context to send the steps in place of the caller's, if any."""
        headers = self._propagator.render(request.headers)
        if trace_lines is not None:
            headers = tracing.without_trace_lines(headers) + trace_lines
        context = RequestContext(headers=headers)
        limit = self.timeouts.server_write
        try:
            async with asyncio.timeout(limit) as context.deadline:
                result = await self._router.route(request.body, context)
        except TimeoutError:
            return error_response(504, _write_timeout_cause(limit, context))
        except RoutingError as exc:
            return error_response(exc.status, exc.cause)
        except Exception as exc:  # a bug of ours: say so in one line, never a traceback
            log.exception("the graph failed")
            return error_response(500, f"internal error: {type(exc).__name__}: {exc}")
        return _result_response(result)


def error_response(status: int, cause: str) -> HttpResponse:
    """KServe's error body: `{"error": "Failed to process request", "cause": ...}`."""
    return HttpResponse(status, orjson.dumps({"error": "Failed to process request", "cause": cause}), _JSON)


def _write_timeout_cause(seconds: float, context: RequestContext) -> str:
    cause = f"the graph did not answer within the serverWrite timeout of {seconds:g}s"
    if context.running:
        cause += "; still waiting for " + ", ".join(sorted(set(context.running.values())))
    return cause


def _result_response(result: Result) -> HttpResponse:
    payload = result.payload
    if not payload.raw:
        content_type = None
    elif payload.is_json:
        content_type = _JSON
    else:
        content_type = _TEXT if _is_text(payload.raw) else b"application/octet-stream"
    return HttpResponse(result.status, payload.raw, content_type)


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
