"""MLServer's `model-settings.json`, read where a tabular runtime stands in for MLServer's sklearn,
xgboost and lightgbm runtimes. What modelplane can honour is applied to the model; everything else is
logged as ignored, so that no setting is dropped without a word."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SETTINGS_FILE = "model-settings.json"
# The runtime each of MLServer's model classes is, to catch a file written for another framework.
_IMPLEMENTATIONS = {
    "mlserver_sklearn.SKLearnModel": "sklearn",
    "mlserver_xgboost.XGBoostModel": "xgboost",
    "mlserver_lightgbm.LightGBMModel": "lightgbm",
}


class ModelSettingsError(ValueError):
    """A model-settings.json that cannot be read."""


def apply_model_settings(model: Any, runtime: str) -> None:
    """Applies the model folder's model-settings.json, if it has one, to a TabularModel not yet loaded.
    A version given on the command line wins over the file's."""
    path = Path(model.model_dir) / SETTINGS_FILE
    if not path.is_file():
        return
    settings = _read(path)
    ignored = []
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
            setattr(model, f"{key[:-1]}_types", _tensors(value, key, path))
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
        else:
            ignored.append(f"parameters.{key}")
    return ignored


def _tensors(value: Any, key: str, path: Path) -> list[dict]:
    """The tensors of `inputs` or `outputs`, as V2 model metadata lists them."""
    if not isinstance(value, list) or not all(isinstance(tensor, dict) for tensor in value):
        raise ModelSettingsError(f"{path}: {key} must be a list of objects")
    return [
        {"name": tensor.get("name"), "datatype": tensor.get("datatype"), "shape": tensor.get("shape")}
        for tensor in value
    ]
