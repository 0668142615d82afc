"""End to end: a KServe modelcar on `modelplane up`. An iris model is pushed as an image (its
/models folder) to a real registry, and an InferenceService whose storageUri is `oci://` serves it;
from a registry that asks for credentials, with those of the `imagePullSecrets` it names (or its
ServiceAccount's), as the kubelet pulls a modelcar."""

from __future__ import annotations

import base64
import json

import bcrypt
import httpx
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform_process import running_platform, wait_until, write_iris_models
from tests.storage.oci_images import layer, push_image
from tests.storage.servers import start_registry

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        models = tmp_path_factory.mktemp("iris")
        write_iris_models({models: LogisticRegression(max_iter=1000)})
        base = layer({"bin": None, "bin/sh": "-> /bin/busybox"})
        push_image(
            server.url,
            "modelcars/iris",
            "v1",
            [base, layer({"models/model.joblib": (models / "model.joblib").read_bytes()})],
        )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("private-registry")
    htpasswd = folder / "htpasswd"
    htpasswd.write_bytes(b"puller:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)) + b"\n")
    server = start_registry(folder, htpasswd=htpasswd)
    try:
        models = tmp_path_factory.mktemp("private-iris")
        write_iris_models({models: LogisticRegression(max_iter=1000)})
        model = layer({"models/model.joblib": (models / "model.joblib").read_bytes()})
        push_image(server.url, "modelcars/iris", "v1", [model], auth=httpx.BasicAuth("puller", "s3cret"))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-home")
    with running_platform(home) as platform:
        yield platform


def test_an_inference_service_serves_the_model_of_an_image(platform, registry, tmp_path):
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "modelcar", "namespace": "default"},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"oci://127.0.0.1:{registry.port}/modelcars/iris:v1",
                }
            }
        },
    }
    path = tmp_path / "modelcar.yaml"
    path.write_text(yaml.safe_dump(isvc))
    platform.cli("apply", "-f", str(path))
    platform.cli("wait", "--for=condition=Ready", "isvc/modelcar", "--timeout=300s")
    answer = httpx.post(
        f"{platform.gateway_url}/v1/models/modelcar:predict",
        headers={"host": "modelcar.default.localhost"},
        json=IRIS,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1, 1]}


def pull_secret(name: str, registry, password: str) -> dict:
    auth = base64.b64encode(f"puller:{password}".encode()).decode()
    config = {"auths": {f"127.0.0.1:{registry.port}": {"auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json.dumps(config)},
    }


def private_service(name: str, registry, **predictor) -> dict:
    model = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": f"oci://127.0.0.1:{registry.port}/modelcars/iris:v1",
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": model, **predictor}},
    }


def predicts(platform, name: str) -> bool:
    answer = platform.request("POST", f"{name}.default.localhost", f"/v1/models/{name}:predict", json=IRIS)
    return answer.status_code == 200 and answer.json() == {"predictions": [1, 1]}


def failure(platform, name: str) -> str:
    status = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout).get("status") or {}
    return ((status.get("modelStatus") or {}).get("lastFailureInfo") or {}).get("message", "")


def test_a_private_modelcar_is_pulled_with_the_image_pull_secrets(platform, private_registry):
    platform.apply(
        pull_secret("registry-good", private_registry, "s3cret"),
        pull_secret("registry-wrong", private_registry, "wrong"),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "puller"},
            "imagePullSecrets": [{"name": "registry-good"}],
        },
    )
    platform.apply(
        private_service("own-secret", private_registry, imagePullSecrets=[{"name": "registry-good"}]),
        private_service("by-account", private_registry, serviceAccountName="puller"),
        private_service("no-secret", private_registry),
        private_service("wrong-secret", private_registry, imagePullSecrets=[{"name": "registry-wrong"}]),
    )
    platform.cli("wait", "--for=condition=Ready", "isvc/own-secret", "isvc/by-account", "--timeout=300s")
    assert predicts(platform, "own-secret") and predicts(platform, "by-account")
    assert "the registry needs credentials" in wait_until(
        lambda: failure(platform, "no-secret"), "no-secret", platform
    )
    denied = wait_until(lambda: failure(platform, "wrong-secret"), "wrong-secret's failure", platform)
    assert "access to the image denied" in denied and "wrong" not in denied.replace("wrong-secret", "")
