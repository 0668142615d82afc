"""What the controller writes onto an InferenceService once its runtime is chosen.

`model.runtime` names the runtime; mlserver, torchserve and triton runtimes get their own defaults
(keyed on the runtime's `serving.kserve.io/server-type` annotation, else on its well-known name); a
model without a protocolVersion gets the runtime's lowest one.
"""

from __future__ import annotations

import copy

from .constants import PROTOCOL_GRPC_V2, PROTOCOL_V1, PROTOCOL_V2, SERVER_TYPE_ANNOTATION
from .runtime_selection import RuntimeSelection, lowest_protocol

_SERVER_TYPES_BY_NAME = {
    "kserve-mlserver": "mlserver",
    "kserve-torchserve": "torchserve",
    "kserve-tritonserver": "tritonserver",
    "kserve-tensorflow-serving": "tensorflow-serving",
    "kserve-huggingfaceserver": "huggingfaceserver",
    "kserve-vllmserver": "vllmserver",
}
_MLSERVER_MODEL_CLASSES = {
    "xgboost": "mlserver_xgboost.XGBoostModel",
    "lightgbm": "mlserver_lightgbm.LightGBMModel",
    "mlflow": "mlserver_mlflow.MLflowRuntime",
}
_MLSERVER_DEFAULT_MODEL_CLASS = "mlserver_sklearn.SKLearnModel"


def server_type(selection: RuntimeSelection) -> str:
    """The kind of server a runtime runs (`mlserver`, `sklearnserver`...), or "" if it does not say."""
    annotations = (selection.runtime.get("metadata") or {}).get("annotations") or {}
    if SERVER_TYPE_ANNOTATION in annotations:
        return annotations[SERVER_TYPE_ANNOTATION]
    return _SERVER_TYPES_BY_NAME.get(selection.name, "")


def apply_runtime(isvc: dict, selection: RuntimeSelection) -> dict:
    """A copy of a defaulted InferenceService with its runtime's choices written in."""
    isvc = copy.deepcopy(isvc)
    model = isvc["spec"]["predictor"]["model"]
    model["runtime"] = selection.name
    kind = server_type(selection)
    if kind == "mlserver":
        _mlserver_defaults(isvc, model)
    elif kind == "torchserve":
        _torchserve_defaults(isvc, model)
    elif kind == "tritonserver":
        _triton_defaults(model)
    if not model.get("protocolVersion"):
        protocol = lowest_protocol(selection.spec)
        if protocol is not None:
            model["protocolVersion"] = protocol
    return isvc


def _has_storage(model: dict) -> bool:
    return model.get("storageUri") is not None or model.get("storage") is not None


def _append_env_if_missing(model: dict, name: str, value: str) -> None:
    env = model.setdefault("env", [])
    if not any(item.get("name") == name for item in env):
        env.append({"name": name, "value": value})


def _mlserver_defaults(isvc: dict, model: dict) -> None:
    model.setdefault("protocolVersion", PROTOCOL_V2)
    if _has_storage(model):
        _append_env_if_missing(model, "MLSERVER_MODEL_NAME", isvc["metadata"]["name"])
        _append_env_if_missing(model, "MLSERVER_MODEL_URI", "/mnt/models")
    else:
        _append_env_if_missing(model, "MLSERVER_LOAD_MODELS_AT_STARTUP", "false")
    format_name = (model.get("modelFormat") or {}).get("name")
    model_class = _MLSERVER_MODEL_CLASSES.get(format_name, _MLSERVER_DEFAULT_MODEL_CLASS)
    isvc["metadata"].setdefault("labels", {})["modelClass"] = model_class


def _torchserve_defaults(isvc: dict, model: dict) -> None:
    protocol = model.setdefault("protocolVersion", PROTOCOL_V1)
    envelope = "kservev2" if protocol in (PROTOCOL_V2, PROTOCOL_GRPC_V2) else "kserve"
    isvc["metadata"].setdefault("labels", {})["serviceEnvelope"] = envelope
    model.setdefault("env", []).append({"name": "PROTOCOL_VERSION", "value": protocol})


def _triton_defaults(model: dict) -> None:
    model.setdefault("protocolVersion", PROTOCOL_V2)
    if not _has_storage(model):
        model.setdefault("args", []).append("--model-control-mode=explicit")
