"""End to end: KServe 0.20's Standard-mode canaries (`spec.canary`) on `modelplane up`."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform_process import (
    PlatformProcess,
    kill_leftovers,
    replica_processes,
    running_platform,
    wait_until,
    write_iris_models,
)

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
STABLE_ANSWER = {"predictions": [1, 1]}
CANARY_ANSWER = {"predictions": [2, 2]}
HOST = "cany.default.localhost"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("mp-home")
    models = home / "pvc" / "models"
    write_iris_models(
        {
            models / "iris": LogisticRegression(max_iter=1000),
            models / "constant": DummyClassifier(strategy="constant", constant=2),
        }
    )
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home):
    with running_platform(home) as platform:
        yield platform


def service(*canaries: dict) -> dict:
    resource = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "cany", "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
        "spec": {
            "predictor": {
                "minReplicas": 2,
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://models/iris"},
            }
        },
    }
    if canaries:
        resource["spec"]["canary"] = list(canaries)
    return resource


def v2_canary(percent: int) -> dict:
    return {
        "trafficPercent": percent,
        "predictor": {"name": "v2", "model": {"storageUri": "pvc://models/constant"}},
    }


def status(platform: PlatformProcess) -> dict:
    return json.loads(platform.cli("get", "isvc", "cany", "-o", "json").stdout).get("status") or {}


def condition(found: dict, kind: str) -> dict | None:
    return next((c for c in found.get("conditions") or [] if c["type"] == kind), None)


def predict(platform: PlatformProcess, host: str = HOST) -> dict:
    response = platform.request("POST", host, "/v1/models/cany:predict", json=IRIS)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_canary_takes_its_share_and_leaves_without_a_trace(platform):
    platform.apply(service(v2_canary(30)))
    platform.cli("wait", "--for=condition=Ready", "isvc/cany", "--timeout=300s")

    def canary_ready():
        found = status(platform)
        ready = condition(found, "CanaryPredictorReady")
        return found if ready and ready["status"] == "True" else None

    found = wait_until(canary_ready, "the canary", platform)
    assert condition(found, "CanaryPredictorReady")["reason"] == "AllCanariesReady"
    assert found["canaryStatuses"] == [{"name": "v2", "ready": True, "trafficPercent": 30}]

    # It runs ceil(2 x 30%) = 1 replica of its own revision, lent by the stable predictor (2 - 1).
    def replicas() -> dict[str, int]:
        return {entry["name"]: entry["actualReplicas"] for entry in status(platform)["revisions"]}

    lent = {"cany-predictor-00001": 1, "cany-v2-predictor-00001": 1}
    wait_until(lambda: replicas() == lent, "the stable predictor lending a replica", platform)

    answers = [predict(platform) for _ in range(200)]
    canary_share = answers.count(CANARY_ANSWER) / len(answers)
    assert answers.count(STABLE_ANSWER) + answers.count(CANARY_ANSWER) == len(answers)
    assert 0.15 <= canary_share <= 0.45, canary_share  # 30% expected
    # Its own host reaches the canary alone.
    assert {str(predict(platform, "cany-v2-predictor.default.localhost")) for _ in range(10)} == {
        str(CANARY_ANSWER)
    }
    # Its replicas' log is the canary's own.
    assert "cany-v2-predictor-00001" in platform.cli("logs", "cany", "-c", "v2-predictor").stdout

    # Rollback: the canary's entry is removed, its replica stops and all traffic is the stable's.
    platform.apply(service())

    def rolled_back():
        found = status(platform)
        names = {entry["name"] for entry in found.get("revisions") or []}
        gone = "canaryStatuses" not in found and condition(found, "CanaryPredictorReady") is None
        return found if gone and names == {"cany-predictor-00001"} else None

    wait_until(rolled_back, "the rollback", platform)
    assert all(predict(platform) == STABLE_ANSWER for _ in range(30))
    wait_until(lambda: replicas() == {"cany-predictor-00001": 2}, "the lent replica back", platform)


def test_a_restart_in_place_keeps_the_replicas_lent_to_a_ready_canary(platform, home):
    """After SIGHUP the control plane takes back the replicas it had: the stable predictor, which lent
    one of its two to the ready canary, does not start a second one while the canary is taken back."""
    platform.apply(service(v2_canary(30)))
    lent = {"cany-predictor-00001": 1, "cany-v2-predictor-00001": 1}
    wait_until(lambda: replicas(platform) == lent, "the stable predictor lending a replica", platform)
    running = wait_until(
        lambda: len(replica_processes(home)) == 2 and set(replica_processes(home)),
        "one replica each",
        platform,
    )

    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert set(replica_processes(home)) == running, "a replica started or stopped across the restart"
        time.sleep(0.1)
    assert replicas(platform) == lent
    platform.apply(service())
    wait_until(lambda: replicas(platform) == {"cany-predictor-00001": 2}, "the lent replica back", platform)


def replicas(platform: PlatformProcess) -> dict[str, int]:
    return {entry["name"]: entry["actualReplicas"] for entry in status(platform)["revisions"]}


def test_a_canary_that_fails_to_load_takes_no_traffic_and_says_why(platform, home):
    broken = home / "pvc" / "models" / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "model.joblib").write_bytes(b"this is not a pickle")
    canary = {
        "trafficPercent": 50,
        "predictor": {"name": "bad", "model": {"storageUri": "pvc://models/broken"}},
    }
    platform.apply(service(canary))

    def failed():
        found = status(platform)
        ready = condition(found, "CanaryPredictorReady")
        return (
            ready if ready and "bad:" in (ready.get("message") or "") and "load" in ready["message"] else None
        )

    ready = wait_until(failed, "the canary's failure", platform)
    assert ready["status"] == "False" and ready["reason"] == "CanariesNotReady"
    assert condition(status(platform), "Ready")["status"] == "True"  # the stable predictor serves on
    assert all(predict(platform) == STABLE_ANSWER for _ in range(30))
    platform.apply(service())


def test_promoting_a_canary_moves_all_traffic_to_its_model(platform):
    platform.apply(service(v2_canary(50)))

    def canary_ready():
        ready = condition(status(platform), "CanaryPredictorReady")
        return ready if ready and ready["status"] == "True" else None

    wait_until(canary_ready, "the canary", platform)
    promoted = service()
    predictor = promoted["spec"]["predictor"]
    predictor["name"] = "v2"
    predictor["model"]["storageUri"] = "pvc://models/constant"
    platform.apply(promoted)

    def all_on_the_new_model():
        found = status(platform)
        names = {entry["name"] for entry in found.get("revisions") or []}
        done = "canaryStatuses" not in found and not any("v2-predictor" in name for name in names)
        return found if done and all(predict(platform) == CANARY_ANSWER for _ in range(20)) else None

    wait_until(all_on_the_new_model, "the promotion", platform)
    assert condition(status(platform), "Ready")["status"] == "True"
    # As in KServe, the promoted predictor's Service keeps the canary's name, `<isvc>-v2-predictor`.
    assert predict(platform, "cany-v2-predictor.default.localhost") == CANARY_ANSWER
