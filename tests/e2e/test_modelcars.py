"""End to end: a KServe modelcar on `modelplane up`. An iris model is pushed as an image (its
/models folder) to a real registry, and an InferenceService whose storageUri is `oci://` serves it."""

from __future__ import annotations

import httpx
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform_process import kill_leftovers, running_platform, write_iris_models
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
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-home")
    with running_platform(home) as platform:
        yield platform
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


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
