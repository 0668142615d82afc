"""A ModelMesh pool's replicas serve every format of their runtime, a stock image's included."""

from __future__ import annotations

import pytest

from modelplane.api import RuntimeSelectionError
from modelplane.api.runtime_selection import RuntimeSelection
from modelplane.control.mesh_pool_template import pool_template
from modelplane.control.modelmesh import pool_spec


def runtime(image: str, *formats: str, command: list[str] | None = None) -> dict:
    container = {"name": "kserve-container", "image": image}
    if command:
        container["command"] = command
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mm", "namespace": "default"},
        "spec": {
            "multiModel": True,
            "supportedModelFormats": [{"name": name, "autoSelect": True} for name in formats],
            "containers": [container],
        },
    }


def template_of(served: dict) -> dict:
    pool = pool_spec(RuntimeSelection("ServingRuntime", served), "default")
    return pool_template(pool, [served], [])


def test_a_stock_image_of_several_formats_finds_each_models_framework():
    """MLServer serving sklearn, xgboost and lightgbm: before, every model loaded with the sklearn
    runtime (`--runtime=sklearn`, the first format), and an xgboost model failed to load."""
    template = template_of(runtime("seldonio/mlserver:1.3.2", "sklearn", "xgboost", "lightgbm"))
    assert template["command"][:2] == ["modelplane", "serve"]
    assert not any(part.startswith("--runtime") for part in template["command"])
    assert template["image"]["runs"].startswith("modelplane serve")


def test_a_stock_image_of_one_format_keeps_its_runtime():
    template = template_of(runtime("seldonio/mlserver:1.3.2", "xgboost"))
    assert "--runtime=xgboost" in template["command"]
    # Versions of one format are one format.
    served = runtime("seldonio/mlserver:1.3.2", "xgboost", "xgboost")
    assert pool_spec(RuntimeSelection("ServingRuntime", served), "default").formats == ("xgboost",)


def test_the_pool_is_rendered_for_the_first_format_the_image_serves():
    """ModelMesh Serving's triton-2.x lists keras first, which only Triton serves: the pool runs for
    its other formats rather than failing."""
    template = template_of(runtime("nvcr.io/nvidia/tritonserver:23.04-py3", "keras", "onnx", "pytorch"))
    assert template["command"][:2] == ["modelplane", "serve"]
    assert not any(part.startswith("--runtime") for part in template["command"])


def test_a_runtime_none_of_whose_formats_is_served_says_why_for_the_first():
    with pytest.raises(RuntimeSelectionError, match="keras"):
        template_of(runtime("nvcr.io/nvidia/tritonserver:23.04-py3", "keras", "tensorrt"))


def test_a_runtime_with_its_own_command_runs_it_as_written():
    command = ["modelplane", "serve", "--runtime=sklearn"]
    template = template_of(runtime("modelplane:latest", "sklearn", "xgboost", command=command))
    assert template["command"][:3] == command
