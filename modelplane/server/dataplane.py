"""What the REST and gRPC servers share: running a request through a model, and the model catalogue."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modelplane import __version__
from modelplane.protocol.errors import InferenceError, ModelNotFound
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.server import metrics
from modelplane.server.repository import ModelRepository, ServedModel

SERVER_NAME = "modelplane"
EXTENSIONS = ["model_repository_extension", "binary_tensor_data"]


class DataPlane:
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    async def run(
        self, served: ServedModel, payload: Any, headers: dict[str, str], verb: str = "predict"
    ) -> tuple[Any, dict[str, str]]:
        """preprocess → predict (or explain) → postprocess, each timed; returns the result and any
        response headers the model set."""
        stages = served.stages
        stage_seconds = metrics.for_model(served.model.name).stage_seconds
        response_headers: dict[str, str] = {}
        for stage_name in ("preprocess", verb, "postprocess"):
            stage = stages[stage_name]
            if stage.skip:
                continue
            started = time.perf_counter()
            payload = await stage(payload, headers, response_headers)
            stage_seconds[stage_name].observe(time.perf_counter() - started)
        return payload, response_headers

    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    def model_metadata(self, name: str) -> dict:
        model = self.repository.get(name).model
        version = getattr(model, "version", None)
        return {
            "name": name,
            "versions": [version] if version else [],
            "platform": getattr(model, "platform", ""),
            "inputs": model.get_input_types(),
            "outputs": model.get_output_types(),
        }

    def resolve(self, name: str, version: str | None = None) -> ServedModel:
        """The ready model for a request; a version, if given, must be the model's own."""
        served = self.repository.get_ready(name)
        if version is not None:
            check_version(served, name, version)
        return served

    def repository_index(self) -> list[dict]:
        index = []
        for name, served in self.repository.items():
            entry = {"name": name, "state": "READY" if served.model.ready else "UNAVAILABLE"}
            version = getattr(served.model, "version", None)
            if version:
                entry["version"] = version
            if served.load_error:
                entry["reason"] = served.load_error
            index.append(entry)
        return index


def check_version(served: ServedModel, name: str, version: str) -> None:
    own = getattr(served.model, "version", None)
    if version != (own or ""):
        available = f"version {own}" if own else "no versions"
        raise ModelNotFound(name, f"Model {name} has no version {version} (it serves {available}).")


def as_infer_response(result: Any, request: InferRequest, model: Any) -> InferResponse:
    """What a model returned to a V2 request, as an InferResponse."""
    if isinstance(result, InferResponse):
        if result.model_version is None:
            result.model_version = getattr(model, "version", None)
        return result
    if isinstance(result, dict) and "outputs" in result:
        from modelplane.protocol.v2 import InferOutput, decode_inputs

        outputs = [
            InferOutput(o.name, o.shape, o.datatype, o._array, o.parameters)
            for o in decode_inputs(result["outputs"], None, "model response")
        ]
        return InferResponse(result.get("id") or request.id, request.model_name, outputs)
    if isinstance(result, np.ndarray | list | tuple):
        return InferResponse(
            request.id,
            request.model_name,
            [output_from_array("output-0", result)],
            model_version=getattr(model, "version", None),
        )
    raise InferenceError(
        f"model {request.model_name} returned {type(result).__name__} to a V2 request; "
        "expected an InferResponse, a V2 response dict or an array"
    )
