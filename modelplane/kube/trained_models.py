"""TrainedModels on the cluster: the ConfigMap `modelconfig-<isvc>-0` of a multi-model predictor, whose
`models.json` lists its TrainedModels as KServe's model agent reads it:
`[{"modelName": ..., "modelSpec": {"storageUri": ..., "framework": ..., "memory": ...}}]`.

KServe makes it (empty) for every multi-model predictor, owned by the InferenceService, and its
TrainedModel controller adds and removes entries. The model agent in each of the predictor's pods
(`model_agent.py`, `modelplane agent`) reads it from the mounted ConfigMap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from modelplane.agent.model_list import MODELS_FILE, listed_model
from modelplane.control.trained_models import parent_name
from modelplane.kube.meta import INFERENCE_SERVICE_LABEL, object_metadata

MODELS_KEY = MODELS_FILE


def model_config_name(isvc_name: str) -> str:
    return f"modelconfig-{isvc_name}-0"


def model_entry(tm: dict) -> dict:
    model = (tm.get("spec") or {}).get("model") or {}
    spec = {key: model.get(key) for key in ("storageUri", "framework", "memory")}
    return listed_model(tm["metadata"]["name"], spec)


def model_config(isvc: dict, namespace: str, trained_models: Sequence[dict]) -> dict:
    """The ConfigMap of `isvc`'s models: those of `trained_models` that name it, in order."""
    name = isvc["metadata"]["name"]
    entries = [model_entry(tm) for tm in trained_models if parent_name(tm) == name]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_metadata(
            model_config_name(name), namespace, isvc, {INFERENCE_SERVICE_LABEL: name}
        ),
        "data": {MODELS_KEY: json.dumps(entries, separators=(",", ":"))},
    }
