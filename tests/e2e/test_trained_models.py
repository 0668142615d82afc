"""End to end: multi-model serving with TrainedModels on `modelplane up`, KServe's MMS scenario.

An sklearn InferenceService with no storageUri becomes Ready with no model; two TrainedModels (iris
models the test trains, one at a `file://` URI and one in a `pvc://` claim) are loaded on its replica and
answer by name through the gateway; a killed replica comes back with both, a changed one is loaded again,
a new revision and a restart of the platform get both; a deleted TrainedModel is unloaded; deleting the
service deletes the TrainedModel that is left. TrainedModels share a replica's memory as ModelMesh's
models do: one that does not fit waits, and when those in place no longer fit the least recently used
leaves.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.platform_process import (
    PlatformProcess,
    kill_leftovers,
    replica_processes,
    running_platform,
    wait_until,
    write_iris_models,
)

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
HOST = "mms.default.localhost"


def isvc_yaml() -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "mms"},
        "spec": {"predictor": {"sklearn": {"resources": {"limits": {"memory": "1Gi"}}}}},
    }


def trained_model_yaml(name: str, uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": name},
        "spec": {
            "inferenceService": "mms",
            "model": {"storageUri": uri, "framework": "sklearn", "memory": "128Mi"},
        },
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    home = tmp_path_factory.mktemp("mp-mms-home")
    write_iris_models(
        {
            home / "models" / "iris-a": LogisticRegression(max_iter=1000),
            home / "pvc" / "tm" / "iris-b": DecisionTreeClassifier(random_state=0),
            home / "pvc" / "tm" / "constant": DummyClassifier(strategy="constant", constant=2),
        }
    )
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home):
    with running_platform(home) as platform:
        yield platform


def model_status(platform: PlatformProcess, name: str) -> int:
    return platform.request("GET", HOST, f"/v1/models/{name}").status_code


def predict(platform: PlatformProcess, name: str) -> dict | None:
    response = platform.request("POST", HOST, f"/v1/models/{name}:predict", json=IRIS)
    return response.json() if response.status_code == 200 else None


def get(platform: PlatformProcess, kind: str, name: str) -> dict:
    return json.loads(platform.cli("get", kind, name, "-o", "json").stdout)


def test_trained_models_are_served_by_name_on_a_multi_model_service(platform, home):
    platform.apply(isvc_yaml())
    platform.cli("wait", "--for=condition=Ready", "isvc/mms", "--timeout=300s")

    platform.apply(
        trained_model_yaml("iris-a", f"file://{home / 'models' / 'iris-a'}"),
        trained_model_yaml("iris-b", "pvc://tm/iris-b"),
    )
    for name in ("iris-a", "iris-b"):
        wait_until(lambda name=name: model_status(platform, name) == 200, f"{name} loaded", platform)
        response = platform.request("POST", HOST, f"/v1/models/{name}:predict", json=IRIS)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}

    # Each TrainedModel reports KServe's conditions and its URL.
    platform.cli("wait", "--for=condition=Ready", "tm", "iris-a", "iris-b", "--timeout=120s")
    status = get(platform, "tm", "iris-a")["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "InferenceServiceReady": "True",
        "IsMMSPredictor": "True",
        "MemoryResourceAvailable": "True",
        "Ready": "True",
    }
    port = platform.gateway_url.rsplit(":", 1)[1]
    assert status["url"] == f"http://{HOST}:{port}/v1/models/iris-a:predict"
    # And the labels KServe's controller keeps, which select a service's TrainedModels.
    labels = get(platform, "tm", "iris-a")["metadata"]["labels"]
    assert labels == {"inferenceservice": "mms", "serving.kserve.io/trainedmodel-allocated": "mms"}
    selected = platform.cli("get", "tm", "-l", "inferenceservice=mms", "-o", "name").stdout.split()
    assert sorted(selected) == [
        "trainedmodel.serving.kserve.io/iris-a",
        "trainedmodel.serving.kserve.io/iris-b",
    ]

    # A replica that dies comes back with every TrainedModel.
    (pid,) = replica_processes(home)
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: replica_processes(home) not in ([], [pid]), "the replica's restart", platform)
    for name in ("iris-a", "iris-b"):
        wait_until(lambda name=name: model_status(platform, name) == 200, f"{name} back", platform)
        response = platform.request("POST", HOST, f"/v1/models/{name}:predict", json=IRIS)
        assert response.json() == {"predictions": [1, 1]}

    # A changed TrainedModel is loaded again (a model that always answers 2).
    platform.apply(trained_model_yaml("iris-b", "pvc://tm/constant"))
    wait_until(lambda: predict(platform, "iris-b") == {"predictions": [2, 2]}, "iris-b reloaded", platform)
    assert get(platform, "tm", "iris-b")["status"]["observedGeneration"] == 2

    # A new revision of the service gets every TrainedModel.
    changed = isvc_yaml()
    changed["spec"]["predictor"]["containerConcurrency"] = 8
    platform.apply(changed)

    def new_revision_serves():
        predictor = get(platform, "isvc", "mms")["status"]["components"]["predictor"]
        return predictor.get("latestReadyRevision") == "mms-predictor-00002"

    wait_until(new_revision_serves, "the new revision", platform)
    # Its replica had them in its folder before it started, so it serves them from its first request.
    assert predict(platform, "iris-a") == {"predictions": [1, 1]}
    assert predict(platform, "iris-b") == {"predictions": [2, 2]}

    # A restart of modelplane up brings every TrainedModel back.
    assert platform.stop() == 0
    platform.start()
    platform.cli("wait", "--for=condition=Ready", "isvc/mms", "--timeout=300s")
    wait_until(
        lambda: predict(platform, "iris-a") == {"predictions": [1, 1]}, "iris-a after a restart", platform
    )
    wait_until(
        lambda: predict(platform, "iris-b") == {"predictions": [2, 2]}, "iris-b after a restart", platform
    )

    # A restart of the control plane in place keeps the replica serving both, without loading them again.
    (pid,) = replica_processes(home)
    replica_log = replica_log_of(home)
    loads = replica_log.read_text().count("model iris-a is ready")
    assert loads >= 1
    platform.process.send_signal(signal.SIGHUP)
    assert predict(platform, "iris-a") == {"predictions": [1, 1]}  # while it restarts
    assert platform.process.stdout.readline().startswith("modelplane is up: ")
    platform.cli("wait", "--for=condition=Ready", "tm", "iris-a", "iris-b", "--timeout=120s")
    time.sleep(2)  # the TrainedModel controller has looked at the replica again
    assert predict(platform, "iris-b") == {"predictions": [2, 2]}
    assert replica_processes(home) == [pid]
    assert replica_log.read_text().count("model iris-a is ready") == loads

    # A deleted TrainedModel is unloaded; the other one keeps serving.
    platform.cli("delete", "tm", "iris-a")
    wait_until(lambda: model_status(platform, "iris-a") == 404, "iris-a unloaded", platform)
    assert model_status(platform, "iris-b") == 200
    folder = home / "repositories" / "default" / "mms" / "predictor" / "mms-predictor-00002-0"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["iris-b"]

    # Without its InferenceService, a TrainedModel is deleted.
    platform.cli("delete", "isvc", "mms")
    platform.cli("wait", "--for=delete", "tm/iris-b", "--timeout=120s")
    assert platform.cli("get", "tm", "iris-b", check=False).returncode != 0
    wait_until(
        lambda: not (home / "repositories" / "default" / "mms").exists(),
        "the model folders removed",
        platform,
    )


def test_a_trained_model_of_a_service_that_does_not_exist_is_deleted_and_says_why(platform):
    orphan = trained_model_yaml("orphan", "pvc://tm/iris-b")
    orphan["spec"]["inferenceService"] = "nowhere"
    platform.apply(orphan)
    platform.cli("wait", "--for=delete", "tm", "orphan", "--timeout=120s")

    def told() -> str | None:
        events = platform.cli("get", "events").stdout
        return events if "InferenceServiceNotFound" in events else None

    events = wait_until(told, "the event", platform)
    assert "InferenceService nowhere does not exist in namespace default" in events


def test_a_trained_model_of_a_single_model_service_is_not_loaded(platform, home):
    single = isvc_yaml()
    single["metadata"]["name"] = "single"
    single["spec"]["predictor"]["sklearn"]["storageUri"] = "pvc://tm/iris-b"
    tm = trained_model_yaml("iris-c", "pvc://tm/iris-b")
    tm["spec"]["inferenceService"] = "single"
    platform.apply(single, tm)

    def not_mms():
        status = get(platform, "tm", "iris-c").get("status") or {}
        return {c["type"]: c.get("reason") for c in status.get("conditions") or []}.get("IsMMSPredictor")

    assert wait_until(not_mms, "IsMMSPredictor", platform) == "IsNotMMSPredictor"
    platform.cli("delete", "isvc", "single")
    platform.cli("wait", "--for=delete", "tm/iris-c", "--timeout=120s")


def test_a_model_that_fails_to_load_or_does_not_fit_says_why(platform, home):
    broken = home / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "model.joblib").write_bytes(b"this is not a pickle")
    service = isvc_yaml()
    service["metadata"]["name"] = "mms2"
    bad = trained_model_yaml("bad", f"file://{broken}")
    big = trained_model_yaml("big", "pvc://tm/iris-b")
    big["spec"]["model"]["memory"] = "2Gi"  # over the predictor's 1Gi limit
    for tm in (bad, big):
        tm["spec"]["inferenceService"] = "mms2"
    platform.apply(service, bad, big)

    def ready_condition(name: str) -> tuple | None:
        conditions = (get(platform, "tm", name).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return (ready["status"], ready.get("reason"), ready.get("message")) if ready else None

    def failed():
        condition = ready_condition("bad")
        return condition if condition and condition[1] == "ModelLoadFailed" else None

    status, _, message = wait_until(failed, "bad's failure", platform)
    assert status == "False" and "Failed to load" in message, message
    assert wait_until(
        lambda: (ready_condition("big") or ("",))[1] == "MemoryResourceNotAvailable", "big", platform
    )
    assert platform.request("GET", "mms2.default.localhost", "/v1/models/big").status_code == 404
    assert get(platform, "tm", "big")["metadata"]["labels"] == {"inferenceservice": "mms2"}  # not allocated
    table = platform.cli("get", "tm").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "READY", "AGE"]
    platform.cli("delete", "isvc", "mms2")
    platform.cli("wait", "--for=delete", "tm", "bad", "big", "--timeout=120s")


def test_trained_models_share_a_replicas_memory_and_the_least_recently_used_leaves(platform, home):
    """A 1Gi predictor: a and b (512Mi each) fill it; c (256Mi) waits without unloading them; the limit
    lowered to 768Mi holds b and c but not a, which, used before b, leaves; a comes back once b is gone."""
    service = isvc_yaml()
    service["metadata"]["name"] = "lru"
    lru_host = "lru.default.localhost"

    def model(name: str, memory: str) -> dict:
        found = trained_model_yaml(name, "pvc://tm/iris-b")
        found["spec"]["inferenceService"] = "lru"
        found["spec"]["model"]["memory"] = memory
        return found

    def served(name: str) -> bool:
        response = platform.request("POST", lru_host, f"/v1/models/{name}:predict", json=IRIS)
        return response.status_code == 200 and response.json() == {"predictions": [1, 1]}

    def unloaded(name: str) -> bool:
        return platform.request("GET", lru_host, f"/v1/models/{name}").status_code == 404

    def memory_available(name: str) -> str | None:
        conditions = (get(platform, "tm", name).get("status") or {}).get("conditions") or []
        return next((c["status"] for c in conditions if c["type"] == "MemoryResourceAvailable"), None)

    platform.apply(service)
    platform.cli("wait", "--for=condition=Ready", "isvc/lru", "--timeout=300s")
    platform.apply(model("a", "512Mi"))
    platform.apply(model("b", "512Mi"))  # created after a
    platform.cli("wait", "--for=condition=Ready", "tm", "a", "b", "--timeout=120s")
    assert served("a")  # a is used first ...

    platform.apply(model("c", "256Mi"))
    assert wait_until(lambda: memory_available("c") == "False", "c waiting for memory", platform)
    assert unloaded("c")
    assert served("b")  # ... then b; both stayed in place
    assert memory_available("a") == memory_available("b") == "True"

    # Lowered to 768Mi: a and b no longer fit together, and a, the least recently used, leaves.
    service["spec"]["predictor"]["sklearn"]["resources"]["limits"]["memory"] = "768Mi"
    platform.apply(service)
    wait_until(lambda: memory_available("a") == "False", "a leaving", platform)
    platform.cli("wait", "--for=condition=Ready", "tm", "b", "c", "--timeout=120s")
    wait_until(lambda: served("b") and served("c") and unloaded("a"), "b and c without a", platform)
    assert memory_available("b") == "True"
    assert "serving.kserve.io/trainedmodel-allocated" not in get(platform, "tm", "a")["metadata"]["labels"]

    # The same file applied again changes nothing: b and c keep their place (the labels that say so stay).
    applied = platform.apply(model("a", "512Mi"), model("b", "512Mi"), model("c", "256Mi")).stdout
    assert applied.count("unchanged") == 3, applied
    time.sleep(1)
    assert served("b") and served("c") and unloaded("a")

    platform.cli("delete", "tm", "b")
    platform.cli("wait", "--for=condition=Ready", "tm", "a", "--timeout=120s")
    wait_until(lambda: served("a") and served("c"), "a back next to c", platform)
    platform.cli("delete", "isvc", "lru")
    platform.cli("wait", "--for=delete", "tm", "a", "c", "--timeout=120s")


def replica_log_of(home: Path) -> Path:
    """The log of the replica of the service's second revision."""
    return home / "logs" / "default" / "mms" / "predictor" / "mms-predictor-00002-0.log"
