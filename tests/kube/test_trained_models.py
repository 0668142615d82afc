"""A multi-model predictor: an empty, writable model folder, and the ConfigMap of its TrainedModels as
KServe's model agent reads it."""

from __future__ import annotations

import json

from modelplane.kube.settings import KubeSettings

from .helpers import SAMPLES, named, render_file, render_text


def test_the_model_config_lists_the_trained_models():
    rendering = render_file(SAMPLES / "multi-model.yaml", KubeSettings())
    config = named(rendering, "ConfigMap", "modelconfig-isvc-sklearn-mms-0")
    assert config["metadata"]["labels"] == {"serving.kserve.io/inferenceservice": "isvc-sklearn-mms"}
    assert json.loads(config["data"]["models.json"]) == [
        {
            "modelName": name,
            "modelSpec": {
                "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                "framework": "sklearn",
                "memory": "128Mi",
            },
        }
        for name in ("model1-sklearn", "model2-sklearn")
    ]
    pod = named(rendering, "Deployment", "isvc-sklearn-mms-predictor")["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    server = pod["containers"][0]
    assert {"name": "MULTI_MODEL_SERVER", "value": "true"} in server["env"]
    assert server["volumeMounts"] == [{"name": "model-dir", "mountPath": "/mnt/models"}]
    assert pod["volumes"] == [{"name": "model-dir", "emptyDir": {}}]


def test_a_service_with_a_model_has_no_model_config():
    rendering = render_file(SAMPLES / "sklearn-v2-mlserver.yaml", KubeSettings())
    assert not [o for o in rendering.objects if o["kind"] == "ConfigMap"]


def test_a_trained_model_without_its_service_says_so():
    rendering = render_file(SAMPLES.parent.parent / "api" / "samples" / "trained-model.yaml", KubeSettings())
    assert rendering.objects == []
    (note,) = rendering.notes
    assert (note.path, note.message.split(",")[0]) == (
        "spec.inferenceService",
        "InferenceService sklearn-iris-example is not in the input",
    )


def test_a_trained_model_on_a_service_with_its_own_model_says_so():
    rendering = render_text(
        (SAMPLES / "sklearn-v2-mlserver.yaml").read_text()
        + "---\n"
        + (SAMPLES / "multi-model.yaml")
        .read_text()
        .split("---\n")[1]
        .replace("isvc-sklearn-mms", "isvc-sklearn-v2")
    )
    (note,) = rendering.notes
    assert note.message.startswith("InferenceService isvc-sklearn-v2 has a model of its own")
