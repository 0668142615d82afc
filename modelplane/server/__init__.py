"""The model server: write a `Model`, serve it with `ModelServer`.

A program written with KServe's SDK changes its imports from `kserve` to `modelplane.server`
(docs/model-server.md, "Coming from KServe").
"""

from modelplane.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotReady,
    UnsupportedProtocol,
)
from modelplane.protocol.random_ids import random_uuid
from modelplane.protocol.v2 import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from modelplane.server import logging, model_server
from modelplane.server.model import Model
from modelplane.server.model_server import ModelServer
from modelplane.server.predictor_config import PredictorConfig
from modelplane.server.request_batching import BatchSettings


def generate_uuid() -> str:
    """KServe's `kserve.utils.utils.generate_uuid`: a response id."""
    return random_uuid()


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
    "PredictorConfig",
    "RequestedOutput",
    "ServerNotReady",
    "UnsupportedProtocol",
    "generate_uuid",
    "logging",
    "model_server",
]
