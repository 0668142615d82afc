"""How a transformer's default `predict` and `explain` reach its predictor and explainer, and how an
explainer queries its predictor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from modelplane.protocol.errors import InvalidInput, UpstreamError
from modelplane.protocol.v2 import InferRequest
from modelplane.protocol.v2_rest import JSON_LENGTH_HEADER, decode_response, encode_request
from modelplane.telemetry import tracing

if TYPE_CHECKING:
    from modelplane.server.model import Model

# Headers a transformer passes on to its predictor.
FORWARDED_HEADERS = ("x-request-id", "x-b3-traceid", "authorization", "traceparent")
TIMEOUT_SECONDS = 600

_clients: dict[str, httpx.AsyncClient] = {}
_blocking_clients: dict[str, httpx.Client] = {}


def _client(host: str) -> httpx.AsyncClient:
    client = _clients.get(host)
    if client is None:
        url, headers = _base(host)
        client = _clients[host] = httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS)
    return client


def _blocking_client(host: str) -> httpx.Client:
    client = _blocking_clients.get(host)
    if client is None:
        url, headers = _base(host)
        client = _blocking_clients[host] = httpx.Client(
            base_url=url, headers=headers, timeout=TIMEOUT_SECONDS
        )
    return client


def _base(host: str) -> tuple[httpx.URL, dict[str, str]]:
    url = httpx.URL(host if host.startswith(("http://", "https://")) else f"http://{host}")
    headers = {}
    if url.host.endswith(".localhost"):
        # `*.localhost` is the loopback (RFC 6761), but the system resolver may not know the
        # name: connect to 127.0.0.1 and name the host in the Host header (the gateway routes by it).
        headers["host"] = url.netloc.decode()
        url = url.copy_with(host="127.0.0.1")
    return url, headers


def _forwarded(headers: dict[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


async def forward_predict(model: Model, payload: Any, headers: dict[str, str] | None) -> Any:
    client = _client(model.predictor_host)
    if isinstance(payload, InferRequest) or model.predictor_protocol == "v2":
        if not isinstance(payload, InferRequest):
            raise InvalidInput("a transformer speaking V2 to its predictor must pass on an InferRequest")
        body, json_length = encode_request(payload)
        request_headers = {"content-type": "application/json", **_forwarded(headers)}
        if json_length is not None:
            request_headers = {JSON_LENGTH_HEADER: str(json_length), **_forwarded(headers)}
        response = await _send(client, f"/v2/models/{model.name}/infer", body, request_headers)
        length = response.headers.get(JSON_LENGTH_HEADER)
        return decode_response(response.content, int(length) if length else None)
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    response = await _send(client, f"/v1/models/{model.name}:predict", body, request_headers)
    return orjson.loads(response.content)


def predict_blocking(model: Model, payload: Any, headers: dict[str, str] | None) -> Any:
    """A V1 `:predict` call to the model's predictor from a worker thread (an explainer querying its
    predictor, as KServe's explainers do)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    client = _blocking_client(model.predictor_host)
    path = f"/v1/models/{model.name}:predict"
    with _client_span(path, request_headers) as request_headers:
        try:
            response = client.post(path, content=body, headers=request_headers)
        except httpx.TransportError as exc:
            raise UpstreamError(f"cannot reach {client.base_url}{path}: {exc}", 502) from None
    _raise_for_status(response, f"{client.base_url}{path}")
    return orjson.loads(response.content)


async def forward_explain(model: Model, payload: Any, headers: dict[str, str] | None) -> Any:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    response = await _send(
        _client(model.explainer_host), f"/v1/models/{model.name}:explain", body, request_headers
    )
    return orjson.loads(response.content)


async def _send(client: httpx.AsyncClient, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with _client_span(path, headers) as headers:
        try:
            response = await client.post(path, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise UpstreamError(f"cannot reach {client.base_url}{path}: {exc}", 502) from None
    _raise_for_status(response, f"{client.base_url}{path}")
    return response


@contextlib.contextmanager
def _client_span(path: str, headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """With tracing on, the call is a client span and its `traceparent` goes with it (in place of the
    caller's); off, the caller's trace headers go on as they came."""
    span = (
        tracing.start_span(f"POST {path}", tracing.CLIENT, {"url.path": path}) if tracing.enabled() else None
    )
    if span is None:
        yield headers
        return
    with span:
        own = {name: value for name, value in headers.items() if name not in ("traceparent", "tracestate")}
        yield {**own, **span.trace_headers()}


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 400:
        try:
            message = response.json().get("error") or response.text
        except (ValueError, AttributeError):
            message = response.text
        raise UpstreamError(f"{url} answered {response.status_code}: {message}", response.status_code)
