"""A transformer's `predict` over gRPC (KServe's `--protocol grpc-v2`): the predictor's
`inference.GRPCInferenceService/ModelInfer`, called with grpcio.

As KServe's transformer does it: the predictor host gets port 80 (443 with TLS) when it names none,
the preprocess result is an `InferRequest` (or a `ModelInferRequest`), the answer reaches postprocess
as an `InferResponse`, and the call carries the forwarded headers as metadata, with
`request_type`/`response_type: grpc_v2`. Where modelplane differs: a V2 request written as a dict is
passed on too (KServe refuses it), a host under `.localhost` is dialled at 127.0.0.1 with the name as
the call's authority (the gateway routes by it), and the predictor's status code reaches the
transformer's own clients (over REST as the HTTP status that code stands for).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import TYPE_CHECKING, Any

import grpc
import orjson

from modelplane.protocol.errors import UpstreamError
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.protocol.v2 import InferRequest, InferResponse
from modelplane.protocol.v2_grpc import request_to_grpc, response_from_grpc
from modelplane.protocol.v2_rest import decode_request

if TYPE_CHECKING:
    from modelplane.server.model import Model

# The HTTP status each gRPC code stands for, as gRPC's HTTP mapping (and grpc-gateway) has it.
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
# What grpcio says of a call that found no server to send it to (as opposed to a server's UNAVAILABLE).
_UNREACHABLE = ("failed to connect", "connection refused", "dns resolution failed", "name resolution")
# No size limit of grpcio's own on the hop (the predictor and the transformer have theirs), as KServe.
# No BDP pings: on a hop within a machine or a cluster they cost both sides CPU on every few calls
# (a transformer served about a fifth more calls a second without them); a wide window instead keeps
# large answers flowing without them.
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 8 * 2**20),
]

# Channels belong to the event loop that opened them: one set per loop, one channel per predictor.
_stubs: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], tuple[InferenceStub, str]]
] = weakref.WeakKeyDictionary()
# Seconds before the first retry of a call (KServe's predictor_request_retries), over gRPC and REST
# alike, and the longest wait between retries, as KServe's gRPC client waits.
RETRY_DELAY = 0.1
RETRY_MOST_DELAY = 1.0


async def grpc_predict(model: Model, payload: Any, metadata: list[tuple[str, str]]) -> InferResponse:
    """`payload` sent to the model's predictor as a `ModelInfer` call; its answer, or an `UpstreamError`
    with the predictor's status."""
    message = _message(model, payload)
    stub, target = _stub(model.predictor_host, model.predictor_request_retries)
    timeout = model.predictor_request_timeout_seconds
    # gRPC metadata carries printable ASCII only: a forwarded header with other bytes stays behind.
    forwarded = [(name, value) for name, value in metadata if value.isascii() and value.isprintable()]
    call_metadata = [("request_type", "grpc_v2"), ("response_type", "grpc_v2"), *forwarded]
    try:
        answer = await stub.ModelInfer(message, metadata=call_metadata, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        raise _upstream_error(error, target, timeout) from None
    return response_from_grpc(answer)


async def grpc_model_ready(model: Model, timeout: float) -> bool:
    """The predictor's `ModelReady` for the model; a predictor that does not answer is not ready."""
    stub, _ = _stub(model.predictor_host, model.predictor_request_retries)
    try:
        answer = await stub.ModelReady(pb.ModelReadyRequest(name=model.name), timeout=timeout)
    except grpc.aio.AioRpcError:
        return False
    return answer.ready


def _message(model: Model, payload: Any) -> pb.ModelInferRequest:
    if isinstance(payload, pb.ModelInferRequest):
        message = payload
    elif isinstance(payload, InferRequest):
        message = request_to_grpc(payload)
    elif isinstance(payload, dict) and "inputs" in payload:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        message = request_to_grpc(decode_request(body, None, model.name))
    else:
        raise TypeError(
            "a transformer speaking grpc-v2 to its predictor must pass on an InferRequest, a "
            f"ModelInferRequest or a V2 request dict, not {type(payload).__name__}"
        )
    if not message.model_name:
        message.model_name = model.name
    return message


def _stub(host: str, retries: int) -> tuple[InferenceStub, str]:
    loop = asyncio.get_running_loop()
    stubs = _stubs.setdefault(loop, {})
    found = stubs.get((host, retries))
    if found is None:
        found = stubs[host, retries] = _open(host, retries)
    return found


def _open(host: str, retries: int) -> tuple[InferenceStub, str]:
    """A stub on a new channel to `host` (`name:port`, or an `https://` URL for TLS), and the target
    its errors name. With `retries`, a call answered UNAVAILABLE is made again up to that many more
    times (gRPC's retry policy, which grpcio caps at 4 retries)."""
    tls = host.startswith("https://")
    address = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    if not address or "/" in address:
        raise UpstreamError(f"cannot call the predictor over gRPC: {host!r} is not a host[:port]", 502)
    name, colon, port = address.rpartition(":")
    if not (colon and port.isdigit()):
        name, port = address, "443" if tls else "80"
    target = f"{name}:{port}"
    options = list(_CHANNEL_OPTIONS)
    if retries > 0:
        options += [("grpc.enable_retries", 1), ("grpc.service_config", _retry_policy(retries))]
    dialled = target
    if name.lower().endswith(".localhost"):
        # `*.localhost` is the loopback (RFC 6761), which the system resolver may not know: dial
        # 127.0.0.1 and name the host as the call's authority.
        dialled = f"127.0.0.1:{port}"
        options.append(("grpc.default_authority", target))
    if tls:
        channel = grpc.aio.secure_channel(dialled, grpc.ssl_channel_credentials(), options=options)
    else:
        channel = grpc.aio.insecure_channel(dialled, options=options)
    return InferenceStub(channel), target


def _retry_policy(retries: int) -> str:
    policy = {
        "maxAttempts": retries + 1,
        "initialBackoff": f"{RETRY_DELAY}s",
        "maxBackoff": f"{RETRY_MOST_DELAY}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": [{}], "retryPolicy": policy}]})


def _upstream_error(error: grpc.aio.AioRpcError, target: str, timeout: float) -> UpstreamError:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        failure = UpstreamError(f"{target} did not answer within {timeout:g}s", 504)
    elif code == grpc.StatusCode.UNAVAILABLE and any(word in details.lower() for word in _UNREACHABLE):
        failure = UpstreamError(f"cannot reach {target} over gRPC: {details}", 502)
    else:
        failure = UpstreamError(f"{target} answered {code.name}: {details}", _HTTP_STATUS.get(code, 500))
    failure.grpc_code = code
    return failure
