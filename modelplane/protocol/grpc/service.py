"""The methods of `inference.GRPCInferenceService`, for registering a server and building a client.

Written against the message classes directly, so no generated service stubs (and no pin on the grpcio
version that generated them) are needed.
"""

from __future__ import annotations

import grpc

from modelplane.protocol.grpc import inference_pb2 as pb

SERVICE_NAME = "inference.GRPCInferenceService"

# method name -> (request class, response class)
METHODS: dict[str, tuple[type, type]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
    "RepositoryIndex": (pb.RepositoryIndexRequest, pb.RepositoryIndexResponse),
    "RepositoryModelLoad": (pb.RepositoryModelLoadRequest, pb.RepositoryModelLoadResponse),
    "RepositoryModelUnload": (pb.RepositoryModelUnloadRequest, pb.RepositoryModelUnloadResponse),
}


def generic_handler(servicer: object) -> grpc.GenericRpcHandler:
    """A handler routing each method to the servicer's coroutine of the same name."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (request, response) in METHODS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


class InferenceStub:
    """A client: one callable attribute per method, on a sync or asyncio channel."""

    def __init__(self, channel: grpc.Channel | grpc.aio.Channel):
        for name, (request, response) in METHODS.items():
            setattr(
                self,
                name,
                channel.unary_unary(
                    f"/{SERVICE_NAME}/{name}",
                    request_serializer=request.SerializeToString,
                    response_deserializer=response.FromString,
                ),
            )
