"""Which built-in runtime serves a model folder, from the files in it."""

from __future__ import annotations

import json
from pathlib import Path

from modelplane.runtimes.model_settings import SETTINGS_FILE, settings_runtime
from modelplane.runtimes.paddle_program import holds_paddle_model
from modelplane.runtimes.tensorflow_layout import holds_saved_model

MLMODEL_FILE = "MLmodel"  # an MLflow model folder's description
_BY_EXTENSION = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".json": "xgboost",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".pt2": "pytorch",
    ".mar": "pytorch",
    ".pmml": "pmml",
}


def detect_runtime(model_dir: str | Path) -> str | None:
    """The runtime for the single model file in `model_dir` (or the SavedModel in it, perhaps in numbered
    version folders, the transformers model: a config.json, the MLflow model: an MLmodel file or a
    model-settings.json naming MLServer's mlflow runtime, or the Paddle model: a .pdiparams and its
    program), or None if it cannot tell."""
    path = Path(model_dir)
    if (path / MLMODEL_FILE).is_file():  # before its model.pkl could be taken for an sklearn model
        return "mlflow"
    if settings_runtime(path) == "mlflow":  # MLServer's layout: the MLflow model in a folder its uri names
        return "mlflow"
    if _is_transformers_folder(path):
        return "huggingface"
    if holds_saved_model(path):
        return "tensorflow"
    if path.is_dir() and _is_torchserve_store(path):
        return "pytorch"
    if holds_paddle_model(path):  # before its program (Paddle 3's model.json) is taken for an xgboost model
        return "paddle"
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.is_file())
    found = set()
    for file in files:
        if file.name == SETTINGS_FILE:  # MLServer's settings beside the model, not an xgboost model
            continue
        if file.suffix == ".bst":
            found.add(_bst_runtime(file))
        elif file.suffix == ".txt":
            if is_lightgbm_text(file):
                found.add("lightgbm")
        elif file.suffix in _BY_EXTENSION:
            found.add(_BY_EXTENSION[file.suffix])
    return found.pop() if len(found) == 1 else None


def _is_transformers_folder(folder: Path) -> bool:
    """A transformers model folder: a config.json that names a model type or architectures."""
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and ("model_type" in document or "architectures" in document)


def _is_torchserve_store(folder: Path) -> bool:
    return (folder / "config" / "config.properties").is_file() or (folder / "model-store").is_dir()


def _bst_runtime(file: Path) -> str:
    # XGBoost's .bst is binary or UBJSON.
    return "lightgbm" if is_lightgbm_text(file) else "xgboost"


def is_lightgbm_text(file: Path) -> bool:
    """Whether `file` is a LightGBM text model (they start with "tree"): a folder's README.txt or
    requirements.txt is not."""
    with file.open("rb") as handle:
        return handle.read(4) == b"tree"
