"""How a transformer's default `predict` and `explain` reach its predictor and explainer (and TF
Serving's `:classify` and `:regress`, which it passes on), and how an explainer queries its predictor."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from modelplane.protocol.errors import InvalidInput, UpstreamError
from modelplane.protocol.grpc.service import SERVICE_NAME
from modelplane.protocol.http_client import (
    ClientResponse,
    ConnectFailed,
    HttpClient,
    Target,
    TransportError,
    parse_target,
)
from modelplane.protocol.v2 import InferRequest
from modelplane.protocol.v2_rest import JSON_LENGTH_HEADER, decode_response, encode_request
from modelplane.server.predictor_grpc import RETRY_DELAY, RETRY_MOST_DELAY, grpc_model_ready, grpc_predict
from modelplane.telemetry import tracing

if TYPE_CHECKING:
    from modelplane.server.model import Model

# Headers a transformer passes on to its predictor.
FORWARDED_HEADERS = ("x-request-id", "x-b3-traceid", "authorization", "traceparent")
# Headers of a predictor's answer that the transformer's own answer says for itself.
_PREDICTOR_BODY_HEADERS = frozenset(
    (
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"date",
        b"server",
        JSON_LENGTH_HEADER.encode(),
    )
)

# The longest a readiness check waits for the predictor's answer (a probe should not hang on it).
READINESS_TIMEOUT = 5.0

# Connections belong to the event loop that opened them: one pool per loop (the server's; tests may run
# several), and one per worker thread for the blocking calls of an explainer.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpClient] = weakref.WeakKeyDictionary()
_thread = threading.local()
_targets: dict[tuple[str, str], Target] = {}


def _client() -> HttpClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = HttpClient()
    return client


def _target(host: str, path: str, method: str = "POST") -> Target:
    url = (host if host.startswith(("http://", "https://")) else f"http://{host}") + path
    target = _targets.get((method, url))
    if target is None:
        try:
            target = _targets[method, url] = parse_target(url, method)
        except ValueError as exc:
            raise UpstreamError(f"cannot call the predictor: {exc}", 502) from None
    return target


def _header_lines(headers: dict[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise InvalidInput(f"header {name!r} has a line break in its value")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    return b"".join(lines)


def _forwarded(headers: dict[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


async def forward_predict(
    model: Model, payload: Any, headers: dict[str, str] | None, response_headers: dict | None = None
) -> Any:
    host = model.predictor_host
    if model.predictor_protocol == "grpc-v2":
        span_name, attributes = f"{SERVICE_NAME}/ModelInfer", {"rpc.system": "grpc"}
        with _client_span(span_name, attributes, _forwarded(headers)) as call_headers:
            return await grpc_predict(model, payload, list(call_headers.items()))
    if isinstance(payload, InferRequest) or model.predictor_protocol == "v2":
        body, request_headers = _v2_request(payload, _forwarded(headers))
        path = f"/v2/models/{model.name}/infer"
        response = await _send(_client(), model, host, path, body, request_headers)
        _return_headers(model, response, response_headers)
        length = response.header(JSON_LENGTH_HEADER.encode())
        return decode_response(response.body, int(length) if length else None)
    return await _forward_v1(model, "predict", payload, headers, response_headers)


async def predictor_ready(model: Model) -> bool:
    """KServe's predictor health check: whether the transformer's predictor says it holds the model
    ready, asked in the protocol the transformer speaks to it (V1's model status, V2's model ready,
    gRPC's ModelReady). A predictor that does not answer within `READINESS_TIMEOUT` is not ready."""
    timeout = min(model.predictor_request_timeout_seconds, READINESS_TIMEOUT)
    if model.predictor_protocol == "grpc-v2":
        return await grpc_model_ready(model, timeout)
    v1 = model.predictor_protocol == "v1"
    path = f"/v1/models/{model.name}" if v1 else f"/v2/models/{model.name}/ready"
    try:
        async with asyncio.timeout(timeout):
            response = await _client().post(_target(model.predictor_host, path, "GET"), None)
    except (TransportError, TimeoutError, UpstreamError):
        return False
    if response.status != 200:
        return False
    try:
        return orjson.loads(response.body).get("ready") is not False
    except (orjson.JSONDecodeError, AttributeError):
        return True  # a 200 that says nothing more (V2's ready may have no body)


async def forward_example_verb(
    model: Model,
    verb: str,
    payload: Any,
    headers: dict[str, str] | None,
    response_headers: dict | None = None,
) -> Any:
    """TF Serving's `:classify` or `:regress`, passed on to the predictor: a V1 call whatever protocol
    the transformer speaks for predict (V2 has no such verbs)."""
    if isinstance(payload, InferRequest):
        raise TypeError(
            f"a transformer passes :{verb} on as TF Serving's JSON request; its preprocess returned an "
            "InferRequest"
        )
    return await _forward_v1(model, verb, payload, headers, response_headers)


async def _forward_v1(
    model: Model, verb: str, payload: Any, headers: dict[str, str] | None, response_headers: dict | None
) -> Any:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    path = f"/v1/models/{model.name}:{verb}"
    response = await _send(_client(), model, model.predictor_host, path, body, request_headers)
    _return_headers(model, response, response_headers)
    return orjson.loads(response.body)


def _return_headers(model: Model, response: ClientResponse, response_headers: dict | None) -> None:
    """The predictor's response headers for the transformer's answer, where the model asked for them
    (KServe's `return_response_headers`); not those that describe the predictor's own body."""
    if response_headers is None or not model.return_response_headers:
        return
    for name, value in response.headers:
        if name not in _PREDICTOR_BODY_HEADERS:
            response_headers[name.decode("latin-1")] = value.decode("latin-1")


def _v2_request(payload: Any, forwarded: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """An InferRequest, or a V2 request as a dict (what KServe's transformers may pass on too), as the
    body of an /infer call and its headers."""
    if isinstance(payload, dict):
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        return body, {"content-type": "application/json", **forwarded}
    if not isinstance(payload, InferRequest):
        raise TypeError(
            "a transformer speaking V2 to its predictor must pass on an InferRequest or a V2 request "
            f"dict, not {type(payload).__name__}"
        )
    body, json_length = encode_request(payload)
    if json_length is not None:
        return body, {JSON_LENGTH_HEADER: str(json_length), **forwarded}
    return body, {"content-type": "application/json", **forwarded}


def predict_blocking(model: Model, payload: Any, headers: dict[str, str] | None) -> Any:
    """A V1 `:predict` call to the model's predictor from a worker thread (an explainer querying its
    predictor, as KServe's explainers do)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    path = f"/v1/models/{model.name}:predict"
    loop = getattr(_thread, "loop", None)
    if loop is None:
        loop = _thread.loop = asyncio.new_event_loop()
        _thread.client = HttpClient()
    response = loop.run_until_complete(
        _send(_thread.client, model, model.predictor_host, path, body, request_headers)
    )
    return orjson.loads(response.body)


async def forward_explain(model: Model, payload: Any, headers: dict[str, str] | None) -> Any:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    request_headers = {"content-type": "application/json", **_forwarded(headers)}
    path = f"/v1/models/{model.name}:explain"
    response = await _send(_client(), model, model.explainer_host, path, body, request_headers)
    return orjson.loads(response.body)


async def _send(
    client: HttpClient, model: Model, host: str, path: str, body: bytes, headers: dict[str, str]
) -> ClientResponse:
    """The call, within the model's `predictor_request_timeout_seconds`; its answer, or an
    `UpstreamError`."""
    target = _target(host, path)
    timeout = model.predictor_request_timeout_seconds
    with _client_span(f"POST {path}", {"url.path": path}, headers) as headers:
        try:
            async with asyncio.timeout(timeout):
                response = await _post(
                    client, target, body, _header_lines(headers), model.predictor_request_retries
                )
        except TransportError as exc:
            raise UpstreamError(f"cannot reach {target.url}: {exc}", 502) from None
        except TimeoutError:
            raise UpstreamError(f"{target.url} did not answer within {timeout:g}s", 504) from None
    _raise_for_status(response, target.url)
    return response


async def _post(
    client: HttpClient, target: Target, body: bytes, headers: bytes, retries: int
) -> ClientResponse:
    """KServe's `predictor_request_retries`: a server that takes no connection is tried again, up to
    `retries` more times, after `RETRY_DELAY` and then twice as long each time (at most
    `RETRY_MOST_DELAY`). A call that was sent is never sent again."""
    delay = RETRY_DELAY
    for _ in range(retries):
        try:
            return await client.post(target, body, headers)
        except ConnectFailed:
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MOST_DELAY)
    return await client.post(target, body, headers)


@contextlib.contextmanager
def _client_span(name: str, attributes: dict[str, str], headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """With tracing on, the call is a client span and its `traceparent` goes with it (in place of the
    caller's); off, the caller's trace headers go on as they came."""
    span = tracing.start_span(name, tracing.CLIENT, attributes) if tracing.enabled() else None
    if span is None:
        yield headers
        return
    with span:
        own = {name: value for name, value in headers.items() if name not in ("traceparent", "tracestate")}
        yield {**own, **span.trace_headers()}


def _raise_for_status(response: ClientResponse, url: str) -> None:
    if response.status >= 400:
        text = response.body.decode("utf-8", "replace")
        try:
            message = orjson.loads(response.body).get("error") or text
        except (orjson.JSONDecodeError, AttributeError):
            message = text
        raise UpstreamError(f"{url} answered {response.status}: {message}", response.status)
