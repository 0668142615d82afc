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


def test_a_claim_is_mounted_where_the_model_is_read_with_no_initializer():
    pvc = SKLEARN.replace("s3://models/iris", "pvc://my-claim/models/iris").replace(
        "    sklearn:\n", "    containers: [{name: transformer-container, image: t:1}]\n    sklearn:\n"
    )
    rendering = render_text(pvc)
    pod = pod_of(rendering, "iris-predictor")
    assert "initContainers" not in pod
    assert pod["volumes"] == [
        {"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": "my-claim", "readOnly": True}}
    ]
    model_mount = {
        "name": "kserve-pvc-source",
        "mountPath": "/mnt/models",
        "subPath": "models/iris",
        "readOnly": True,
    }
    containers = containers_of(pod)
    assert containers["kserve-container"]["volumeMounts"] == [model_mount]
    assert containers["transformer-container"]["volumeMounts"] == [model_mount]
    assert not [p for obj in rendering.objects for p in problems(obj)]

    writable = pvc.replace(
        "metadata: {name: iris, namespace: ns1}",
        "metadata:\n  name: iris\n  namespace: ns1\n  annotations: {storage.kserve.io/readonly: 'false'}",
    )
    whole_claim = writable.replace("pvc://my-claim/models/iris", "pvc://my-claim")
    pod = pod_of(render_text(whole_claim), "iris-predictor")
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "my-claim", "readOnly": False}
    mounts = containers_of(pod)["kserve-container"]["volumeMounts"]
    assert mounts == [{"name": "kserve-pvc-source", "mountPath": "/mnt/models", "readOnly": False}]


def test_a_custom_containers_claim_is_mounted_and_its_storage_uri_names_the_mount():
    rendering = render_text(CUSTOM.replace("s3://bucket/m", "pvc://my-claim/m"))
    pod = pod_of(rendering, "cust-predictor")
    assert "initContainers" not in pod
    assert env_of(containers_of(pod)["kserve-container"])["STORAGE_URI"] == "/mnt/models"


def test_storage_uris_claims_are_mounted_whole_at_their_paths_as_kserve_names_them():
    text = SKLEARN.replace(
        "    sklearn:\n      storageUri: s3://models/iris\n",
        "    storageUris:\n"
        "      - {uri: s3://models/iris, mountPath: /mnt/models/base}\n"
        "      - {uri: pvc://claim-a/adapters/one, mountPath: /mnt/models/adapters/one}\n"
        "    containers: [{name: transformer-container, image: t:1}]\n"
        "    sklearn: {}\n",
    )
    rendering = render_text(text)
    pod = pod_of(rendering, "iris-predictor")
    assert [c["name"] for c in pod["initContainers"]] == ["storage-initializer"]
    assert pod["initContainers"][0]["args"] == [
        "s3://models/iris",
        "/mnt/provision/models",
        "--no-cache",
        "--keep-existing",
    ]
    assert pod["volumes"] == [
        {
            "name": "mnt-models-adapters-one",
            "persistentVolumeClaim": {"claimName": "claim-a", "readOnly": True},
        },
        {"name": "kserve-provision-location", "emptyDir": {}},
    ]
    # KServe mounts a storageUris claim whole (no subPath): the path in its URI is not used.
    mounts = [
        {"name": "mnt-models-adapters-one", "mountPath": "/mnt/models/adapters/one", "readOnly": True},
        {
            "name": "kserve-provision-location",
            "mountPath": "/mnt/models/base",
            "subPath": "models",
            "readOnly": True,
        },
    ]
    containers = containers_of(pod)
    assert containers["kserve-container"]["volumeMounts"] == mounts
    assert containers["transformer-container"]["volumeMounts"] == mounts
    assert not [p for obj in rendering.objects for p in problems(obj)]

    claims_only = text.replace("      - {uri: s3://models/iris, mountPath: /mnt/models/base}\n", "")
    pod = pod_of(render_text(claims_only), "iris-predictor")
    assert "initContainers" not in pod
    assert [v["name"] for v in pod["volumes"]] == ["mnt-models-adapters-one"]
