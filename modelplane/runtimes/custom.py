"""Custom Python models: a `Model` subclass named as `module:Class` or `path/to/file.py:Class`."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from modelplane.server.model import Model


class CustomModelError(Exception):
    """The named class cannot be found or built."""


def load_model_class(reference: str) -> type:
    target, sep, class_name = reference.rpartition(":")
    if not sep or not target or not class_name:
        raise CustomModelError(
            f"--model-class must look like module:Class or file.py:Class, got {reference!r}"
        )
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise CustomModelError(f"model class file {target} does not exist")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file failed to import
            raise CustomModelError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise CustomModelError(f"cannot import module {target!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise CustomModelError(f"{target} has no class named {class_name!r}")
    return cls


def build_custom_model(reference: str, name: str, model_dir: str | None) -> Model:
    """Instantiate the user's class; it gets `model_dir` too if its constructor asks for it."""
    cls = load_model_class(reference)
    parameters = inspect.signature(cls).parameters
    kwargs = {}
    if "model_dir" in parameters and model_dir is not None:
        kwargs["model_dir"] = model_dir
    model = cls(name, **kwargs)
    if not isinstance(model, Model) and not hasattr(model, "predict"):
        raise CustomModelError(f"{reference} is neither a modelplane Model nor has a predict method")
    return model
