"""A multi-model predictor: an empty, writable model folder, the ConfigMap of its TrainedModels as
KServe's model agent reads it, and the model agent that loads them."""

from __future__ import annotations

import json

import pytest

from modelplane.api.constants import KNATIVE, STANDARD
from modelplane.kube.settings import KubeSettings

from .helpers import SAMPLES, named, objects_of, render_file, render_text
from .schemas import problems

CONFIG_MOUNT = {"name": "model-config", "mountPath": "/mnt/configs", "readOnly": True}
MODEL_MOUNT = {"name": "model-dir", "mountPath": "/mnt/models"}


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


@pytest.mark.parametrize("mode", [STANDARD, KNATIVE])
def test_the_pod_runs_the_model_agent_next_to_the_server(mode):
    settings = KubeSettings(default_mode=mode, image="registry.example/modelplane:1.2")
    rendering = render_file(SAMPLES / "multi-model.yaml", settings)
    (workload,) = [
        o for o in rendering.objects if o["kind"] in ("Deployment", "Service") and "template" in o["spec"]
    ]
    pod = workload["spec"]["template"]["spec"]
    server, agent = pod["containers"]
    (prefetch,) = pod["initContainers"]
    assert {"name": "MULTI_MODEL_SERVER", "value": "true"} in server["env"]
    assert server["volumeMounts"] == [MODEL_MOUNT]  # the server does not see the list
    assert pod["volumes"] == [
        {"name": "model-dir", "emptyDir": {}},
        {"name": "model-config", "configMap": {"name": "modelconfig-isvc-sklearn-mms-0"}},
    ]
    folders = ["--config-dir", "/mnt/configs", "--model-dir", "/mnt/models"]
    assert (agent["name"], agent["image"], agent["command"]) == (
        "agent",
        "registry.example/modelplane:1.2",
        ["modelplane", "agent"],
    )
    assert agent["args"] == [*folders, "--server", "http://127.0.0.1:8080"]
    assert (prefetch["name"], prefetch["image"]) == ("agent-prefetch", "registry.example/modelplane:1.2")
    assert prefetch["args"] == [*folders, "--prefetch"]
    for container in (agent, prefetch):
        assert container["volumeMounts"] == [CONFIG_MOUNT, MODEL_MOUNT]
        assert "ports" not in container and "readinessProbe" not in container
        assert container["env"] == [
            {
                "name": "STORAGE_CONFIG",
                "valueFrom": {"secretKeyRef": {"name": "storage-config", "key": "default", "optional": True}},
            }
        ]
        assert container["resources"] == settings.agent_resources
    # Knative takes a pod of several containers only when one declares the port it serves.
    assert server.get("ports") == (
        [{"containerPort": 8080, "protocol": "TCP"}] if mode == KNATIVE else server["ports"]
    )
    assert not [p for o in rendering.objects for p in problems(o)]


def test_the_agent_speaks_to_the_port_a_custom_server_declares():
    rendering = render_text(
        """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: custom-mms
  annotations:
    serving.kserve.io/storageSecretName: my-storage
spec:
  predictor:
    containers:
      - name: kserve-container
        image: example.com/mms:1
        ports: [{containerPort: 9000, protocol: TCP}]
        env: [{name: MULTI_MODEL_SERVER, value: "true"}]
"""
    )
    pod = named(rendering, "Deployment", "custom-mms-predictor")["spec"]["template"]["spec"]
    agent = next(c for c in pod["containers"] if c["name"] == "agent")
    assert agent["args"][-2:] == ["--server", "http://127.0.0.1:9000"]
    assert agent["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "my-storage"
    assert named(rendering, "ConfigMap", "modelconfig-custom-mms-0")


def test_a_predictor_with_a_model_has_no_agent():
    rendering = render_file(SAMPLES / "sklearn-v2-mlserver.yaml", KubeSettings())
    for deployment in objects_of(rendering, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["kserve-container"]
        assert [c["name"] for c in pod["initContainers"]] == ["storage-initializer"]


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


@pytest.mark.parametrize(
    ("uri", "where"),
    [
        ("file:///srv/models/iris", "a path inside the model agent's container"),
        ("pvc://models/iris", "a claim the agent does not mount"),
    ],
)
def test_a_trained_model_the_agent_cannot_fetch_says_so(uri, where):
    text = (
        (SAMPLES / "multi-model.yaml")
        .read_text()
        .replace("gs://kfserving-examples/models/sklearn/1.0/model", uri, 1)
    )
    (note,) = render_text(text).notes
    assert (note.resource, note.path) == ("TrainedModel/default/model1-sklearn", "spec.model.storageUri")
    assert note.message.startswith(f"{uri} is {where}, where no model is")


HUGGING_FACE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: hf, namespace: ns1}
spec:
  predictor:
    model:
      modelFormat: {name: huggingface}
      args: [--model_id=bert-base-uncased]
"""


@pytest.mark.parametrize("predictor", ["model", "huggingface"])
def test_a_hugging_face_model_without_storage_is_not_a_multi_model_server(predictor):
    """KServe's IsMMSPredictor: a Hugging Face server fetches its model by --model_id itself."""
    text = HUGGING_FACE
    if predictor == "huggingface":  # the legacy field, which admission turns into a model
        text = text.replace("    model:\n      modelFormat: {name: huggingface}\n", "    huggingface:\n")
    rendering = render_text(text)
    pod = named(rendering, "Deployment", "hf-predictor")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["kserve-container"]
    assert "initContainers" not in pod and "volumes" not in pod
    assert "MULTI_MODEL_SERVER" not in {e["name"] for e in pod["containers"][0]["env"]}
    assert not objects_of(rendering, "ConfigMap")
