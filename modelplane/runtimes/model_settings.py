"""MLServer's `model-settings.json`, read where a runtime stands in for MLServer's sklearn, xgboost,
lightgbm and mlflow runtimes. What modelplane can honour is applied to the model; everything else is
logged as ignored, so that no setting is dropped without a word."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from modelplane.server.request_batching import BatchSettings

logger = logging.getLogger(__name__)

SETTINGS_FILE = "model-settings.json"
# The runtime each of MLServer's model classes is, to catch a file written for another framework.
_IMPLEMENTATIONS = {
    "mlserver_sklearn.SKLearnModel": "sklearn",
    "mlserver_xgboost.XGBoostModel": "xgboost",
    "mlserver_lightgbm.LightGBMModel": "lightgbm",
    "mlserver_mlflow.MLflowRuntime": "mlflow",
}


class ModelSettingsError(ValueError):
    """A model-settings.json that cannot be read."""


def apply_model_settings(model: Any, runtime: str) -> bool:
    """Applies the model folder's model-settings.json, if it has one, to a model not yet loaded, and
    says whether it had one. A version given on the command line wins over the file's."""
    path = Path(model.model_dir) / SETTINGS_FILE
    if not path.is_file():
        return False
    settings = _read(path)
    ignored = []
    model.adaptive_batching = _adaptive_batching(settings, path)
    for key, value in settings.items():
        if key == "name":
            if value != model.name:
                ignored.append(f"name {value!r} (the model is served as {model.name!r})")
        elif key == "implementation":
            if _IMPLEMENTATIONS.get(value) != runtime:
                ignored.append(f"implementation {value!r} (the {runtime} runtime serves it)")
        elif key == "platform":
            model.platform = str(value)
        elif key in ("inputs", "outputs"):
            tensors = _tensors(value, key, path)
            setattr(model, f"{key[:-1]}_types", tensors)
            if key == "inputs":
                model.input_content_types = _content_types(tensors)
        elif key in ("max_batch_size", "max_batch_time"):
            pass  # _adaptive_batching
        elif key == "parameters" and isinstance(value, dict):
            ignored += _apply_parameters(model, value, path)
        else:
            ignored.append(key)
    if ignored:
        logger.warning(
            "model %s: %s: %s: not acted on by modelplane serve",
            model.name,
            SETTINGS_FILE,
            "; ".join(ignored),
        )
    return True


def _adaptive_batching(settings: dict, path: Path) -> BatchSettings | None:
    """MLServer's adaptive batching, on when `max_batch_size` is above 1 and `max_batch_time` (seconds)
    above 0: requests wait up to max_batch_time for others, up to max_batch_size requests (whatever
    their rows) a model call."""
    size = settings.get("max_batch_size", 0)
    seconds = settings.get("max_batch_time", 0)
    if type(size) is not int or type(seconds) not in (int, float) or not 0 <= seconds < float("inf"):
        raise ModelSettingsError(
            f"{path}: max_batch_size must be a whole number and max_batch_time a number of seconds"
        )
    if size <= 1 or seconds <= 0:
        if size > 1 or seconds > 0:
            logger.warning(
                "%s: adaptive batching needs both max_batch_size above 1 and max_batch_time above 0 "
                "(it is off, as in MLServer)",
                path,
            )
        return None
    return BatchSettings(max_batch_size=size, max_latency=float(seconds), counts_requests=True)


def _read(path: Path) -> dict:
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSettingsError(f"{path}: {SETTINGS_FILE} is not valid JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise ModelSettingsError(f"{path}: {SETTINGS_FILE} must hold a JSON object")
    return settings


def _apply_parameters(model: Any, parameters: dict, path: Path) -> list[str]:
    ignored = []
    for key, value in parameters.items():
        if key == "version":
            if not getattr(model, "version", None):
                model.version = str(value)
        elif key == "uri":
            model.model_dir = path.parent / str(value)
        elif key == "content_type" and value in ("np", "pd", "str"):
            model.default_content_type = value
        elif key == "extra" and isinstance(value, dict):
            ignored += _apply_extra(model, value)
        else:
            ignored.append(f"parameters.{key}")
    return ignored


def _apply_extra(model: Any, extra: dict) -> list[str]:
    """`parameters.extra`: MLServer's sklearn runtime reads `predict_fn`, the method that answers a
    request naming no outputs; its xgboost and lightgbm runtimes read nothing of it."""
    ignored = []
    for key, value in extra.items():
        if key == "predict_fn" and hasattr(model, "predict_fn") and isinstance(value, str):
            model.predict_fn = value
        else:
            ignored.append(f"parameters.extra.{key}")
    return ignored


def _tensors(value: Any, key: str, path: Path) -> list[dict]:
    """The tensors of `inputs` or `outputs`, as V2 model metadata lists them."""
    if not isinstance(value, list) or not all(isinstance(tensor, dict) for tensor in value):
        raise ModelSettingsError(f"{path}: {key} must be a list of objects")
    return [
        {
            "name": tensor.get("name"),
            "datatype": tensor.get("datatype"),
            "shape": tensor.get("shape"),
            **({"parameters": tensor["parameters"]} if isinstance(tensor.get("parameters"), dict) else {}),
        }
        for tensor in value
    ]


def _content_types(inputs: list[dict]) -> dict[str, str]:
    """{input name: content type} for the inputs that declare one: how a request's input of that name
    is read when it does not say (MLServer reads its metadata so)."""
    return {
        tensor["name"]: tensor["parameters"]["content_type"]
        for tensor in inputs
        if isinstance(tensor.get("name"), str) and (tensor.get("parameters") or {}).get("content_type")
    }


def settings_runtime(folder: Path) -> str | None:
    """The runtime of the MLServer model class a folder's model-settings.json names, if any."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        implementation = json.loads(path.read_text()).get("implementation")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None  # read again, and refused with why, when the model is made
    return _IMPLEMENTATIONS.get(implementation) if isinstance(implementation, str) else None
