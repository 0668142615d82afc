"""The REST server: V1 and V2 inference protocols as a handler of whole HTTP requests.

It runs on the shared HTTP/1.1 server of `modelplane.protocol.http_server`, which hands over each
request with its whole body and writes each response in one go. Routing is a split of the path, not a
framework: the request path is the hot path, and every microsecond spent here is one a model does not
get.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import orjson

from modelplane.protocol import cloudevents, lean_json, v2_repository
from modelplane.protocol.content_coding import ACCEPTED_CODINGS, UnsupportedContentEncoding, decoded_request
from modelplane.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelplaneError,
    NotImplementedByModel,
    PayloadTooLarge,
)
from modelplane.protocol.http1_wire import warning_headers
from modelplane.protocol.http_server import HttpRequest, HttpResponse, checked_header
from modelplane.protocol.openai import OpenAIError
from modelplane.protocol.triton_extensions import STATISTICS, unserved_v2_route
from modelplane.protocol.v2 import InferRequest, InferResponse
from modelplane.protocol.v2_rest import (
    JSON_LENGTH_HEADER,
    decode_request,
    encode_response,
    parse_json_length,
)
from modelplane.server import metrics, mlflow_scoring
from modelplane.server.dataplane import DataPlane, check_version
from modelplane.server.openai_routes import SSE_CONTENT_TYPE, OpenAIEndpoints, route_prefix
from modelplane.server.payload_logging import ServerPayloadLog
from modelplane.server.repository import ServedModel
from modelplane.server.responses import picking_request, v2_answer
from modelplane.server.v1_paths import EXAMPLE_VERBS, V1Path, parse_v1_path
from modelplane.telemetry import tracing

logger = logging.getLogger("modelplane.server")

JSON_HEADERS = [(b"content-type", b"application/json")]
# Content types V1 parses as JSON; any other is handed to the model as raw bytes. Form encoding is
# what `curl -d` sends by default, and no inference client sends real form data.
_V1_JSON_TYPES = (
    "",
    "application/json",
    "application/cloudevents+json",
    "application/ld+json",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
)
_SSE_HEADERS = [(b"content-type", SSE_CONTENT_TYPE), (b"cache-control", b"no-cache")]
_DUMPS = orjson.OPT_SERIALIZE_NUMPY
DEFAULT_MAX_BODY = 256 * 1024 * 1024


class HTTPResponse:
    __slots__ = ("status", "headers", "body", "stream")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] = JSON_HEADERS,
        stream: AsyncIterator[bytes] | None = None,
    ):
        self.status = status
        self.body = body
        self.headers = headers
        self.stream = stream


def json_response(document: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(status, orjson.dumps(document, option=_DUMPS))


def error_response(status: int, message: str) -> HTTPResponse:
    return HTTPResponse(status, orjson.dumps({"error": message}))


def _error_before_routing(error: ModelplaneError, target: bytes) -> HttpResponse:
    """The answer to a request refused before it reaches a route; on the OpenAI routes, OpenAI's error
    object."""
    status = error.status_code
    document = (
        OpenAIError(error.message, status).to_json() if _openai_route(target) else {"error": error.message}
    )
    headers = (
        [(b"accept-encoding", ACCEPTED_CODINGS)] if isinstance(error, UnsupportedContentEncoding) else []
    )
    return HttpResponse(status, orjson.dumps(document), b"application/json", headers)


def _openai_route(target: bytes) -> bool:
    """Whether `RESTServer.handle` sends a request for `target` to the OpenAI routes."""
    path = target.decode("latin-1")
    return path.startswith(route_prefix()) and not path.startswith(("/v2", "/v1/models"))


class RESTServer:
    """Serves the models of a `DataPlane`: `handle` answers one whole HTTP request."""

    def __init__(
        self,
        dataplane: DataPlane,
        payload_log: ServerPayloadLog | None = None,
        max_body_size: int = DEFAULT_MAX_BODY,
    ):
        self.dataplane = dataplane
        self.openai = OpenAIEndpoints(dataplane.repository, route_prefix())
        self.payload_log = payload_log
        self.max_body_size = max_body_size  # of a body once its content-encoding is undone

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = None
        try:
            request = decoded_request(request, self.max_body_size)
        except ModelplaneError as exc:  # a body that cannot be decoded: logged as it came
            refused = _error_before_routing(exc, request.path)
        if (
            self.payload_log is None or request.method != b"POST"
        ):  # probes, metadata and metrics are not payloads
            return refused or await self._answer(request)
        capture = self.payload_log.request(request)
        return self.payload_log.answer(capture, refused or await self._answer(request))

    def too_large(self, limit: int, request: HttpRequest, size: int) -> HttpResponse:
        """The answer to a request whose body of `size` bytes is over the size limit, which the HTTP
        server sends without reading the body, and closes; logged as any answer, the body left out."""
        error = PayloadTooLarge(f"the request body exceeds {limit} bytes")
        response = _error_before_routing(error, request.path)
        if self.payload_log is None or request.method != b"POST":
            return response
        return self.payload_log.answer(self.payload_log.request(request, unread_size=size), response)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        target = request.path
        query = target.find(b"?")
        path = (target if query < 0 else target[:query]).decode("latin-1")
        if "%" in path:
            path = unquote(path, encoding="latin-1")
        method = request.method.decode("latin-1")
        if method == "POST" and tracing.enabled():
            # A server span, the child of the caller's span (its `traceparent`), when the request is
            # traced here; the model's stages are its children.
            span, _ = tracing.enter(request.headers, method, path, "model server")
            if span is None:
                response = await self.handle(method, path, request)
            else:
                with span:
                    response = await self.handle(method, path, request)
                    span.set_attribute("http.response.status_code", response.status)
                    if response.status >= 500:
                        span.fail()
        else:
            response = await self.handle(method, path, request)
        return HttpResponse(response.status, response.body, None, response.headers, response.stream)

    async def handle(self, method: str, path: str, request: HttpRequest) -> HTTPResponse:
        try:
            if path.startswith("/v2"):
                return await self._v2(method, path, request)
            if path.startswith("/v1/models"):
                return await self._v1(method, path, request)
            if path.startswith(self.openai.prefix):
                return await self._openai(method, path, request)
            if path in mlflow_scoring.SCORING_PATHS:
                return await self._mlflow_scoring(method, path, request)
            if path == "/":
                return _only(method, "GET") or json_response({"status": "alive"})
            if path == "/metrics":
                body, content_type = metrics.exposition()
                return _only(method, "GET") or HTTPResponse(
                    200, body, [(b"content-type", content_type.encode())]
                )
            return _not_found()
        except ModelplaneError as exc:
            return error_response(exc.status_code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            logger.error("unhandled error on %s %s\n%s", method, path, traceback.format_exc())
            return error_response(500, f"{type(exc).__name__} : {exc}")

    async def _mlflow_scoring(self, method: str, path: str, request: HttpRequest) -> HTTPResponse:
        content_type = next((value for name, value in request.headers if name == b"content-type"), b"")
        status, body, answered_type = await mlflow_scoring.answer(
            method, path, request.body, content_type.decode("latin-1"), self.dataplane.repository
        )
        return HTTPResponse(status, body, [(b"content-type", answered_type.encode())])

    # -- V1 -------------------------------------------------------------------------------------

    async def _v1(self, method: str, path: str, request: HttpRequest) -> HTTPResponse:
        rest = path[len("/v1/models") :]
        if rest in ("", "/"):
            return _only(method, "GET") or json_response({"models": self.dataplane.repository.names()})
        target = parse_v1_path(rest[1:]) if rest.startswith("/") else None
        if target is None:
            return _not_found()
        if target.verb is None:
            if method != "GET":
                return _method_not_allowed("GET")
            if target.metadata:
                return self._v1_metadata(target)
            repository = self.dataplane.repository
            await repository.check_ready(target.name)
            served = _v1_version_checked(target, repository.get(target.name))
            # The name the model answers as (a repository load's `model_id`), as its V2 metadata gives.
            return json_response({"name": served.model.name, "ready": True, **served.model.v1_status()})
        if target.verb not in ("predict", "explain", *EXAMPLE_VERBS):
            return _not_found()
        if method != "POST":
            return _method_not_allowed("POST")
        return await self._v1_infer(target, request)

    def _v1_metadata(self, target: V1Path) -> HTTPResponse:
        served = _v1_version_checked(target, self.dataplane.repository.get_ready(target.name))
        metadata = served.model.v1_metadata()
        return _not_found() if metadata is None else json_response(metadata)

    async def _v1_infer(self, target: V1Path, request: HttpRequest) -> HTTPResponse:
        name, verb = target.name, target.verb
        started = time.perf_counter()
        status = 500
        try:
            served = _v1_version_checked(target, self.dataplane.repository.get_ready(name))
            if verb in EXAMPLE_VERBS and verb not in served.stages:
                raise NotImplementedByModel(EXAMPLE_VERBS[verb].format(name))
            headers = _headers(request)
            body = request.body
            event = cloudevents.from_request(headers, body)
            if event is not None:
                body = event.data
            content_type = headers.get("content-type", "").split(";", 1)[0].strip()
            if event is not None or content_type in _V1_JSON_TYPES:
                payload = _parse_v1_json(body, _reads_instances_as_array(served, verb))
            else:
                payload = body
            result, response_headers = await self.dataplane.run(served, payload, headers, verb)
            response = _answer(_v1_result(result), event, name, response_headers)
            status = response.status
            return response
        except ModelplaneError as exc:
            status = exc.status_code
            raise
        finally:
            self.dataplane.request_metrics(name).observe_request("v1", status, time.perf_counter() - started)

    # -- OpenAI ---------------------------------------------------------------------------------

    async def _openai(self, method: str, path: str, request: HttpRequest) -> HTTPResponse:
        started = time.perf_counter()
        answer = await self.openai.handle(method, path, request.body)
        model_metrics = self.dataplane.request_metrics(_model_field(request.body))
        model_metrics.observe_request("openai", answer.status, time.perf_counter() - started)
        headers = warning_headers(answer.warnings)
        if answer.allow is not None:
            headers.append((b"allow", answer.allow.encode()))
        if answer.events is not None:
            return HTTPResponse(answer.status, b"", _SSE_HEADERS + headers, answer.events)
        return HTTPResponse(answer.status, orjson.dumps(answer.document), JSON_HEADERS + headers)

    # -- V2 -------------------------------------------------------------------------------------

    async def _v2(self, method: str, path: str, request: HttpRequest) -> HTTPResponse:
        parts = path.rstrip("/").split("/")[2:]  # "/v2/models/m/infer" -> ["models", "m", "infer"]
        dataplane = self.dataplane
        if not parts:
            return _only(method, "GET") or json_response(dataplane.server_metadata())
        head = parts[0]
        if head == "models":
            return await self._v2_models(method, parts[1:], request)
        if head == "health" and len(parts) == 2:
            if parts[1] == "live":
                return _only(method, "GET") or json_response({"live": True})
            if parts[1] == "ready":
                return _only(method, "GET") or await self._server_ready()
        if head == "repository":
            return await self._v2_repository(method, parts[1:], request)
        return _v2_not_found(parts)

    async def _server_ready(self) -> HTTPResponse:
        reason = await self.dataplane.repository.not_ready_reason()
        if reason is not None:
            return HTTPResponse(503, orjson.dumps({"ready": False, "error": reason}))
        return json_response({"ready": True})

    async def _v2_models(self, method: str, parts: list[str], request: HttpRequest) -> HTTPResponse:
        dataplane = self.dataplane
        if not parts:
            return _only(method, "GET") or json_response({"models": dataplane.repository.names()})
        name, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if not rest:
            # Triton's statistics route, unless a model has that name.
            if name == "stats" and name not in dataplane.repository:
                return error_response(501, STATISTICS)
            if method != "GET":
                return _method_not_allowed("GET")
            served = dataplane.repository.get(name)
            if version is not None:
                check_version(served, name, version)
            return json_response(dataplane.model_metadata(name))
        if rest == ["ready"]:
            if method != "GET":
                return _method_not_allowed("GET")
            await dataplane.repository.check_ready(name)
            if version is not None:
                dataplane.resolve(name, version)
            return json_response({"name": dataplane.repository.get(name).model.name, "ready": True})
        if rest == ["infer"]:
            if method != "POST":
                return _method_not_allowed("POST")
            return await self._v2_infer(name, version, request)
        return _v2_not_found(["models", *parts])

    async def _v2_infer(self, name: str, version: str | None, request: HttpRequest) -> HTTPResponse:
        started = time.perf_counter()
        status = 500
        try:
            served = self.dataplane.resolve(name, version)
            headers = _headers(request)
            body = request.body
            event = cloudevents.from_request(headers, body)
            if event is not None:
                body = event.data
                json_length = None
            else:
                json_length = parse_json_length(headers.get(JSON_LENGTH_HEADER))
            request = decode_request(body, json_length, name)
            result, response_headers = await self.dataplane.run(served, request, headers)
            infer_response = v2_answer(result, request, served.model)
            picked = _v2_infer_response(infer_response, picking_request(request, served.model))
            response = _answer(picked, event, name, response_headers)
            status = response.status
            return response
        except ModelplaneError as exc:
            status = exc.status_code
            raise
        finally:
            self.dataplane.request_metrics(name).observe_request("v2", status, time.perf_counter() - started)

    async def _v2_repository(self, method: str, parts: list[str], request: HttpRequest) -> HTTPResponse:
        repository = self.dataplane.repository
        if parts == ["index"]:
            if method not in ("GET", "POST"):
                return _method_not_allowed("GET, POST")
            return json_response(self.dataplane.repository_index(_index_ready_only(request.body)))
        if len(parts) == 3 and parts[0] == "models" and parts[2] in ("load", "unload"):
            if method != "POST":
                return _method_not_allowed("POST")
            name = parts[1]
            parameters = v2_repository.rest_parameters(request.body)
            if parts[2] == "load":
                load = v2_repository.check_load_parameters(parameters)
                await repository.load(name, load.model_id, load.schema)
                return json_response({"name": name, "load": True})
            v2_repository.check_unload_parameters(parameters)
            await repository.unload(name)
            return json_response({"name": name, "unload": True})
        return _not_found()


def _headers(request: HttpRequest) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}


def _answer(
    response: HTTPResponse, event: cloudevents.IncomingEvent | None, name: str, response_headers: dict
) -> HTTPResponse:
    """An inference's response, as a CloudEvent when the request was one, with the headers its model set."""
    if event is not None:
        # The event carries the answer in its own content type; the other headers (the binary
        # extension's JSON length) stay, as they describe the event's data.
        content_type = next((value for key, value in response.headers if key == b"content-type"), None)
        others = [(key, value) for key, value in response.headers if key != b"content-type"]
        event_headers, response.body = cloudevents.to_response(
            event, name, response.body, content_type.decode("latin-1") if content_type else "application/json"
        )
        response.headers = event_headers + others
    if response_headers:
        response.headers = response.headers + _encode_headers(response_headers)
    return response


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """The headers a model set, checked before they are written (no response splitting)."""
    try:
        return [checked_header(name, value) for name, value in headers.items()]
    except ValueError as exc:
        raise InferenceError(f"the model set a response header that cannot be sent: {exc}") from None


def _reads_instances_as_array(served: ServedModel, verb: str) -> bool:
    """Whether the model's predict is the first to read the request, and reads its instances as one
    array, so that a large body's may be read lean."""
    return verb == "predict" and served.model.reads_v1_instances_as_array and served.stages["preprocess"].skip


def _parse_v1_json(body: bytes, instances_as_array: bool = False) -> Any:
    if not body:
        raise InvalidInput("Unrecognized request format: the request body is empty")
    if instances_as_array:
        payload = lean_json.load_v1(body)
        if payload is not None:
            return payload
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Unrecognized request format: {exc}") from None
    if isinstance(payload, dict) and "instances" in payload and not isinstance(payload["instances"], list):
        raise InvalidInput('Expected "instances" to be a list')
    return payload


def _index_ready_only(body: bytes) -> bool:
    """The `ready` of a repository index request (an empty body asks for every model)."""
    document = v2_repository.rest_body(body, "the repository index request")
    ready = document.get("ready", False)
    if type(ready) is not bool:
        raise InvalidInput(f"'ready' must be true or false, got {orjson.dumps(ready).decode()[:40]}")
    return ready


def _v1_version_checked(target: V1Path, served: ServedModel) -> ServedModel:
    """The model, if the version a V1 path names (TF Serving's `/versions/{v}`) is its own; a version
    label (`/labels/{l}`) never is, as one version is served."""
    if target.version is not None:
        check_version(served, target.name, target.version)
    if target.label is not None:
        raise ModelNotFound(
            target.name, f"Model {target.name} has no version label {target.label!r}: modelplane serves none"
        )
    return served


def _v1_result(result: Any) -> HTTPResponse:
    if isinstance(result, InferResponse):
        # A V2 answer to a V1 request (a transformer's that left its predictor's as it came): KServe
        # sends its V2 JSON.
        document, json_length = result.to_rest()
        if json_length is None:
            return json_response(document)
        return _v2_body(document, json_length)
    if isinstance(result, bytes):
        return HTTPResponse(200, result, [(b"content-type", b"application/octet-stream")])
    if isinstance(result, str):
        return HTTPResponse(200, result.encode(), [(b"content-type", b"text/plain; charset=utf-8")])
    try:
        return json_response(result)
    except TypeError as exc:
        raise ModelplaneError(f"the model's response cannot be sent as JSON: {exc}") from None


def _v2_infer_response(response: Any, request: InferRequest) -> HTTPResponse:
    body, json_length = encode_response(response, request)
    if json_length is None:
        return HTTPResponse(200, body)
    return _v2_body(body, json_length)


def _v2_body(body: bytes, json_length: int) -> HTTPResponse:
    """A V2 answer with binary tensors after its JSON."""
    return HTTPResponse(
        200,
        body,
        [
            (b"content-type", b"application/octet-stream"),
            (JSON_LENGTH_HEADER.encode(), str(json_length).encode()),
        ],
    )


def _only(method: str, allowed: str) -> HTTPResponse | None:
    return None if method == allowed else _method_not_allowed(allowed)


def _not_found() -> HTTPResponse:
    return error_response(404, "Not Found: no such route")


def _v2_not_found(parts: list[str]) -> HTTPResponse:
    """404, or 501 saying so for a route of Triton's extensions that modelplane does not serve."""
    unserved = unserved_v2_route(parts)
    return _not_found() if unserved is None else error_response(501, unserved)


def _method_not_allowed(allowed: str) -> HTTPResponse:
    """405, with the `Allow` header HTTP requires of it (`allowed`: `GET`, or `GET, POST`)."""
    return HTTPResponse(
        405, orjson.dumps({"error": "Method Not Allowed"}), [*JSON_HEADERS, (b"allow", allowed.encode())]
    )


def _model_field(body: bytes) -> str:
    """The `model` an OpenAI request names, for its metrics ("" when it names none)."""
    try:
        model = orjson.loads(body).get("model") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""
