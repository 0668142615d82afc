"""End to end: `modelplane up` as a process, the examples applied with the CLI, requests through the
gateway, status, a new revision, a model that fails to load, a killed replica, logs, delete, restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from modelplane.local.gateway.http1.exchange import MAY_BE_STALE_AFTER
from tests.e2e.platform_process import (
    REPO_ROOT,
    PlatformProcess,
    kill_leftovers,
    replica_processes,
    running_platform,
    wait_until,
)

EXAMPLES = REPO_ROOT / "examples"
SERVICES = (
    "sklearn-iris",
    "sklearn-iris-hpa",
    "xgboost-iris",
    "lightgbm-iris",
    "tensorflow-iris",
    "iris-mm",
    "doubler",
)
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
IRIS_V2 = {
    "inputs": [
        {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}
    ]
}


def host(name: str) -> str:
    return f"{name}.default.localhost"


@pytest.fixture(scope="module")
def home(tmp_path_factory, example_models) -> Path:
    home = tmp_path_factory.mktemp("mp-home")
    example_models(home / "pvc" / "examples")
    broken = home / "pvc" / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"this is not a pickle")
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home):
    with running_platform(home) as platform:
        platform.cli("apply", "-f", str(EXAMPLES))
        platform.wait_ready(*SERVICES)
        yield platform


def get(platform: PlatformProcess, name: str) -> dict:
    return json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout)


def test_every_example_answers_v1_and_v2_through_the_gateway(platform):
    sklearn_v1 = platform.request("POST", host("sklearn-iris"), "/v1/models/sklearn-iris:predict", json=IRIS)
    assert sklearn_v1.status_code == 200, sklearn_v1.text
    assert sklearn_v1.json() == {"predictions": [1, 1]}
    sklearn_v2 = platform.request("POST", host("sklearn-iris"), "/v2/models/sklearn-iris/infer", json=IRIS_V2)
    assert sklearn_v2.json()["outputs"][0]["data"] == [1, 1]
    scaled = platform.request(
        "POST", host("sklearn-iris-hpa"), "/v1/models/sklearn-iris-hpa:predict", json=IRIS
    )
    assert scaled.json() == {"predictions": [1, 1]}
    assert (
        "autoscaler sklearn-iris-hpa-predictor-00001: scales on cpu 60% of the request, 1 to 3"
        in platform.log()
    )
    for name in ("xgboost-iris", "lightgbm-iris"):
        v1 = platform.request("POST", host(name), f"/v1/models/{name}:predict", json=IRIS)
        assert v1.status_code == 200, v1.text
        assert [row.index(max(row)) for row in v1.json()["predictions"]] == [1, 1]
        v2 = platform.request("POST", host(name), f"/v2/models/{name}/infer", json=IRIS_V2)
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["shape"] == [2, 3]
    # The transformer turns millimetres into centimetres, then its predictor answers.
    millimetres = {"instances": [[68, 28, 48, 14], [60, 34, 45, 16]]}
    transformed = platform.request("POST", host("iris-mm"), "/v1/models/iris-mm:predict", json=millimetres)
    assert transformed.status_code == 200, transformed.text
    assert transformed.json() == {"predictions": [1, 1]}
    doubled = platform.request(
        "POST", host("doubler"), "/v1/models/doubler:predict", json={"instances": [[1, 2]]}
    )
    assert doubled.json() == {"predictions": [[2, 4]]}
    component = platform.request(
        "POST", "sklearn-iris-predictor.default.localhost", "/v1/models/sklearn-iris:predict", json=IRIS
    )
    assert component.json() == {"predictions": [1, 1]}


def test_the_tensorflow_example_is_served_by_the_built_in_runtime(platform):
    assert (
        get(platform, "tensorflow-iris")["status"]["clusterServingRuntimeName"]
        == "modelplane-tensorflowserver"
    )
    v1 = platform.request(
        "POST",
        host("tensorflow-iris"),
        "/v1/models/tensorflow-iris:predict",
        json={"inputs": IRIS["instances"]},
    )
    assert v1.status_code == 200, v1.text
    assert [row.index(max(row)) for row in v1.json()["outputs"]] == [1, 1]
    v2 = platform.request("POST", host("tensorflow-iris"), "/v2/models/tensorflow-iris/infer", json=IRIS_V2)
    assert v2.status_code == 200, v2.text
    assert (v2.json()["model_version"], v2.json()["outputs"][0]["shape"]) == ("1", [2, 3])


def test_status_reports_urls_revisions_and_the_loaded_model(platform):
    status = get(platform, "sklearn-iris")["status"]
    port = platform.gateway_url.rsplit(":", 1)[1]
    assert status["url"] == f"http://sklearn-iris.default.localhost:{port}"
    assert status["address"]["url"] == f"http://sklearn-iris-predictor.default.localhost:{port}"
    assert status["observedGeneration"] == 1
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "IngressReady": "True",
        "LatestDeploymentReady": "True",
        "PredictorConfigurationReady": "True",
        "PredictorReady": "True",
        "PredictorRouteReady": "True",
        "Ready": "True",
        "RoutesReady": "True",
        "Stopped": "False",
    }
    predictor = status["components"]["predictor"]
    assert (
        predictor["latestCreatedRevision"]
        == predictor["latestReadyRevision"]
        == "sklearn-iris-predictor-00001"
    )
    assert predictor["traffic"] == [
        {"revisionName": "sklearn-iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    assert status["modelStatus"]["states"] == {"activeModelState": "Loaded"}
    assert status["clusterServingRuntimeName"] == "kserve-sklearnserver"
    transformer = get(platform, "iris-mm")["status"]
    assert {c["type"]: c["status"] for c in transformer["conditions"]}["TransformerReady"] == "True"
    assert transformer["address"]["url"] == f"http://iris-mm-transformer.default.localhost:{port}"


def changed_sklearn(platform: PlatformProcess, tmp_path: Path, **predictor) -> None:
    resource = yaml.safe_load((EXAMPLES / "sklearn-iris.yaml").read_text())
    resource["spec"]["predictor"] = {"model": {"modelFormat": {"name": "sklearn"}, **predictor}}
    path = tmp_path / "sklearn-iris.yaml"
    path.write_text(yaml.safe_dump(resource))
    platform.cli("apply", "-f", str(path))


def test_a_spec_change_rolls_out_a_new_revision_and_stops_the_old_one(platform, tmp_path):
    old_replicas = set(replica_processes(platform.home))
    changed_sklearn(platform, tmp_path, storageUri="pvc://examples/sklearn-iris", args=["--predict-proba"])
    platform.cli("wait", "--for=condition=Ready", "isvc/sklearn-iris", "--timeout=300s")
    status = get(platform, "sklearn-iris")["status"]
    assert status["observedGeneration"] == 2
    predictor = status["components"]["predictor"]
    assert predictor["latestReadyRevision"] == "sklearn-iris-predictor-00002"
    assert predictor["previousRolledoutRevision"] == "sklearn-iris-predictor-00001"
    response = platform.request("POST", host("sklearn-iris"), "/v1/models/sklearn-iris:predict", json=IRIS)
    assert len(response.json()["predictions"][0]) == 3  # probabilities now
    wait_until(
        lambda: len(old_replicas - set(replica_processes(platform.home))) == 1,
        "the old revision's replica to stop",
        platform,
    )


def test_a_model_that_fails_to_load_leaves_the_previous_revision_serving(platform, tmp_path):
    changed_sklearn(platform, tmp_path, storageUri="pvc://broken")

    def blocked():
        status = get(platform, "sklearn-iris").get("status") or {}
        return (
            status if status.get("modelStatus", {}).get("transitionStatus") == "BlockedByFailedLoad" else None
        )

    status = wait_until(blocked, "the new revision to fail to load", platform)
    model = status["modelStatus"]
    assert model["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert model["lastFailureInfo"]["reason"] == "ModelLoadFailed"
    assert "Failed to load" in model["lastFailureInfo"]["message"]
    assert model["lastFailureInfo"]["modelRevisionName"] == "sklearn-iris-predictor-00003"
    predictor = status["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "sklearn-iris-predictor-00003"
    assert predictor["latestReadyRevision"] == "sklearn-iris-predictor-00002"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PredictorReady"]["status"] == "False"
    assert conditions["PredictorReady"]["reason"] == "RevisionFailed"
    # `kubectl events` and `describe` say so too, as a Warning event on the service.
    described = platform.cli("describe", "isvc", "sklearn-iris").stdout
    assert (
        "Warning  RevisionFailed" in described
        and 'Revision "sklearn-iris-predictor-00003" failed' in described
    )
    response = platform.request("POST", host("sklearn-iris"), "/v1/models/sklearn-iris:predict", json=IRIS)
    assert response.status_code == 200 and len(response.json()["predictions"][0]) == 3


def xgboost_replica(platform: PlatformProcess) -> int | None:
    pids = [
        pid
        for pid in replica_processes(platform.home)
        if "xgboost-iris" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    return pids[0] if pids else None


def test_a_killed_replica_comes_back(platform):
    killed = xgboost_replica(platform)
    # A process dies holding its sockets for a moment, and a request that reaches one of them then is
    # reset as if the replica had died on it, which the gateway does not send again (a request is never
    # run twice) unless its pooled connection had been idle long enough to have been closed: let the
    # gateway's connection from an earlier test's request be that old, as a killed replica's usually is.
    time.sleep(MAY_BE_STALE_AFTER + 0.1)
    os.kill(killed, signal.SIGKILL)
    # At once, while the routes may still name the dead replica: the gateway sets it aside and holds
    # the request until the supervisor's restart is ready.
    response = platform.request("POST", host("xgboost-iris"), "/v1/models/xgboost-iris:predict", json=IRIS)
    assert response.status_code == 200, response.text
    assert xgboost_replica(platform) not in (None, killed)
    assert "exited with code -9" in platform.cli("logs", "xgboost-iris").stdout

    # The model serves again, and its status says which process exited, and how.
    def exit_reported() -> dict | None:
        return get(platform, "xgboost-iris")["status"]["modelStatus"].get("lastFailureInfo")

    info = wait_until(exit_reported, "the exit in the model status", platform)
    assert (info["reason"], info["exitCode"]) == ("RuntimeUnhealthy", 137)  # 128 + SIGKILL
    assert info["location"] == info["modelRevisionName"] + "-0" and info["time"]
    assert info["modelRevisionName"].startswith("xgboost-iris-predictor-")
    assert "exited with code 137 (Error)" in info["message"]


def test_a_model_unloaded_through_the_gateway_loads_again_through_it(platform):
    """The repository API reaches the replica through the service's route; after an unload the replica
    stays routed (its server is ready without its model), so the load that follows reaches it too."""
    name = "xgboost-iris"
    repository = f"/v2/repository/models/{name}"
    assert platform.request("POST", host(name), f"{repository}/unload").status_code == 200
    gone = platform.request("POST", host(name), f"/v1/models/{name}:predict", json=IRIS, timeout=30)
    assert gone.status_code == 404, gone.text
    assert platform.request("POST", host(name), f"{repository}/load", timeout=30).status_code == 200
    back = platform.request("POST", host(name), f"/v1/models/{name}:predict", json=IRIS)
    assert back.status_code == 200, back.text
    assert get(platform, name)["status"]["modelStatus"]["states"]["activeModelState"] == "Loaded"


def apply_lightgbm(platform: PlatformProcess, tmp_path: Path, **predictor) -> None:
    resource = yaml.safe_load((EXAMPLES / "lightgbm-iris.yaml").read_text())
    resource["spec"]["predictor"].update(predictor)
    path = tmp_path / "lightgbm-iris.yaml"
    path.write_text(yaml.safe_dump(resource))
    platform.cli("apply", "-f", str(path))


def test_a_canary_splits_the_traffic_until_it_is_promoted(platform, tmp_path):
    lightgbm = {"storageUri": "pvc://examples/lightgbm-iris", "args": ["--nthread=2"]}
    apply_lightgbm(platform, tmp_path, lightgbm=lightgbm, canaryTrafficPercent=20)
    platform.cli("wait", "--for=condition=Ready", "isvc/lightgbm-iris", "--timeout=300s")
    predictor = get(platform, "lightgbm-iris")["status"]["components"]["predictor"]
    assert [(t["tag"], t["revisionName"], t["percent"]) for t in predictor["traffic"]] == [
        ("latest", "lightgbm-iris-predictor-00002", 20),
        ("prev", "lightgbm-iris-predictor-00001", 80),
    ]
    assert predictor["latestRolledoutRevision"] == "lightgbm-iris-predictor-00001"
    table = platform.cli("get", "isvc", "lightgbm-iris").stdout.splitlines()
    assert table[1].split()[3:5] == ["80", "20"]  # PREV, LATEST
    for tag in ("latest", "prev"):
        tagged = platform.request(
            "POST",
            f"{tag}-lightgbm-iris-predictor.default.localhost",
            "/v1/models/lightgbm-iris:predict",
            json=IRIS,
        )
        assert tagged.status_code == 200, tagged.text
    answers = [
        platform.request(
            "POST", host("lightgbm-iris"), "/v1/models/lightgbm-iris:predict", json=IRIS
        ).status_code
        for _ in range(10)
    ]
    assert answers == [200] * 10

    apply_lightgbm(platform, tmp_path, lightgbm=lightgbm)  # promote: no new revision, all traffic to it

    def promoted():
        status = get(platform, "lightgbm-iris")["status"]
        return (
            status
            if status["observedGeneration"] == 3 and len(status["components"]["predictor"]["traffic"]) == 1
            else None
        )

    predictor = wait_until(promoted, "the promotion", platform)["components"]["predictor"]
    assert predictor["traffic"] == [
        {"revisionName": "lightgbm-iris-predictor-00002", "latestRevision": True, "percent": 100}
    ]
    assert predictor["latestRolledoutRevision"] == "lightgbm-iris-predictor-00002"
    assert predictor["previousRolledoutRevision"] == "lightgbm-iris-predictor-00001"


LGB_RUNTIME = """\
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata:
  name: my-lgbserver
spec:
  supportedModelFormats:
    - {name: lightgbm, version: "4", autoSelect: true, priority: 1}
  protocolVersions: [v1, v2]
  containers:
    - name: kserve-container
      image: modelplane:latest
      command: [modelplane, serve]
      args: [--model-dir=/mnt/models, "--model-name={{.Name}}", --runtime=lightgbm, --http-port=8080, --nthread=1]
"""


def test_a_new_runtime_rolls_out_a_new_revision_of_the_services_it_now_serves(platform, tmp_path):
    path = tmp_path / "runtime.yaml"
    path.write_text(LGB_RUNTIME)
    platform.cli("apply", "-f", str(path))  # a namespaced runtime beats the cluster ones

    def rolled_out():
        status = get(platform, "lightgbm-iris")["status"]
        predictor = status["components"]["predictor"]
        done = status.get("servingRuntimeName") == "my-lgbserver"
        return (
            status
            if done and predictor.get("latestRolledoutRevision") == "lightgbm-iris-predictor-00003"
            else None
        )

    status = wait_until(rolled_out, "the new runtime's revision to take the traffic", platform)
    assert "clusterServingRuntimeName" not in status
    response = platform.request("POST", host("lightgbm-iris"), "/v1/models/lightgbm-iris:predict", json=IRIS)
    assert response.status_code == 200, response.text


def test_logs_show_what_each_component_wrote(platform):
    assert "model iris-mm is ready" in platform.cli("logs", "iris-mm", "-c", "transformer").stdout
    assert "serving iris-mm on" in platform.cli("logs", "iris-mm").stdout
    missing = platform.cli("logs", "nope", check=False)
    assert missing.returncode == 1 and "no logs" in missing.stderr


def doubler_replicas(platform: PlatformProcess) -> list[int]:
    return [
        p
        for p in replica_processes(platform.home)
        if "custom-predictor" in Path(f"/proc/{p}/cmdline").read_text()
    ]


def test_the_stop_annotation_stops_the_service(platform, tmp_path):
    resource = yaml.safe_load((EXAMPLES / "custom-predictor.yaml").read_text())
    resource["metadata"]["annotations"] = {"serving.kserve.io/stop": "true"}
    path = tmp_path / "doubler.yaml"
    path.write_text(yaml.safe_dump(resource))
    platform.cli("apply", "-f", str(path))

    def stopped():
        status = get(platform, "doubler").get("status") or {}
        conditions = {c["type"]: (c["status"], c.get("reason")) for c in status.get("conditions") or []}
        return conditions if conditions.get("Stopped") == ("True", None) else None

    conditions = wait_until(stopped, "the Stopped condition", platform)
    assert conditions["Ready"] == ("False", "Stopped") and conditions["PredictorReady"] == (
        "False",
        "Stopped",
    )
    wait_until(lambda: not doubler_replicas(platform), "the doubler replica to stop", platform)
    response = platform.request(
        "POST", host("doubler"), "/v1/models/doubler:predict", json={"instances": [[1]]}
    )
    assert response.status_code == 503
    assert response.json()["error"] == (
        "InferenceService default/doubler is not ready: The InferenceService is stopped."
    )


def test_delete_stops_the_service(platform):
    platform.cli("apply", "-f", str(EXAMPLES / "custom-predictor.yaml"))  # no longer stopped
    platform.cli("wait", "--for=condition=Ready", "isvc/doubler", "--timeout=300s")
    assert doubler_replicas(platform)
    platform.cli("delete", "isvc", "doubler")

    def gone():
        response = platform.request("POST", host("doubler"), "/v1/models/doubler:predict", json=IRIS)
        return response if response.status_code == 404 else None

    response = wait_until(gone, "the doubler host to go", platform)
    assert "no InferenceService" in response.json()["error"]
    wait_until(lambda: not doubler_replicas(platform), "the doubler replica to stop", platform)


BATCHED = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris-batched
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 1
    batcher: {maxBatchSize: 4, maxLatency: 60000}
    sklearn:
      storageUri: pvc://examples/sklearn-iris
"""
# One row of each iris class, and the class the example model predicts for it.
IRIS_CLASSES = [
    ([5.1, 3.5, 1.4, 0.2], 0),
    ([6.8, 2.8, 4.8, 1.4], 1),
    ([7.7, 3.0, 6.1, 2.3], 2),
    ([5.0, 3.4, 1.5, 0.2], 0),
]


def test_a_batcher_answers_concurrent_requests_with_one_model_call(platform, tmp_path):
    path = tmp_path / "batched.yaml"
    path.write_text(BATCHED)
    platform.cli("apply", "-f", str(path))
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-batched", "--timeout=300s")

    def predict(row):
        path = "/v1/models/iris-batched:predict"
        return platform.request("POST", host("iris-batched"), path, json={"instances": [row]}).json()

    # The replica waits a minute for company: these four are answered once they fill a batch together.
    with ThreadPoolExecutor(len(IRIS_CLASSES)) as pool:
        answers = list(pool.map(predict, [row for row, _ in IRIS_CLASSES]))
    assert answers == [{"predictions": [label]} for _, label in IRIS_CLASSES]
    metrics = platform.request("GET", host("iris-batched"), "/metrics").text
    assert 'modelplane_batch_size_count{model_name="iris-batched"} 1.0' in metrics
    assert 'modelplane_batch_size_sum{model_name="iris-batched"} 4.0' in metrics

    platform.cli("delete", "isvc", "iris-batched")


def apply_invalid_spec(platform, tmp_path, name: str, model: str) -> tuple[dict, Path]:
    """Applies a service whose predictor `model` (YAML lines) no runtime serves; its status once it
    says InvalidSpec, and the file to delete it by."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: {name}\nspec:\n"
        f"  predictor:\n    model:\n{model}      storageUri: pvc://examples/sklearn-iris\n"
    )
    platform.cli("apply", "-f", str(path))

    def invalid():
        status = get(platform, name).get("status") or {}
        return status if status.get("modelStatus", {}).get("transitionStatus") == "InvalidSpec" else None

    return wait_until(invalid, "the invalid spec to be reported", platform), path


def test_a_spec_no_runtime_can_serve_is_an_invalid_spec(platform, tmp_path):
    model = "      modelFormat: {name: sklearn}\n      runtime: no-such-runtime\n"
    status, path = apply_invalid_spec(platform, tmp_path, "nope", model)
    predictor_ready = next(c for c in status["conditions"] if c["type"] == "PredictorReady")
    assert (predictor_ready["status"], predictor_ready["reason"]) == ("False", "RuntimeNotRecognized")
    assert status["modelStatus"]["lastFailureInfo"]["reason"] == "RuntimeNotRecognized"
    platform.cli("delete", "-f", str(path))


def test_a_model_format_no_runtime_supports_is_named_in_an_event(platform, tmp_path):
    status, path = apply_invalid_spec(platform, tmp_path, "typo", "      modelFormat: {name: sklern}\n")
    failure = status["modelStatus"]["lastFailureInfo"]
    assert failure == {
        "reason": "NoSupportingRuntime",
        "message": "No runtime found to support specified framework/version",
        "time": failure["time"],
    }
    described = platform.cli("describe", "isvc", "typo").stdout
    events = described[described.index("Events:") :]
    assert "NoSupportingRuntime" in events
    assert "no runtime found to support predictor with model type: {sklern}" in events
    platform.cli("delete", "-f", str(path))


def test_a_second_platform_on_the_same_home_is_refused(platform):
    second = platform.cli("up", "--api-port", "0", "--gateway-port", "0", check=False)
    assert second.returncode == 2
    assert "another modelplane up" in second.stderr and str(platform.home) in second.stderr


@pytest.mark.parametrize("flag", ["--api-port", "--gateway-port"])
def test_a_port_in_use_is_named_with_the_flag_that_chooses_it(tmp_path, flag):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--api-port": "0", "--gateway-port": "0", flag: str(port)}
        command = [sys.executable, "-m", "modelplane", "up", "--home", str(tmp_path)]
        for name, value in ports.items():
            command += [name, value]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    what = "API" if flag == "--api-port" else "gateway"
    assert result.returncode == 2
    assert result.stderr == (
        f"modelplane up: cannot listen for the {what} on 127.0.0.1:{port}: Address already in use "
        f"(choose another with {flag})\n"
    )


def test_a_restart_brings_every_service_back(platform):
    assert platform.stop() == 0
    assert replica_processes(platform.home) == []
    platform.start()
    platform.wait_ready("xgboost-iris", "lightgbm-iris", "iris-mm")
    response = platform.request(
        "POST", host("iris-mm"), "/v1/models/iris-mm:predict", json={"instances": [[68, 28, 48, 14]]}
    )
    assert response.json() == {"predictions": [1]}
    # The failed revision is still the latest one, and the one before it still serves.
    status = get(platform, "sklearn-iris")["status"]
    assert status["components"]["predictor"]["latestReadyRevision"] == "sklearn-iris-predictor-00002"
    response = platform.request("POST", host("sklearn-iris"), "/v1/models/sklearn-iris:predict", json=IRIS)
    assert response.status_code == 200 and len(response.json()["predictions"][0]) == 3
    assert "doubler" not in platform.cli("get", "isvc").stdout


def test_replicas_do_not_outlive_a_killed_platform(platform):
    assert replica_processes(platform.home)
    platform.process.kill()
    wait_until(lambda: not replica_processes(platform.home), "the replicas to stop", platform)


def test_up_refuses_a_file_it_cannot_read_before_starting(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: [\n")
    result = PlatformProcess(tmp_path).cli(
        "up", "-f", str(bad), "--api-port", "0", "--gateway-port", "0", check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("modelplane up: ") and "bad.yaml" in result.stderr
