"""The methods of `inference.GRPCInferenceService`, for serving them and for building a client.

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
