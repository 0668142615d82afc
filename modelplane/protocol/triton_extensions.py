"""Triton's extensions of the V2 protocol that modelplane does not serve, and what their callers are told.

tritonclient has a call for each (`get_model_config`, `get_inference_statistics`, `get_trace_settings`,
`get_log_settings`, the shared-memory registrations, `stream_infer`), and Triton's LLM backends are called
through its generate extension; each is answered with REST 501 or gRPC UNIMPLEMENTED and a message that
names what to use instead, rather than a bare "no such route".
"""

from __future__ import annotations

MODEL_CONFIGURATION = (
    "modelplane does not serve Triton's model configuration (GET /v2/models/{model}/config, gRPC "
    "ModelConfig): a model's inputs and outputs are in its metadata (GET /v2/models/{model}, gRPC "
    "ModelMetadata)"
)
STATISTICS = (
    "modelplane does not serve Triton's statistics extension (GET /v2/models/stats, gRPC ModelStatistics): "
    "request counts and durations are Prometheus metrics, on GET /metrics"
)
TRACE = (
    "modelplane does not serve Triton's trace extension (/v2/trace/setting, gRPC TraceSetting): requests are "
    "traced with OpenTelemetry when the server starts with OTEL_EXPORTER_OTLP_ENDPOINT set"
)
LOGGING = (
    "modelplane does not serve Triton's logging extension (/v2/logging, gRPC LogSettings): the log level is "
    "set when the server starts (--log-level)"
)
SHARED_MEMORY = (
    "modelplane does not serve Triton's shared-memory extension (system or CUDA shared memory): send "
    "tensors in the request (JSON 'data', the binary extension, or gRPC contents)"
)
GENERATE = (
    "modelplane does not serve Triton's generate extension (POST /v2/models/{model}/generate, "
    "generate_stream): send V2 inference requests to /v2/models/{model}/infer, or, to a text generation "
    "model, OpenAI's requests to /openai/v1/completions and /openai/v1/chat/completions"
)
STREAMING = (
    "modelplane does not serve ModelStreamInfer (Triton's bidirectional streaming, for decoupled models): "
    "send each request with ModelInfer"
)

GRPC_METHODS = {
    "ModelConfig": MODEL_CONFIGURATION,
    "ModelStatistics": STATISTICS,
    "TraceSetting": TRACE,
    "LogSettings": LOGGING,
    "SystemSharedMemoryStatus": SHARED_MEMORY,
    "SystemSharedMemoryRegister": SHARED_MEMORY,
    "SystemSharedMemoryUnregister": SHARED_MEMORY,
    "CudaSharedMemoryStatus": SHARED_MEMORY,
    "CudaSharedMemoryRegister": SHARED_MEMORY,
    "CudaSharedMemoryUnregister": SHARED_MEMORY,
    "ModelStreamInfer": STREAMING,
}

_TOP_LEVEL_ROUTES = {
    "trace": TRACE,
    "logging": LOGGING,
    "systemsharedmemory": SHARED_MEMORY,
    "cudasharedmemory": SHARED_MEMORY,
}
_MODEL_ROUTES = {
    ("config",): MODEL_CONFIGURATION,
    ("stats",): STATISTICS,
    ("trace", "setting"): TRACE,
    ("generate",): GENERATE,
    ("generate_stream",): GENERATE,
}


def unserved_v2_route(parts: list[str]) -> str | None:
    """Why a REST route of Triton's is not served, or None if `parts` (the path after `/v2`, split at
    `/`) is not one of them."""
    if not parts:
        return None
    if parts[0] in _TOP_LEVEL_ROUTES:
        return _TOP_LEVEL_ROUTES[parts[0]]
    if parts[0] != "models":
        return None
    if parts[1:] == ["stats"]:
        return STATISTICS
    rest = parts[2:]  # after /models/{model}
    if len(rest) >= 2 and rest[0] == "versions":
        rest = rest[2:]
    return _MODEL_ROUTES.get(tuple(rest))
