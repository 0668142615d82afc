"""Built-in model runtimes, each importing its library only when chosen."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the platform reads RUNTIMES without importing the model server
    from modelplane.server.model import Model

# runtime name -> (module, class, the extra that installs its library)
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "sklearn": ("modelplane.runtimes.sklearn", "SKLearnModel", "sklearn"),
    "xgboost": ("modelplane.runtimes.xgboost", "XGBoostModel", "xgboost"),
    "lightgbm": ("modelplane.runtimes.lightgbm", "LightGBMModel", "lightgbm"),
    "onnx": ("modelplane.runtimes.onnx", "ONNXModel", "onnx"),
    "pytorch": ("modelplane.runtimes.pytorch", "PyTorchModel", "pytorch"),
    "tensorflow": ("modelplane.runtimes.tensorflow", "TensorFlowModel", "tensorflow"),
    "pmml": ("modelplane.runtimes.pmml", "PMMLModel", "pmml"),
    "paddle": ("modelplane.runtimes.paddle", "PaddleModel", "paddle"),
    "huggingface": ("modelplane.runtimes.huggingface.model", "HuggingFaceModel", "huggingface"),
    "mlflow": ("modelplane.runtimes.mlflow", "MLflowModel", "mlflow"),
}


class RuntimeUnavailable(Exception):
    """A runtime whose library is not installed, or an unknown runtime name."""


def runtime_class(runtime: str) -> type[Model]:
    try:
        module_name, class_name, _extra = RUNTIMES[runtime]
    except KeyError:
        known = ", ".join([*RUNTIMES, "custom"])
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; choose one of {known}") from None
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
