"""End to end: KServe's own ClusterServingRuntime files applied unchanged to `modelplane up`, then an
InferenceService for each format they serve: it answers through the gateway, or, where nothing can run
the image here, says so in its status and in an event, with no replica started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelplane.runtimes import RUNTIMES
from tests.api.helpers import KSERVE_RUNTIMES
from tests.e2e.platform_process import (
    REPO_ROOT,
    PlatformProcess,
    kill_leftovers,
    running_platform,
    wait_until,
)
from tests.server.paddle_models import linear
from tests.server.paddle_models import write_models as write_paddle_models
from tests.server.pmml_models import iris_tree, write_model

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
IRIS_V2 = {
    "inputs": [
        {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}
    ]
}


def isvc(name: str, model_format: str, storage: str | None, **model) -> dict:
    spec = {"modelFormat": {"name": model_format}, **model}
    if storage:
        spec["storageUri"] = f"pvc://{storage}"
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": spec}},
    }


SERVED = [
    isvc("sk", "sklearn", "examples/sklearn-iris"),  # kserve-sklearnserver
    isvc("xgb", "xgboost", "examples/xgboost-iris", args=["--enable_docs_url=true"]),  # kserve-xgbserver
    isvc("lgb", "lightgbm", "examples/lightgbm-iris"),  # kserve-lgbserver
    isvc("sk-v2", "sklearn", "examples/sklearn-iris", protocolVersion="v2"),  # kserve-mlserver (priority 2)
    isvc("onnx", "onnx", "stock/onnx", runtime="kserve-tritonserver"),
    isvc("torch", "pytorch", "examples/cat-dog-classifier", runtime="kserve-torchserve"),
    isvc("pmml", "pmml", "stock/pmml"),  # kserve-pmmlserver
    isvc("paddle", "paddle", "stock/paddle/linear-pdmodel"),  # kserve-paddleserver
    # kserve-huggingfaceserver, with a flag of its own
    isvc("hf", "huggingface", "examples/text-classifier", args=["--return_probabilities"]),
    isvc("mlflow", "mlflow", "stock/mlflow/iris", runtime="kserve-mlserver", protocolVersion="v2"),
]
NOT_SERVED = [
    isvc("trt", "tensorrt", "stock/pmml", runtime="kserve-tritonserver"),
    isvc("autogluon", "autogluon", "stock/pmml"),  # kserve-autogluonserver
    {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "custom"},
        "spec": {
            "predictor": {"containers": [{"name": "kserve-container", "image": "example/custom-model:v1"}]}
        },
    },
]


def write_onnx_model(folder: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    onnx = to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(onnx.SerializeToString())


@pytest.fixture(scope="module")
def home(tmp_path_factory, example_models) -> Path:
    home = tmp_path_factory.mktemp("mp-stock")
    example_models(home / "pvc" / "examples")
    write_onnx_model(home / "pvc" / "stock" / "onnx")
    write_model(home / "pvc" / "stock" / "pmml", iris_tree())
    (home / "pvc" / "stock" / "paddle").mkdir()
    write_paddle_models(home / "pvc" / "stock" / "paddle")
    mlflow_models = home / "pvc" / "stock" / "mlflow"
    mlflow_models.mkdir()
    builder = [sys.executable, "-m", "tests.server.mlflow_models", str(mlflow_models)]
    subprocess.run(builder, cwd=REPO_ROOT, check=True)
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home, tmp_path_factory):
    services = tmp_path_factory.mktemp("services") / "services.yaml"
    services.write_text(yaml.safe_dump_all(SERVED + NOT_SERVED))
    with running_platform(home) as platform:
        platform.cli("apply", "-f", str(KSERVE_RUNTIMES))  # KServe's files, as they are
        platform.cli("apply", "-f", str(services))
        platform.wait_ready(*(service["metadata"]["name"] for service in SERVED))
        yield platform


def get(platform: PlatformProcess, *what: str) -> dict:
    return json.loads(platform.cli("get", *what, "-o", "json").stdout)


def predict_v1(platform: PlatformProcess, name: str) -> list:
    response = platform.request("POST", f"{name}.default.localhost", f"/v1/models/{name}:predict", json=IRIS)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_the_stock_runtime_files_apply_unchanged_next_to_the_built_in_ones(platform):
    listed = platform.cli("get", "csr").stdout
    for path in sorted(KSERVE_RUNTIMES.glob("*.yaml")):
        assert f"\n{path.stem} " in listed
    assert "\nmodelplane-onnxserver " in listed  # built in, not replaced
    runtimes = {r["metadata"]["name"]: r for r in get(platform, "csr")["items"]}
    assert (
        runtimes["kserve-sklearnserver"]["spec"]["containers"][0]["image"] == "kserve-sklearnserver:replace"
    )
    assert runtimes["modelplane-onnxserver"]["metadata"]["annotations"]["modelplane.io/built-in"] == "true"


def test_kserves_sklearn_xgboost_and_lightgbm_servers_serve(platform):
    assert predict_v1(platform, "sk") == [1, 1]
    for name in ("xgb", "lgb"):
        assert [row.index(max(row)) for row in predict_v1(platform, name)] == [1, 1]
    for name, runtime in (
        ("sk", "kserve-sklearnserver"),
        ("xgb", "kserve-xgbserver"),
        ("lgb", "kserve-lgbserver"),
    ):
        assert get(platform, "isvc", name)["status"]["clusterServingRuntimeName"] == runtime


def test_the_stock_runtimes_args_became_modelplane_serves_flags(platform):
    log = platform.cli("logs", "xgb").stdout
    starting = next(line for line in log.splitlines() if "starting:" in line)
    assert "-m modelplane serve" in starting
    assert "--model-name=xgb --runtime=xgboost" in starting
    assert "--nthread=1" in starting
    assert "docs" not in starting
    described = platform.cli("describe", "isvc", "xgb").stdout
    assert "ArgumentsDropped" in described
    assert "--enable_docs_url=true (modelplane serve has no Swagger UI at /docs)" in described


def test_mlserver_serves_sklearn_over_v2(platform):
    status = get(platform, "isvc", "sk-v2")["status"]
    assert status["clusterServingRuntimeName"] == "kserve-mlserver"
    response = platform.request("POST", "sk-v2.default.localhost", "/v2/models/sk-v2/infer", json=IRIS_V2)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [1, 1]


def test_mlservers_mlflow_runtime_serves_an_mlflow_model(platform):
    """KServe's kserve-mlserver, told `mlserver_mlflow.MLflowRuntime` by the modelClass label KServe
    sets, runs modelplane serve --runtime=mlflow: the model's signature reads the columns."""
    columns = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    rows = IRIS["instances"]
    inputs = [
        {"name": name, "shape": [2], "datatype": "FP64", "data": [row[i] for row in rows]}
        for i, name in enumerate(columns)
    ]
    path = "/v2/models/mlflow/infer"
    response = platform.request("POST", "mlflow.default.localhost", path, json={"inputs": inputs})
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["data"]) == ("output-1", [1, 1])
    assert "--runtime=mlflow" in platform.cli("logs", "mlflow").stdout


def test_triton_serves_onnx(platform):
    response = platform.request("POST", "onnx.default.localhost", "/v2/models/onnx/infer", json=IRIS_V2)
    assert response.status_code == 200, response.text
    labels = next(output for output in response.json()["outputs"] if output["datatype"] == "INT64")
    assert labels["data"] == [1, 1]
    runtime = get(platform, "csr", "kserve-tritonserver")["status"]["conditions"]
    ready = next(c for c in runtime if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert "onnx: modelplane serve --runtime=onnx" in ready["message"]
    assert "not served: tensorrt: only Triton serves them" in ready["message"]


def test_torchserve_s_runtime_serves_a_torchserve_model_store(platform):
    """KServe's kserve-torchserve (which replaces the built-in of that name) runs `torchserve --start
    --model-store=... --ts-config=...`: here, modelplane serve over the same store, its models under
    the names the store's config.properties gives them."""
    import base64
    import io

    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (220, 30, 30)).save(picture, format="PNG")
    body = {"instances": [{"data": base64.b64encode(picture.getvalue()).decode()}]}
    path = "/v1/models/cat-dog-classifier:predict"
    response = platform.request("POST", "torch.default.localhost", path, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["dog"]}
    runtime = get(platform, "csr", "kserve-torchserve")
    assert runtime["spec"]["containers"][0]["image"] == "kserve-torchserve:replace"
    ready = next(c for c in runtime["status"]["conditions"] if c["type"] == "Ready")
    assert "pytorch: modelplane serve --runtime=pytorch" in ready["message"]


def test_kserves_pmmlserver_serves_a_pmml_model(platform):
    """KServe's kserve-pmmlserver (which replaces the built-in of that name) runs `modelplane serve
    --runtime=pmml`: KServe's answers, one object per row on V1, one output per field on V2."""
    rows = predict_v1(platform, "pmml")
    assert [(row["Species"], row["Node_Id"]) for row in rows] == [("versicolor", "4"), ("versicolor", "4")]
    response = platform.request("POST", "pmml.default.localhost", "/v2/models/pmml/infer", json=IRIS_V2)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert (outputs["Species"]["datatype"], outputs["Species"]["data"]) == (
        "BYTES",
        ["versicolor", "versicolor"],
    )
    assert get(platform, "isvc", "pmml")["status"]["clusterServingRuntimeName"] == "kserve-pmmlserver"
    runtime = get(platform, "csr", "kserve-pmmlserver")
    assert runtime["spec"]["containers"][0]["image"] == "kserve-pmmlserver:replace"
    ready = next(c for c in runtime["status"]["conditions"] if c["type"] == "Ready")
    assert (
        ready["message"]
        == "image kserve-pmmlserver:replace (KServe's pmmlserver): pmml: modelplane serve --runtime=pmml"
    )


def test_kserves_paddleserver_serves_a_paddle_model(platform):
    """KServe's kserve-paddleserver (which replaces the built-in of that name) runs `modelplane serve
    --runtime=paddle`: the first output as V1 predictions, and as V2's output-0."""
    np.testing.assert_allclose(predict_v1(platform, "paddle"), linear(IRIS["instances"]), rtol=1e-6)
    response = platform.request("POST", "paddle.default.localhost", "/v2/models/paddle/infer", json=IRIS_V2)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("output-0", [2, 3], "FP32")
    assert get(platform, "isvc", "paddle")["status"]["clusterServingRuntimeName"] == "kserve-paddleserver"
    ready = next(
        c for c in get(platform, "csr", "kserve-paddleserver")["status"]["conditions"] if c["type"] == "Ready"
    )
    assert ready["message"] == (
        "image kserve-paddleserver:replace (KServe's paddleserver): paddle: modelplane serve --runtime=paddle"
    )


def test_huggingfaceserver_serves_a_transformers_model_with_its_flags(platform):
    """KServe's kserve-huggingfaceserver (which replaces the built-in of that name) runs its image
    with `--model_name`: here, modelplane serve --runtime=huggingface, its own flags passed on."""
    body = {"instances": ["what a lovely day", "the food was cold and the staff were rude"]}
    response = platform.request("POST", "hf.default.localhost", "/v1/models/hf:predict", json=body)
    assert response.status_code == 200, response.text
    happy, sad = response.json()["predictions"]
    assert happy["1"] > 0.9 and sad["0"] > 0.9
    runtime = get(platform, "csr", "kserve-huggingfaceserver")
    assert runtime["spec"]["containers"][0]["image"] == "huggingfaceserver:replace"


def not_ready(platform: PlatformProcess, name: str) -> dict:
    def refused():
        status = get(platform, "isvc", name).get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        return status if ready and ready.get("reason") == "ImageNotServed" else None

    return wait_until(refused, f"{name} to say its image cannot run here", platform)


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("trt", "kserve-tritonserver:replace"),
        ("autogluon", "kserve-autogluonserver:replace"),
        ("custom", "example/custom-model:v1"),
    ],
)
def test_an_image_with_nothing_to_run_here_is_a_clear_status_and_event_not_a_crash_loop(
    platform, name, image
):
    model_format = next(s for s in NOT_SERVED if s["metadata"]["name"] == name)["spec"]["predictor"]
    model_format = (model_format.get("model") or {}).get("modelFormat", {}).get("name")
    if model_format in RUNTIMES:
        pytest.skip(f"modelplane has a {model_format} runtime now; its own tests serve it")
    status = not_ready(platform, name)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert f"image {image}" in ready["message"]
    assert status["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert "components" not in status  # no revision, so no replica
    assert not (platform.home / "logs" / "default" / name).exists()
    described = platform.cli("describe", "isvc", name).stdout
    events = described[described.index("Events:") :]
    assert "Warning" in events and "ImageNotServed" in events and image in events


def test_a_stock_runtime_with_no_local_server_says_so_in_its_status_and_an_event(platform):
    status = get(platform, "csr", "kserve-autogluonserver")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ImageNotServed")
    assert ready["message"].startswith(
        "image kserve-autogluonserver:replace (KServe's autogluonserver) serves autogluon models, and "
        "modelplane has no autogluon runtime"
    )
    events = platform.cli("get", "events").stdout
    assert any("kserve-autogluonserver" in line and "ImageNotServed" in line for line in events.splitlines())
    assert "Warning  ImageNotServed" in platform.cli("describe", "csr", "kserve-autogluonserver").stdout
