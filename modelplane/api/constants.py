"""Names and values from the serving.kserve.io API that several modules share."""

from __future__ import annotations

# Annotations and labels on an InferenceService.
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
KNATIVE_AUTOSCALER_CLASS_ANNOTATION = "autoscaling.knative.dev/class"
GPU_RESOURCE_TYPES_ANNOTATION = "serving.kserve.io/gpu-resource-types"
MODEL_FORMAT_ANNOTATION = "modelFormat"
SERVER_TYPE_ANNOTATION = "serving.kserve.io/server-type"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"

# The port of the sidecar in front of a model server in its pod (KServe's agent; modelplane logger).
AGENT_PORT = 9081

# Deployment modes; the legacy names are still accepted and normalised.
STANDARD = "Standard"
KNATIVE = "Knative"
MODEL_MESH = "ModelMesh"
LEGACY_RAW_DEPLOYMENT = "RawDeployment"
LEGACY_SERVERLESS = "Serverless"
LEGACY_DEPLOYMENT_MODES = {LEGACY_RAW_DEPLOYMENT: STANDARD, LEGACY_SERVERLESS: KNATIVE}

# Autoscaler classes (Standard mode) and metrics.
AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")
KNATIVE_HPA_CLASS = "hpa.autoscaling.knative.dev"
HPA_METRICS = ("cpu", "memory")
KPA_METRICS = ("concurrency", "rps")

# Protocol versions, in the order that ranks runtimes (v1 first).
PROTOCOL_V1 = "v1"
PROTOCOL_V2 = "v2"
PROTOCOL_GRPC_V1 = "grpc-v1"
PROTOCOL_GRPC_V2 = "grpc-v2"
PROTOCOL_VERSIONS = (PROTOCOL_V1, PROTOCOL_V2, PROTOCOL_GRPC_V1, PROTOCOL_GRPC_V2)

# Container names with a meaning.
PREDICTOR_CONTAINER = "kserve-container"
TRANSFORMER_CONTAINER = "transformer-container"
WORKER_CONTAINER = "worker-container"

# Environment variables read by custom containers.
STORAGE_URI_ENV = "STORAGE_URI"
MULTI_MODEL_SERVER_ENV = "MULTI_MODEL_SERVER"  # "true": a custom predictor that serves TrainedModels
PROTOCOL_ENV = "PROTOCOL"
PIPELINE_PARALLEL_SIZE_ENV = "PIPELINE_PARALLEL_SIZE"
TENSOR_PARALLEL_SIZE_ENV = "TENSOR_PARALLEL_SIZE"
BLOCKED_ENV_VARS = ("PYTHONPATH",)

# The framework shorthands of a predictor, each with the model format it stands for, in the
# order the defaulting webhook looks at them.
FRAMEWORK_SHORTHANDS = {
    "sklearn": "sklearn",
    "tensorflow": "tensorflow",
    "xgboost": "xgboost",
    "pytorch": "pytorch",
    "triton": "triton",
    "onnx": "onnx",
    "huggingface": "huggingface",
    "pmml": "pmml",
    "lightgbm": "lightgbm",
    "paddle": "paddle",
}
# Shorthands whose protocol defaults to v2 when they become `model`.
V2_SHORTHANDS = ("triton", "onnx", "huggingface")
# Model formats whose protocol defaults to v2.
V2_MODEL_FORMATS = ("triton", "vLLM")

DEFAULT_MIN_REPLICAS = 1
DEFAULT_MOUNT_PATH = "/mnt/models"

# The labels KServe's TrainedModel controller keeps on each TrainedModel: the service it belongs to, and
# the one whose memory it has its place in.
TRAINED_MODEL_SERVICE_LABEL = "inferenceservice"
TRAINED_MODEL_ALLOCATED_LABEL = "serving.kserve.io/trainedmodel-allocated"
