"""The V2 gRPC server (`inference.GRPCInferenceService`), on the same event loop and models as REST."""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import grpc

from modelplane.protocol.errors import InvalidInput, ModelplaneError
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import generic_handler
from modelplane.protocol.v2_grpc import request_from_grpc, response_to_grpc
from modelplane.server import metrics
from modelplane.server.dataplane import DataPlane, as_infer_response

logger = logging.getLogger("modelplane.server")


async def start_grpc_server(
    dataplane: DataPlane, host: str, port: int, max_message_length: int
) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", max_message_length),
            ("grpc.max_receive_message_length", max_message_length),
            ("grpc.so_reuseport", 1),
        ]
    )
    server.add_generic_rpc_handlers((generic_handler(InferenceServicer(dataplane)),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.add_insecure_port(address)
    await server.start()
    return server


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, ModelplaneError):
        await context.abort(exc.grpc_code, exc.message)
    logger.error("unhandled error in a gRPC call\n%s", traceback.format_exc())
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__} : {exc}")


class InferenceServicer:
    def __init__(self, dataplane: DataPlane):
        self.dataplane = dataplane
        self.repository = dataplane.repository

    async def ServerLive(self, request: pb.ServerLiveRequest, context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await self.repository.not_ready_reason() is None)

    async def ModelReady(self, request: pb.ModelReadyRequest, context) -> pb.ModelReadyResponse:
        try:
            ready = await self.repository.is_ready(request.name)
            if ready and request.version:
                self.dataplane.resolve(request.name, request.version)
            return pb.ModelReadyResponse(ready=ready)
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context) -> pb.ModelMetadataResponse:
        try:
            if request.version:
                self.dataplane.resolve(request.name, request.version)
            metadata = self.dataplane.model_metadata(request.name)
            return pb.ModelMetadataResponse(
                name=metadata["name"],
                versions=metadata["versions"],
                platform=metadata["platform"],
                inputs=[_tensor_metadata(item) for item in metadata["inputs"]],
                outputs=[_tensor_metadata(item) for item in metadata["outputs"]],
            )
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)

    async def ModelInfer(self, message: pb.ModelInferRequest, context) -> pb.ModelInferResponse:
        started = time.perf_counter()
        name = message.model_name
        code = grpc.StatusCode.INTERNAL
        try:
            served = self.dataplane.resolve(name, message.model_version or None)
            request, raw_inputs = request_from_grpc(message)
            headers = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            result, _ = await self.dataplane.run(served, request, headers)
            response = response_to_grpc(as_infer_response(result, request, served.model), request, raw_inputs)
            code = grpc.StatusCode.OK
            return response
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, ModelplaneError):
                code = exc.grpc_code
            await _abort(context, exc)
        finally:
            metrics.for_model(name).observe_request("grpc", code.value[0], time.perf_counter() - started)

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context
    ) -> pb.RepositoryIndexResponse:
        entries = self.dataplane.repository_index()
        if request.ready:
            entries = [entry for entry in entries if entry["state"] == "READY"]
        return pb.RepositoryIndexResponse(
            models=[pb.RepositoryIndexResponse.ModelIndex(**e) for e in entries]
        )

    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest, context) -> Any:
        try:
            name = _model_name(request)
            await self.repository.load(name)
            return pb.RepositoryModelLoadResponse(model_name=name, isLoaded=True)
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)

    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest, context) -> Any:
        try:
            name = _model_name(request)
            await self.repository.unload(name)
            return pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)


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
