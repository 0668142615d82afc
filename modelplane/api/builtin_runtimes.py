"""The ClusterServingRuntimes modelplane ships (the YAML files in `runtimes/`).

kserve-sklearnserver, kserve-xgbserver and kserve-lgbserver keep KServe's names, formats, versions,
priorities and protocols; modelplane-onnxserver serves onnx models, which KServe gives to Triton, and
modelplane-tensorflowserver TensorFlow SavedModels, which KServe gives to TF Serving (v1) or Triton (v2).
Each runs `modelplane serve` with `{{.Name}}`-style placeholders filled in from the InferenceService.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources

from .loader import load_text


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
