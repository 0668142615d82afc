"""The V2 gRPC service (`inference.GRPCInferenceService`), on the same event loop and models as REST.

It runs on modelplane's own HTTP/2 server (modelplane/protocol/http2), which costs far less per call than
grpcio's server; `tritonclient` and grpcio clients speak to it unchanged.
"""

from __future__ import annotations

from typing import Any

import grpc

from modelplane.protocol import triton_extensions, v2_repository
from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.grpc import health
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import METHODS, SERVICE_NAME
from modelplane.protocol.grpc.wire import (
    GrpcStatus,
    Metadata,
    UnaryMethod,
    UnaryService,
    declared_body_size,
    response_status,
    status_response,
)
from modelplane.protocol.http2.server import H2Request, H2Response, Handler, ServerLimits
from modelplane.protocol.v2_grpc import request_from_grpc, response_to_grpc
from modelplane.runtimes import tensorflow_grpc
from modelplane.server.connection_limits import ConnectionLimits
from modelplane.server.dataplane import DataPlane
from modelplane.server.responses import picking_request, v2_answer
from modelplane.telemetry import tracing

# The calls that are traced, and payload-logged by a server that logs: those whose REST form is a
# POST (the others, probes and metadata, are asked for all the time).
OBSERVED_CALLS = frozenset(
    [
        *(
            f"/{SERVICE_NAME}/{name}".encode()
            for name in ("ModelInfer", "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload")
        ),
        tensorflow_grpc.PREDICT.encode(),
    ]
)


def inference_service(
    dataplane: DataPlane,
    max_message_length: int,
    connection: ConnectionLimits | None = None,
    max_send_length: int | None = None,
) -> tuple[Handler, ServerLimits]:
    """The service (traced when tracing is on), and the HTTP/2 limits that go with it: the largest
    request message, and the largest response message (by default the same). Beside V2 it answers TF
    Serving's gRPC API for TensorFlow models (tensorflow_grpc.py)."""
    connection = connection or ConnectionLimits()
    servicer = InferenceServicer(dataplane)
    methods = {
        f"/{SERVICE_NAME}/{name}": UnaryMethod(request_class, getattr(servicer, name))
        for name, (request_class, _) in METHODS.items()
    }
    methods[health.CHECK] = UnaryMethod(health.HealthCheckRequest, servicer.health_check)
    not_served = {
        f"/{SERVICE_NAME}/{name}": message for name, message in triton_extensions.GRPC_METHODS.items()
    }
    tf_serving, tf_serving_not_served = tensorflow_grpc.served(dataplane)
    methods.update(tf_serving)
    not_served.update(tf_serving_not_served)
    unary = UnaryService(methods, max_message_length, not_served, max_send_length)
    limits = ServerLimits(
        max_body_size=max_message_length + 5,  # the message and its length prefix
        too_large_response=unary.too_large_body,
        declared_body_size=declared_body_size,
        failure_response=_internal_error,
        stalled_response=_stalled,
        http2=connection.http2,
        idle_timeout=connection.idle_timeout,
        body_timeout=connection.body_timeout,
        headers_response=unary.answer_from_headers,
    )
    service: Handler = unary
    if tracing.enabled():
        service = traced_calls(service, OBSERVED_CALLS)
    return service, limits


def _stalled(seconds: float) -> H2Response:
    return status_response(
        grpc.StatusCode.CANCELLED, f"the request message stopped arriving: nothing came for {seconds:g}s"
    )


def _internal_error(exc: Exception) -> H2Response:
    # The HTTP/2 server has logged it with its traceback; the client gets its type and message.
    return status_response(grpc.StatusCode.INTERNAL, f"{type(exc).__name__} : {exc}")


class InferenceServicer:
    def __init__(self, dataplane: DataPlane):
        self.dataplane = dataplane
        self.repository = dataplane.repository

    async def ServerLive(self, request: pb.ServerLiveRequest, metadata: Metadata) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, metadata: Metadata) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await self.repository.not_ready_reason() is None)

    async def health_check(
        self, request: health.HealthCheckRequest, metadata: Metadata
    ) -> health.HealthCheckResponse:
        """gRPC's health service, for the server as a whole ("") or the inference service: serving
        once every model is ready."""
        if request.service not in ("", SERVICE_NAME):
            raise GrpcStatus(grpc.StatusCode.NOT_FOUND, f"no service {request.service!r} here")
        ready = await self.repository.not_ready_reason() is None
        return health.HealthCheckResponse(health.SERVING if ready else health.NOT_SERVING)

    async def ModelReady(self, request: pb.ModelReadyRequest, metadata: Metadata) -> pb.ModelReadyResponse:
        ready = await self.repository.is_ready(request.name)
        if ready and request.version:
            self.dataplane.resolve(request.name, request.version)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, metadata: Metadata
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, metadata: Metadata
    ) -> pb.ModelMetadataResponse:
        if request.version:
            self.dataplane.resolve(request.name, request.version)
        found = self.dataplane.model_metadata(request.name)
        return pb.ModelMetadataResponse(
            name=found["name"],
            versions=found["versions"],
            platform=found["platform"],
            inputs=[_tensor_metadata(item) for item in found["inputs"]],
            outputs=[_tensor_metadata(item) for item in found["outputs"]],
        )

    async def ModelInfer(self, message: pb.ModelInferRequest, metadata: Metadata) -> pb.ModelInferResponse:
        with self.dataplane.grpc_call(message.model_name):
            served = self.dataplane.resolve(message.model_name, message.model_version or None)
            request, raw_inputs = request_from_grpc(message)
            result, _ = await self.dataplane.run(served, request, metadata)
            answer = v2_answer(result, request, served.model)
            return response_to_grpc(answer, picking_request(request, served.model), raw_inputs)

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, metadata: Metadata
    ) -> pb.RepositoryIndexResponse:
        entries = self.dataplane.repository_index(ready_only=request.ready)
        return pb.RepositoryIndexResponse(
            models=[pb.RepositoryIndexResponse.ModelIndex(**e) for e in entries]
        )

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, metadata: Metadata
    ) -> pb.RepositoryModelLoadResponse:
        name = _model_name(request)
        parameters = v2_repository.grpc_parameters(request.parameters)
        load = v2_repository.check_load_parameters(parameters)
        await self.repository.load(name, load.model_id, load.schema)
        return pb.RepositoryModelLoadResponse(model_name=name, isLoaded=True)

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, metadata: Metadata
    ) -> pb.RepositoryModelUnloadResponse:
        name = _model_name(request)
        v2_repository.check_unload_parameters(v2_repository.grpc_parameters(request.parameters))
        await self.repository.unload(name)
        return pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)


def traced_calls(handler: Handler, traced: frozenset[bytes]) -> Handler:
    """The gRPC server's handler, each call to the methods in `traced` (paths) a server span, the child
    of the caller's `traceparent`, when the call is traced here; a `ModelInfer`'s stages are its
    children."""

    async def traced_call(request: H2Request) -> H2Response:
        path = request.header(b":path")
        if path not in traced:
            return await handler(request)
        span, _ = tracing.enter_call(request.headers, path.decode(), "model server")
        if span is None:
            return await handler(request)
        with span:
            response = await handler(request)
            tracing.end_call(span, response_status(response)[0])
        return response

    return traced_call


def _model_name(request: Any) -> str:
    # Repository-qualified requests put the repository in field 1 and the model in field 2.
    name = request.repository_model_name or request.model_name
    if not name:
        raise InvalidInput("model_name is required")
    return name


def _tensor_metadata(item: dict) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=item["name"], datatype=item["datatype"], shape=item["shape"]
    )
