"""`modelplane batcher`: KServe's batcher (its agent's `--enable-batcher`) as a proxy in front of a model
server that does not batch itself, on the same machine or in the same pod.

A V1 predict request, `POST /v1/models/<name>:predict` with a JSON body `{"instances": [...]}`, waits up to
`max_latency` for others to the same path; their instances are stacked into one request to the upstream
server, and each request gets its own `predictions` back. The batching is the model server's own
(`ModelBatcher`, server/request_batching.py): the same requests share a call (same path, same other
fields), a failed batch is run again request by request, a request larger than `max_batch_size` runs
alone. Everything else (other paths and methods, V2, bodies that are not V1 instances) goes to the upstream
server as it came and its answer comes back as it was, status and headers included; `/metrics` too, the
upstream server's. With a metrics port, the batcher serves its own metrics there (batcher_metrics.py)
with the upstream server's, read from it when scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from modelplane.agent.batcher_metrics import BatcherMetrics
from modelplane.protocol.errors import ModelplaneError
from modelplane.protocol.http_server import (
    HttpRequest,
    HttpResponse,
    ServerLimits,
    Shutdown,
    json_error,
    serve,
)
from modelplane.protocol.listening import listening_socket, wait_until_listening
from modelplane.server.request_batching import KEPT_BATCHERS, BatchSettings, BatchTimedOut, ModelBatcher
from modelplane.telemetry.metrics_exposition import serve_with_component

logger = logging.getLogger("modelplane.batcher")


_PREDICT_PATH = re.compile(rb"/v1/models/([^/?]+):predict")
# Headers of one connection, not of the message (RFC 9110 §7.6.1), and the framing, which the server on
# each side writes for the message it sends.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)
# Response headers this proxy's server writes itself.
_WRITTEN_BY_SERVER = frozenset({"date"})


class UpstreamAnswer(Exception):  # noqa: N818 (an answer, passed on)
    """The upstream server answered a request alone (or a batch, which is then run again request by
    request) with something else than 200 and a JSON object: passed on to the request as it is."""

    def __init__(self, response: HttpResponse):
        super().__init__(f"the upstream server answered {response.status}")
        self.response = response


class UpstreamUnreachable(ModelplaneError):
    status_code = 502

    def __init__(self, message: str, failure: str):
        super().__init__(message)
        self.failure = failure  # the metrics' reason: connect or closed


class _Answer(dict):
    """The upstream server's JSON answer, with the response it came in: a request that ran alone gets that
    response as it was, not the JSON written again."""

    response: HttpResponse


@dataclass(frozen=True)
class _Model:
    """What `ModelBatcher` needs of a model: its name."""

    name: str


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where the batcher serves its metrics (`port`, `path`), and the port on the upstream server's host
    where that server serves its own at the same path."""

    port: int
    path: str
    upstream_port: int


class BatcherProxy:
    """The handler of the proxy's server: batches V1 predict requests, passes on everything else."""

    def __init__(self, upstream: str, settings: BatchSettings):
        self._settings = settings
        self.metrics = BatcherMetrics(self._waiting_requests)
        self._client = httpx.AsyncClient(
            base_url=f"http://{upstream}",
            timeout=httpx.Timeout(None, connect=10.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        self._batchers: dict[bytes, ModelBatcher] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        payload = _v1_instances(request)
        if payload is None:
            try:
                return await self._forward(
                    request.method, request.path, request.headers, request.body, may_stream=True
                )
            except UpstreamUnreachable as exc:
                self.metrics.upstream_error(exc.failure)
                return json_error(exc.status_code, exc.message)
        batcher = self._batchers.get(request.path) or self._new_batcher(request.path)
        self.metrics.for_model(_model_name(request.path)).requests += 1
        try:
            answer, headers = await batcher.run(payload, _text_headers(request.headers))
        except UpstreamAnswer as exc:
            return exc.response
        except ModelplaneError as exc:
            if isinstance(exc, UpstreamUnreachable | BatchTimedOut):
                self.metrics.upstream_error(
                    exc.failure if isinstance(exc, UpstreamUnreachable) else "timeout"
                )
            return json_error(exc.status_code, exc.message)
        if isinstance(answer, _Answer):
            return answer.response
        return HttpResponse(200, orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), None, _raw(headers))

    def flush(self) -> None:
        """Start every waiting batch now (the proxy is stopping)."""
        for batcher in self._batchers.values():
            batcher.flush()

    def _new_batcher(self, path: bytes) -> ModelBatcher:
        name = _model_name(path)

        async def run_upstream(payload: Any, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
            return await self._predict(path, payload, headers)

        if len(self._batchers) >= KEPT_BATCHERS:
            # One per path a client made up would be kept for ever: those with nothing waiting go (a
            # batch under way finishes without its batcher; the next request to its path gets a new one).
            self._batchers = {p: b for p, b in self._batchers.items() if b.waiting_items}
        batcher = ModelBatcher(_Model(name), run_upstream, self._settings, self.metrics.for_model(name))
        self._batchers[path] = batcher
        return batcher

    @property
    def batched_paths(self) -> int:
        """How many paths have a batcher now."""
        return len(self._batchers)

    def _waiting_requests(self) -> dict[str, int]:
        waiting: dict[str, int] = {}
        for path, batcher in list(self._batchers.items()):
            name = _model_name(path)
            waiting[name] = waiting.get(name, 0) + batcher.waiting_requests
        return waiting

    async def _predict(
        self, path: bytes, payload: Any, headers: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
        """One request to the upstream server, a batch or a request alone; its JSON answer, or
        UpstreamAnswer for any other."""
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        # An answer it must read (and split): not compressed.
        sent = {name: value for name, value in headers.items() if name != "accept-encoding"}
        response = await self._forward(b"POST", path, _raw(sent), body)
        answer = None
        if response.status == 200:
            with contextlib.suppress(orjson.JSONDecodeError):
                answer = orjson.loads(response.body)
        if not isinstance(answer, dict):
            raise UpstreamAnswer(response)
        kept = _Answer(answer)
        kept.response = response
        return kept, {name.decode("latin-1"): value.decode("latin-1") for name, value in response.headers}

    async def _forward(
        self,
        method: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        may_stream: bool = False,
    ) -> HttpResponse:
        """The upstream server's answer to a request; with `may_stream`, an answer of no declared length
        (Server-Sent Events, say) is passed on piece by piece as it comes."""
        forwarded = [(name, value) for name, value in headers if name.decode("latin-1") not in _NOT_FORWARDED]
        upstream = self._client.build_request(
            method.decode("latin-1"), path.decode("latin-1"), headers=forwarded, content=body
        )
        try:
            response = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            reason = "connect" if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) else "closed"
            raise UpstreamUnreachable(f"the upstream server cannot be reached: {exc}", reason) from None
        kept = [
            (lower, value)
            for name, value in response.headers.raw
            if (lower := name.lower()).decode("latin-1") not in _NOT_FORWARDED
            and lower.decode("latin-1") not in _WRITTEN_BY_SERVER
        ]
        if may_stream and _streamed(method, response):
            return HttpResponse(response.status_code, b"", None, kept, stream=_relayed(response))
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(f"the upstream server's answer broke off: {exc}", "closed") from None
        finally:
            await response.aclose()
        return HttpResponse(response.status_code, content, None, kept)


def _model_name(predict_path: bytes) -> str:
    return _PREDICT_PATH.fullmatch(predict_path).group(1).decode("latin-1")


def _streamed(method: bytes, response: httpx.Response) -> bool:
    status = response.status_code
    bodiless = method == b"HEAD" or status in (204, 304) or status < 200
    return not bodiless and "content-length" not in response.headers


async def _relayed(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for piece in response.aiter_raw():
            yield piece
    finally:
        await response.aclose()


def _v1_instances(request: HttpRequest) -> dict | None:
    """The body of a V1 predict request with instances, which may be batched; None for any other."""
    if request.method != b"POST" or not _PREDICT_PATH.fullmatch(request.path):
        return None
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances or "inputs" in payload:
        return None
    return payload


def _text_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's headers as the batcher compares them (the last of a repeated one)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


async def serve_batcher(
    upstream: str,
    host: str,
    port: int,
    settings: BatchSettings,
    stopping: asyncio.Event,
    *,
    wait_for_upstream: bool = False,
    metrics: MetricsEndpoint | None = None,
) -> None:
    """Batches in front of `upstream` (host:port) on `host`:`port` until `stopping` is set, then starts
    the waiting batches and lets the requests under way finish. With `wait_for_upstream` it listens only
    once the upstream server takes connections (in a Knative pod, whose readiness is that of its one
    served port, which may be the batcher's). With `metrics`, it serves its metrics there, with the
    upstream server's."""
    upstream_host, _, upstream_port = upstream.rpartition(":")
    if wait_for_upstream and not await wait_until_listening(
        upstream_host, int(upstream_port), "the upstream server", stopping
    ):
        return
    proxy = BatcherProxy(upstream, settings)
    sock = listening_socket(host, port, 1024)
    limits = ServerLimits(read_timeout=None, idle_timeout=300.0, max_body_size=None)
    shutdown = Shutdown(grace_seconds=max(30.0, settings.max_latency + 5.0))
    logger.info(
        "batching V1 predict requests for %s on %s:%d (at most %d instances, %g ms)",
        upstream,
        host,
        sock.getsockname()[1],
        settings.max_batch_size,
        settings.max_latency * 1000,
    )
    served = [asyncio.create_task(serve(proxy, sock, limits, shutdown))]
    if metrics is not None:
        metrics_sock = listening_socket(host, metrics.port, 64)
        upstream_metrics = f"http://{upstream_host}:{metrics.upstream_port}{metrics.path}"
        served.append(
            asyncio.create_task(
                serve_with_component(proxy.metrics, metrics.path, upstream_metrics, metrics_sock, shutdown)
            )
        )
    try:
        await stopping.wait()
    finally:
        proxy.flush()
        shutdown.request()
        await asyncio.gather(*served)
        await proxy.aclose()
