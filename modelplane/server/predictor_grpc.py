"""A transformer's `predict` over gRPC (KServe's `--protocol grpc-v2`): the predictor's
`inference.GRPCInferenceService/ModelInfer`, called over modelplane's own HTTP/2
(modelplane/protocol/grpc/client.py).

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
import weakref
from typing import TYPE_CHECKING, Any

import grpc
import orjson
from google.protobuf.message import DecodeError

from modelplane.protocol.errors import UpstreamError
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.client import GrpcCallError, GrpcChannel, tls_context
from modelplane.protocol.grpc.service import SERVICE_NAME
from modelplane.protocol.grpc.status import HTTP_STATUS
from modelplane.protocol.v2 import InferRequest, InferResponse
from modelplane.protocol.v2_grpc import request_to_grpc, response_from_grpc
from modelplane.protocol.v2_rest import decode_request

if TYPE_CHECKING:
    from modelplane.server.model import Model

# Channels belong to the event loop that opened them: one set per loop, one channel per predictor.
_channels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[GrpcChannel, str]]] = (
    weakref.WeakKeyDictionary()
)
# Seconds before the first retry of a call (KServe's predictor_request_retries), over gRPC and REST
# alike, and the longest wait between retries, as KServe's gRPC client waits.
RETRY_DELAY = 0.1
RETRY_MOST_DELAY = 1.0


async def grpc_predict(model: Model, payload: Any, metadata: list[tuple[str, str]]) -> InferResponse:
    """`payload` sent to the model's predictor as a `ModelInfer` call; its answer, or an `UpstreamError`
    with the predictor's status."""
    message = _message(model, payload).SerializeToString()
    # gRPC metadata carries printable ASCII only: a forwarded header with other bytes stays behind.
    forwarded = [(name, value) for name, value in metadata if value.isascii() and value.isprintable()]
    call_metadata = [("request_type", "grpc_v2"), ("response_type", "grpc_v2"), *forwarded]
    answer = await _call(model, "ModelInfer", message, call_metadata, model.predictor_request_timeout_seconds)
    try:
        return response_from_grpc(pb.ModelInferResponse.FromString(answer))
    except DecodeError as exc:
        raise UpstreamError(f"the predictor's answer is not a ModelInferResponse: {exc}", 502) from None


async def grpc_model_ready(model: Model, timeout: float) -> bool:
    """The predictor's `ModelReady` for the model; a predictor that does not answer is not ready."""
    request = pb.ModelReadyRequest(name=model.name).SerializeToString()
    try:
        answer = await _call(model, "ModelReady", request, [], timeout, retries=0)
        return pb.ModelReadyResponse.FromString(answer).ready
    except (UpstreamError, DecodeError):
        return False


async def _call(
    model: Model,
    method: str,
    message: bytes,
    metadata: list[tuple[str, str]],
    timeout: float,
    retries: int | None = None,
) -> bytes:
    """A call to the predictor, made again (KServe's `predictor_request_retries`, as gRPC's retry
    policy makes it) while the predictor is UNAVAILABLE, within one deadline for all the tries."""
    channel, target = _channel(model.predictor_host)
    retries = model.predictor_request_retries if retries is None else retries
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay, retries_left = RETRY_DELAY, retries
    while True:
        try:
            return await channel.unary(f"/{SERVICE_NAME}/{method}", message, metadata, deadline - loop.time())
        except GrpcCallError as error:
            again = error.code == grpc.StatusCode.UNAVAILABLE and retries_left > 0
            if not again or deadline - loop.time() <= delay:
                raise _upstream_error(error, target, timeout) from None
        retries_left -= 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MOST_DELAY)


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


def _channel(host: str) -> tuple[GrpcChannel, str]:
    loop = asyncio.get_running_loop()
    channels = _channels.setdefault(loop, {})
    found = channels.get(host)
    if found is None:
        found = channels[host] = _open(host)
    return found


def _open(host: str) -> tuple[GrpcChannel, str]:
    """A channel to `host` (`name:port`, or an `https://` URL for TLS), and the target its errors name."""
    tls = host.startswith("https://")
    address = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    if not address or "/" in address:
        raise UpstreamError(f"cannot call the predictor over gRPC: {host!r} is not a host[:port]", 502)
    name, colon, port = address.rpartition(":")
    if not (colon and port.isdigit()):
        name, port = address, "443" if tls else "80"
    target = f"{name}:{port}"
    dialled = target
    if name.lower().endswith(".localhost"):
        # `*.localhost` is the loopback (RFC 6761), which the system resolver may not know: dial
        # 127.0.0.1 and name the host as the call's authority.
        dialled = f"127.0.0.1:{port}"
    return GrpcChannel(dialled, target, tls_context() if tls else None), target


def _upstream_error(error: GrpcCallError, target: str, timeout: float) -> UpstreamError:
    code = error.code
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        failure = UpstreamError(f"{target} did not answer within {timeout:g}s", 504)
    elif not error.connected:
        failure = UpstreamError(f"cannot reach {target} over gRPC: {error.details}", 502)
    else:
        failure = UpstreamError(f"{target} answered {code.name}: {error.details}", HTTP_STATUS[code.value[0]])
    failure.grpc_code = code
    return failure
