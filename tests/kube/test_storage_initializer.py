"""The model's storage in a component's pod, against KServe's `CommonStorageInitialization`
(pkg/webhook/admission/pod/storage_initializer_injector.go): the init container, the volumes and
the mounts of the containers that read the model."""

from __future__ import annotations

from .helpers import named, render_text
from .schemas import problems

CUSTOM = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: cust, namespace: ns1}
spec:
  predictor:
    containers:
      - name: kserve-container
        image: example.com/my:1
        env: [{name: STORAGE_URI, value: s3://bucket/m}]
"""

SKLEARN = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, namespace: ns1}
spec:
  predictor:
    sklearn:
      storageUri: s3://models/iris
"""


def pod_of(rendering, name: str) -> dict:
    return named(rendering, "Deployment", name)["spec"]["template"]["spec"]


def containers_of(pod: dict) -> dict[str, dict]:
    return {c["name"]: c for c in [*pod["containers"], *pod.get("initContainers", [])]}


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_a_custom_containers_storage_uri_names_the_fetched_model_folder():
    rendering = render_text(CUSTOM)
    containers = containers_of(pod_of(rendering, "cust-predictor"))
    assert env_of(containers["kserve-container"])["STORAGE_URI"] == "/mnt/models"
    assert containers["storage-initializer"]["args"][0] == "s3://bucket/m"
    assert not [p for obj in rendering.objects for p in problems(obj)]


def test_a_collocated_transformer_container_sees_the_model_too():
    collocated = CUSTOM.replace(
        "        env: [{name: STORAGE_URI, value: s3://bucket/m}]\n",
        "        env: [{name: STORAGE_URI, value: s3://bucket/m}]\n"
        "      - {name: transformer-container, image: example.com/trans:1}\n",
    )
    model_mount = {
        "name": "kserve-provision-location",
        "mountPath": "/mnt/models",
        "subPath": "models",
        "readOnly": True,
    }
    rendering = render_text(collocated)
    containers = containers_of(pod_of(rendering, "cust-predictor"))
    assert containers["kserve-container"]["volumeMounts"] == [model_mount]
    assert containers["transformer-container"]["volumeMounts"] == [model_mount]
    kserve_mount, transformer_mount = (
        containers[c]["volumeMounts"][0] for c in ("kserve-container", "transformer-container")
    )
    assert kserve_mount is not transformer_mount  # one dict in two places is a YAML alias
    assert not [p for obj in rendering.objects for p in problems(obj)]
    with_a_model = render_text(
        SKLEARN.replace(
            "    sklearn:\n", "    containers: [{name: transformer-container, image: t:1}]\n    sklearn:\n"
        )
    )
    containers = containers_of(pod_of(with_a_model, "iris-predictor"))
    assert containers["transformer-container"]["volumeMounts"] == [model_mount]
