"""Small builders for resources used across the api tests."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from modelplane.api import ValidationError, admit, load_file

SAMPLES = Path(__file__).parent / "samples"
KSERVE_RUNTIMES = Path(__file__).parent / "kserve_runtimes"


def sample(name: str) -> dict:
    return load_file(SAMPLES / name)[0].resource


def isvc(
    predictor: dict | None = None, *, name: str = "my-model", annotations: dict | None = None, **spec
) -> dict:
    metadata: dict = {"name": name, "namespace": "default"}
    if annotations:
        metadata["annotations"] = dict(annotations)
    body = {"predictor": predictor if predictor is not None else sklearn_predictor(), **spec}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": body,
    }


def sklearn_predictor(**fields) -> dict:
    return {"sklearn": {"storageUri": "file:///models/iris"}, **fields}


def model_predictor(format_name: str = "sklearn", **model_fields) -> dict:
    return {"model": {"modelFormat": {"name": format_name}, "storageUri": "file:///models/m", **model_fields}}


def rejection(resource: dict, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        admit(copy.deepcopy(resource), **kwargs)
    return caught.value


def messages(resource: dict, **kwargs) -> list[str]:
    return [e.message for e in rejection(resource, **kwargs).errors]


def fields(resource: dict, **kwargs) -> list[str]:
    return [e.path for e in rejection(resource, **kwargs).errors]
