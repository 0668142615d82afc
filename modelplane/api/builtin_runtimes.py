"""The ClusterServingRuntimes modelplane ships (the YAML files in `runtimes/`).

kserve-sklearnserver, kserve-xgbserver, kserve-lgbserver, kserve-pmmlserver, kserve-paddleserver,
kserve-torchserve and kserve-huggingfaceserver keep KServe's names, formats, versions, priorities and protocols;
modelplane-onnxserver serves onnx models, which KServe gives to Triton, modelplane-tensorflowserver
TensorFlow SavedModels, which KServe gives to TF Serving (v1) or Triton (v2), and
modelplane-mlflowserver MLflow models, which KServe gives to MLServer.
Each runs `modelplane serve` with `{{.Name}}`-style placeholders filled in from the InferenceService.

They are there without being applied; a stored ClusterServingRuntime of the same name replaces one
(`with_builtin_runtimes`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import cache
from importlib import resources

from .loader import load_text

BUILT_IN_ANNOTATION = "modelplane.io/built-in"


@cache
def _load() -> tuple[dict, ...]:
    folder = resources.files(__package__).joinpath("runtimes")
    documents = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            documents += load_text(entry.read_text(encoding="utf-8"), source=f"runtimes/{entry.name}")
    return tuple(doc.resource for doc in documents)


def builtin_cluster_runtimes() -> list[dict]:
    """Fresh copies of the default ClusterServingRuntimes, in name order."""
    return copy.deepcopy(list(_load()))


def builtin_runtime_names() -> list[str]:
    return [runtime["metadata"]["name"] for runtime in _load()]


def with_builtin_runtimes(stored: Sequence[dict]) -> list[dict]:
    """The ClusterServingRuntimes in effect: the stored ones, and the built-in ones that no stored one
    replaces (annotated `modelplane.io/built-in: "true"`), in name order."""
    names = {runtime["metadata"]["name"] for runtime in stored}
    builtin = [runtime for runtime in builtin_cluster_runtimes() if runtime["metadata"]["name"] not in names]
    for runtime in builtin:
        runtime["metadata"].setdefault("annotations", {})[BUILT_IN_ANNOTATION] = "true"
    return sorted([*stored, *builtin], key=lambda runtime: runtime["metadata"]["name"])
