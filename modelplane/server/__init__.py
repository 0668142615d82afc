"""The model server: write a `Model`, serve it with `ModelServer`."""

from modelplane.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
)
from modelplane.protocol.v2 import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from modelplane.server.model import Model
from modelplane.server.model_server import ModelServer
from modelplane.server.request_batching import BatchSettings

__all__ = [
    "BatchSettings",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceError",
    "InvalidInput",
    "Model",
    "ModelNotFound",
    "ModelNotReady",
    "ModelServer",
    "RequestedOutput",
]
