"""End to end: ModelMesh services on `modelplane up`.

Five sklearn iris services annotated `serving.kserve.io/deploymentMode: ModelMesh` share one
multi-model ServingRuntime whose pool has 2 replicas, each keeping 20Mi for models; each model holds 8
MB of weights, so a replica holds two and the pool four of the five. Each service answers its first
request (loaded on demand), in turn; the least recently used copy is unloaded to make room and loaded
again when asked; the statuses say which are Loaded and which Standby. A corrupt model ends
FailedToLoad with lastFailureInfo while the others serve, a model bigger than a replica fails with that
reason, the mode of a service cannot be changed, and a pool replica that exits is the last failure of
the models it held. A changed model is InProgress until its new version is loaded; one whose new
version fails to load keeps the old one serving, whether its files are missing or corrupt. A busy model on a pool with room gets a copy on each replica, and gives the extra
one back when the load is gone. Fifty services share a pool whose two replicas hold ten of them: each
answers in turn, the most recently used stay loaded, and one asked again comes back in the place of
the least recently used. A restart of the control plane in place keeps the models the pools hold. A
pool no service uses keeps its replicas for the scale-to-zero grace period, then stops.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
import yaml

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import (
    PlatformProcess,
    kill_leftovers,
    replica_processes,
    running_platform,
    wait_until,
)

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
MODELS = ("iris-a", "iris-b", "iris-c", "iris-d", "iris-e")
MIB = 1024**2
REPLICA_MEMORY = 1024 * MIB
FOR_MODELS = 20 * MIB
FIFTY = tuple(f"small-{index:02d}" for index in range(50))
SMALL = 4 * MIB  # the weights each of the fifty carries


def runtime_yaml() -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mm-sklearn"},
        "spec": {
            "multiModel": True,
            "replicas": 2,
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "builtInAdapter": {"memBufferBytes": REPLICA_MEMORY - FOR_MODELS},
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "kserve/sklearnserver:latest",
                    "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
                    "resources": {"limits": {"memory": "1Gi"}},
                }
            ],
        },
    }


def mesh_isvc(name: str, uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": "ModelMesh"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    }


def write_models(root: Path) -> None:
    """Iris models, each carrying 8 MB of weights it does not need (what makes memory matter)."""
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    for name in MODELS:
        model = LogisticRegression(max_iter=1000).fit(features, labels)
        model.ballast_ = rng.random(MIB)  # 8 MB of float64
        (root / name).mkdir(parents=True)
        joblib.dump(model, root / name / "model.joblib")
    small = LogisticRegression(max_iter=1000).fit(features, labels)
    small.ballast_ = rng.random(SMALL // 8)
    (root / "small").mkdir()
    joblib.dump(small, root / "small" / "model.joblib")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "model.joblib").write_bytes(b"not a joblib file")
    big = LogisticRegression(max_iter=1000).fit(features, labels)
    big.ballast_ = rng.random(4 * MIB)  # 32 MB: more than a replica keeps for models
    (root / "big").mkdir()
    joblib.dump(big, root / "big" / "model.joblib")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("mp-modelmesh-home")
    write_models(home / "pvc" / "mm")
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home):
    options = ("--modelmesh-copy-grace-period", "3s", "--modelmesh-scale-to-zero-grace-period", "20s")
    with running_platform(home, *options) as platform:
        yield platform


def predict(platform: PlatformProcess, name: str):
    return platform.request("POST", f"{name}.default.localhost", f"/v1/models/{name}:predict", json=IRIS)


def model_status(platform: PlatformProcess, name: str) -> dict:
    isvc = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout)
    return (isvc.get("status") or {}).get("modelStatus") or {}


def active(platform: PlatformProcess, name: str) -> str:
    return model_status(platform, name).get("states", {}).get("activeModelState", "")


def test_modelmesh_services_load_on_demand_and_evict_the_least_recently_used(platform):
    platform.apply(runtime_yaml(), *(mesh_isvc(name, f"pvc://mm/{name}") for name in MODELS))
    platform.cli("wait", "--for=condition=Ready", *(f"isvc/{n}" for n in MODELS), "--timeout=300s")
    status = json.loads(platform.cli("get", "isvc", "iris-a", "-o", "json").stdout)["status"]
    assert status["deploymentMode"] == "ModelMesh"
    assert status["servingRuntimeName"] == "mm-sklearn"
    # Registered, not loaded: Standby, no copy, no target.
    assert status["modelStatus"] == {
        "transitionStatus": "UpToDate",
        "states": {"activeModelState": "Standby"},
        "copies": {"failedCopies": 0, "totalCopies": 0},
    }

    # Each answers its first request (which waits for the load), in turn.
    for name in MODELS:
        response = predict(platform, name)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}
    # Four fit in the pool: the least recently used, iris-a, made room for iris-e.
    wait_until(lambda: active(platform, "iris-a") == "Standby", "iris-a evicted", platform)
    assert model_status(platform, "iris-a")["copies"] == {"failedCopies": 0, "totalCopies": 0}
    loaded = model_status(platform, "iris-e")
    assert loaded == {
        "transitionStatus": "UpToDate",
        "states": {"activeModelState": "Loaded"},
        "copies": {"failedCopies": 0, "totalCopies": 1},
    }
    assert [active(platform, name) for name in MODELS[1:]] == ["Loaded"] * 4

    # Asked again, iris-a is loaded again, in the place of the least recently used, iris-b.
    assert predict(platform, "iris-a").json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, "iris-a") == "Loaded", "iris-a loaded again", platform)
    wait_until(lambda: active(platform, "iris-b") == "Standby", "iris-b evicted", platform)
    assert [active(platform, name) for name in MODELS[2:]] == ["Loaded"] * 3
    log = platform.log()
    assert "iris-a unloaded" in log and "iris-b unloaded" in log


def test_grpc_and_v2_reach_a_model_at_its_urls(platform):
    """iris-b was unloaded: a gRPC call at its grpcUrl loads it again, as a REST call would."""
    assert active(platform, "iris-b") == "Standby"
    status = json.loads(platform.cli("get", "isvc", "iris-b", "-o", "json").stdout)["status"]
    authority = urlsplit(status["components"]["predictor"]["grpcUrl"]).netloc
    gateway = urlsplit(platform.gateway_url).netloc
    with grpc.insecure_channel(gateway, options=[("grpc.default_authority", authority)]) as channel:
        request = pb.ModelInferRequest(model_name="iris-b")
        tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[2, 4])
        tensor.contents.fp32_contents.extend([v for row in IRIS["instances"] for v in row])
        response = InferenceStub(channel).ModelInfer(request, timeout=120)
    output = response.outputs[0]
    assert list(output.contents.int64_contents or output.contents.int_contents) == [1, 1]
    assert active(platform, "iris-b") == "Loaded"
    v2 = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS["instances"]}]}
    response = platform.request("POST", "iris-b.default.localhost", "/v2/models/iris-b/infer", json=v2)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [1, 1]


def test_a_corrupt_model_fails_to_load_while_the_others_serve(platform):
    platform.apply(mesh_isvc("corrupt", "pvc://mm/corrupt"))
    platform.cli("wait", "--for=condition=IngressReady", "isvc/corrupt", "--timeout=120s")
    response = predict(platform, "corrupt")
    assert response.status_code == 503
    assert "failed to load" in response.json()["error"]
    status = wait_until(
        lambda: (
            (s := model_status(platform, "corrupt")).get("transitionStatus") == "BlockedByFailedLoad" and s
        ),
        "corrupt FailedToLoad",
        platform,
    )
    assert status["states"] == {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"}
    assert status["copies"] == {"failedCopies": 1, "totalCopies": 0}
    info = status["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed"
    assert info["location"].startswith("modelmesh-serving-mm-sklearn-predictor-00001-")
    assert info["modelRevisionName"].startswith("corrupt__isvc-")
    assert info["message"] and info["time"]
    isvc = json.loads(platform.cli("get", "isvc", "corrupt", "-o", "json").stdout)
    ready = {c["type"]: c for c in isvc["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ModelLoadFailed")
    # The others keep serving.
    for name in ("iris-c", "iris-d"):
        assert predict(platform, name).json() == {"predictions": [1, 1]}


def test_a_model_bigger_than_a_replica_fails_with_that_reason(platform):
    platform.apply(mesh_isvc("big", "pvc://mm/big"))
    platform.cli("wait", "--for=condition=Ready", "isvc/big", "--timeout=120s")
    response = predict(platform, "big")
    assert response.status_code == 503
    assert "more than a replica of runtime mm-sklearn keeps for models (20.0Mi)" in response.json()["error"]
    info = wait_until(
        lambda: model_status(platform, "big").get("lastFailureInfo"), "big's lastFailureInfo", platform
    )
    assert "more than a replica of runtime mm-sklearn keeps for models" in info["message"]


def test_a_runtime_whose_pool_cannot_start_says_why_and_refuses_at_once(platform):
    broken = runtime_yaml()
    broken["metadata"]["name"] = "mm-broken"
    broken["spec"]["replicas"] = 1
    broken["spec"]["supportedModelFormats"] = [{"name": "sklearn", "autoSelect": False}]
    broken["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", "echo 'no server here' >&2; exit 127"]
    service = mesh_isvc("on-broken", "pvc://mm/iris-a")
    service["spec"]["predictor"]["model"]["runtime"] = "mm-broken"
    platform.apply(broken, service)
    info = wait_until(
        lambda: model_status(platform, "on-broken").get("lastFailureInfo"), "its lastFailureInfo", platform
    )
    assert (info["reason"], info["message"]) == ("RuntimeUnhealthy", "no server here")

    def refused():
        answer = predict(platform, "on-broken")
        return answer if answer.status_code == 503 and "does not start" in answer.text else None

    response = wait_until(refused, "a refusal that says why", platform)
    assert response.json()["error"].endswith("runtime does not start: no server here")
    platform.cli("delete", "isvc/on-broken", "servingruntime/mm-broken")


def test_a_change_no_runtime_serves_leaves_the_old_version_serving(platform):
    """As ModelMesh Serving's InvalidSpec: a mistyped runtime in a changed spec is not transitioned to,
    the loaded model answers on; the spec put right loads as any change does."""
    service = mesh_isvc("iris-typo", "pvc://mm/iris-a")
    platform.apply(runtime_yaml(), service)
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-typo", "--timeout=300s")
    assert predict(platform, "iris-typo").status_code == 200
    service["spec"]["predictor"]["model"]["runtime"] = "mm-skleran"
    platform.apply(service)
    status = wait_until(
        lambda: (
            model_status(platform, "iris-typo").get("transitionStatus") == "InvalidSpec"
            and model_status(platform, "iris-typo")
        ),
        "the invalid spec",
        platform,
    )
    assert status["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert status["lastFailureInfo"]["reason"] == "RuntimeNotRecognized"
    response = predict(platform, "iris-typo")
    assert response.status_code == 200, response.text
    isvc = json.loads(platform.cli("get", "isvc", "iris-typo", "-o", "json").stdout)
    assert {c["type"]: c["status"] for c in isvc["status"]["conditions"]}["Ready"] == "True"
    service["spec"]["predictor"]["model"]["runtime"] = "mm-sklearn"
    platform.apply(service)
    wait_until(
        lambda: (
            active(platform, "iris-typo") == "Loaded"
            and model_status(platform, "iris-typo").get("transitionStatus") == "UpToDate"
        ),
        "the spec put right",
        platform,
    )
    before = len(platform.log())
    platform.cli("delete", "isvc/iris-typo")
    unload = wait_until(
        lambda: next(
            (x for x in platform.log()[before:].splitlines() if "default/iris-typo unloaded" in x), None
        ),
        "the deleted model's unload",
        platform,
    )
    assert unload.endswith("as its service was deleted"), unload


def test_the_mode_of_a_service_cannot_change(platform, tmp_path):
    changed = mesh_isvc("iris-c", "pvc://mm/iris-c")
    changed["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    result = platform.cli("apply", "-f", str(path), check=False)
    assert result.returncode != 0
    assert "deploymentMode cannot be changed from 'ModelMesh' to 'Standard'" in result.stderr


def test_a_changed_model_is_in_progress_until_its_new_version_loads(platform):
    """The old version serves meanwhile; the watch sees every status the platform writes."""
    assert predict(platform, "iris-c").json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, "iris-c") == "Loaded", "iris-c loaded", platform)
    seen: list[dict] = []
    watching = threading.Event()

    def watch() -> None:
        url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
        params = {"watch": "true", "timeoutSeconds": "60"}
        with httpx.stream("GET", url, params=params, timeout=90) as response:
            watching.set()
            for line in response.iter_lines():
                event = json.loads(line)["object"]
                if event["metadata"]["name"] == "iris-c":
                    seen.append((event.get("status") or {}).get("modelStatus") or {})
                    if seen[-1].get("transitionStatus") == "UpToDate" and len(seen) > 2:
                        return

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert watching.wait(30)
    platform.apply(mesh_isvc("iris-c", "pvc://mm/iris-e"))  # another version of the model
    watcher.join(90)
    in_progress = [s for s in seen if s.get("transitionStatus") == "InProgress"]
    assert in_progress, seen
    assert in_progress[0]["states"] == {"activeModelState": "Loaded", "targetModelState": "Loading"}
    assert seen[-1]["transitionStatus"] == "UpToDate"
    assert seen[-1]["states"] == {"activeModelState": "Loaded"}  # no target once up to date
    assert seen[-1]["copies"] == {"failedCopies": 0, "totalCopies": 1}
    assert predict(platform, "iris-c").json() == {"predictions": [1, 1]}


def test_a_changed_model_whose_files_are_missing_leaves_the_old_version_serving(platform):
    """ModelMesh Serving: BlockedByFailedLoad, "but the service will remain available": the active
    model stays Loaded, and answers. Before, the old version was unloaded before the new one's fetch,
    and its requests were answered 503."""
    platform.apply(runtime_yaml(), mesh_isvc("iris-update", "pvc://mm/iris-a"))
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-update", "--timeout=300s")
    assert predict(platform, "iris-update").json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, "iris-update") == "Loaded", "iris-update loaded", platform)
    platform.apply(mesh_isvc("iris-update", "pvc://mm/nowhere"))
    wait_until(
        lambda: model_status(platform, "iris-update").get("transitionStatus") == "BlockedByFailedLoad",
        "iris-update blocked by its failed load",
        platform,
    )
    status = model_status(platform, "iris-update")
    assert status["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert status["lastFailureInfo"]["reason"] == "ModelLoadFailed"
    assert predict(platform, "iris-update").json() == {"predictions": [1, 1]}
    isvc = json.loads(platform.cli("get", "isvc", "iris-update", "-o", "json").stdout)
    ready = next(x for x in isvc["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "True"
    platform.cli("delete", "isvc", "iris-update")


def test_a_changed_model_that_fails_in_the_server_gives_the_old_version_back(platform):
    """The new version's files are fetched but do not load (a corrupt file): on a pool of one replica,
    the only one that held the old version, the old version is loaded again and serves on."""
    runtime = runtime_yaml()
    runtime["metadata"]["name"] = "mm-one"
    runtime["spec"]["replicas"] = 1
    runtime["spec"]["supportedModelFormats"] = [{"name": "sklearn", "autoSelect": False}]
    service = mesh_isvc("iris-back", "pvc://mm/iris-a")
    service["spec"]["predictor"]["model"]["runtime"] = "mm-one"
    platform.apply(runtime, service)
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-back", "--timeout=300s")
    assert predict(platform, "iris-back").json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, "iris-back") == "Loaded", "iris-back loaded", platform)
    corrupt = mesh_isvc("iris-back", "pvc://mm/corrupt")
    corrupt["spec"]["predictor"]["model"]["runtime"] = "mm-one"
    platform.apply(corrupt)
    wait_until(
        lambda: model_status(platform, "iris-back").get("transitionStatus") == "BlockedByFailedLoad",
        "iris-back blocked by its failed load",
        platform,
    )
    status = model_status(platform, "iris-back")
    assert status["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert status["copies"]["totalCopies"] == 1
    assert predict(platform, "iris-back").json() == {"predictions": [1, 1]}
    platform.cli("delete", "isvc/iris-back", "servingruntime/mm-one")


def test_a_pool_replica_that_exits_is_the_last_failure_of_the_models_it_held(platform, home):
    assert predict(platform, "iris-d").json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, "iris-d") == "Loaded", "iris-d loaded", platform)
    pool = [
        pid
        for pid in replica_processes(home)
        if "modelmesh-serving-mm-sklearn" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
    assert len(pool) == 2, pool
    for pid in pool:
        os.killpg(pid, signal.SIGKILL)

    def exit_reported() -> dict | None:
        info = model_status(platform, "iris-d").get("lastFailureInfo") or {}
        return info if info.get("reason") == "RuntimeUnhealthy" else None

    info = wait_until(exit_reported, "the exit in iris-d's status", platform)
    assert info["exitCode"] == 137  # 128 + SIGKILL
    assert info["location"].startswith("modelmesh-serving-mm-sklearn-predictor-00001-")
    assert info["modelRevisionName"].startswith("iris-d__isvc-")
    assert f"replica {info['location']} exited with code 137" in info["message"] and info["time"]
    # Its copy went with the process: it is loaded again by its next request.
    wait_until(lambda: predict(platform, "iris-d").status_code == 200, "iris-d served again", platform)
    assert active(platform, "iris-d") == "Loaded"


def test_a_busy_model_gets_a_copy_on_each_replica_and_gives_it_back(platform):
    runtime = runtime_yaml()
    runtime["metadata"]["name"] = "mm-busy"
    del runtime["spec"]["builtInAdapter"]  # room for many copies
    runtime["spec"]["supportedModelFormats"][0]["autoSelect"] = False  # the other services keep theirs
    busy = mesh_isvc("busy", "pvc://mm/iris-a")
    busy["spec"]["predictor"]["model"]["runtime"] = "mm-busy"
    platform.apply(runtime, busy)
    platform.cli("wait", "--for=condition=Ready", "isvc/busy", "--timeout=300s")
    assert predict(platform, "busy").status_code == 200
    assert model_status(platform, "busy")["copies"]["totalCopies"] == 1

    # Large batches keep each request on a replica for a while: many at once at the gateway.
    batch = json.dumps({"instances": IRIS["instances"] * 10000}).encode()
    answers: list[int] = []
    stop = threading.Event()

    def load() -> None:
        headers = {"host": "busy.default.localhost"}
        with httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=120) as client:
            while not stop.is_set():
                answers.append(client.post("/v1/models/busy:predict", content=batch).status_code)

    clients = [threading.Thread(target=load) for _ in range(12)]
    for client in clients:
        client.start()
    try:
        wait_until(
            lambda: model_status(platform, "busy")["copies"]["totalCopies"] == 2, "a second copy", platform
        )
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert answers and set(answers) == {200}, "no request failed while the copy came"
    assert (
        "default/busy is busy: another copy on modelmesh-serving-mm-busy-predictor-00001-" in platform.log()
    )
    wait_until(
        lambda: model_status(platform, "busy")["copies"]["totalCopies"] == 1, "the extra copy gone", platform
    )
    assert "as its load no longer needs the copy" in platform.log()
    assert predict(platform, "busy").status_code == 200


def test_fifty_services_share_a_pool_that_holds_ten(platform):
    runtime = runtime_yaml()
    runtime["metadata"]["name"] = "mm-fifty"
    runtime["spec"]["supportedModelFormats"][0]["autoSelect"] = False  # the other services keep theirs
    room = 5 * SMALL + SMALL // 2  # five copies a replica
    runtime["spec"]["builtInAdapter"]["memBufferBytes"] = REPLICA_MEMORY - room
    services = []
    for name in FIFTY:
        service = mesh_isvc(name, "pvc://mm/small")
        service["spec"]["predictor"]["model"]["runtime"] = "mm-fifty"
        services.append(service)
    platform.apply(runtime, *services)
    platform.cli("wait", "--for=condition=Ready", *(f"isvc/{name}" for name in FIFTY), "--timeout=300s")
    for name in FIFTY:
        response = predict(platform, name)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}

    def statuses() -> dict[str, dict]:
        listed = json.loads(platform.cli("get", "isvc", "-o", "json").stdout)["items"]
        by_name = {isvc["metadata"]["name"]: isvc["status"]["modelStatus"] for isvc in listed}
        return {name: by_name[name] for name in FIFTY}

    # Settled: what is loaded is what was asked last, one copy each; the rest are Standby, no copy.
    def settled() -> dict[str, dict] | None:
        found = statuses()
        return None if any(s["states"]["activeModelState"] == "Loading" for s in found.values()) else found

    found = wait_until(settled, "the loads and unloads done", platform)
    loaded = [name for name in FIFTY if found[name]["states"] == {"activeModelState": "Loaded"}]
    assert 8 <= len(loaded) <= 10, loaded  # ten by their files; the memory measured may take a little more
    assert loaded == list(FIFTY[-len(loaded) :])
    for name in FIFTY:
        copies = 1 if name in loaded else 0
        assert found[name]["copies"] == {"failedCopies": 0, "totalCopies": copies}, (name, found[name])
        assert found[name]["transitionStatus"] == "UpToDate"
        if not copies:
            assert found[name]["states"] == {"activeModelState": "Standby"}

    # The first is asked again: it is loaded in the place of the least recently used of those loaded.
    assert predict(platform, FIFTY[0]).json() == {"predictions": [1, 1]}
    wait_until(lambda: active(platform, FIFTY[0]) == "Loaded", f"{FIFTY[0]} loaded again", platform)
    wait_until(lambda: active(platform, loaded[0]) == "Standby", f"{loaded[0]} evicted", platform)
    assert all(active(platform, name) == "Loaded" for name in loaded[1:])


def test_a_restart_in_place_keeps_the_models_the_pools_hold(platform, home):
    """The pool replicas are taken back with their models: Loaded at once, served without a second load,
    and still taking their room (asked for another, the pool unloads one)."""
    listed = json.loads(platform.cli("get", "isvc", "-o", "json").stdout)["items"]
    before = {
        isvc["metadata"]["name"]: isvc["status"]["modelStatus"]["copies"]["totalCopies"]
        for isvc in listed
        if isvc["metadata"]["name"] in FIFTY
    }
    loaded = [name for name in FIFTY if before[name]]
    standby = [name for name in FIFTY if not before[name]]
    assert loaded and standby
    pool = set(replica_processes(home))
    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")
    restarted_at = len(platform.log())

    def copies_known() -> bool:
        listed = json.loads(platform.cli("get", "isvc", "-o", "json").stdout)["items"]
        found = {i["metadata"]["name"]: i["status"]["modelStatus"] for i in listed}
        return all(found[name]["copies"]["totalCopies"] == before[name] for name in FIFTY) and all(
            found[name]["states"] == {"activeModelState": "Loaded"} for name in loaded
        )

    wait_until(copies_known, "the copies held before the restart in the statuses", platform)
    for name in loaded:
        assert predict(platform, name).json() == {"predictions": [1, 1]}
    assert set(replica_processes(home)) == pool
    since = platform.log()[restarted_at:]
    assert "holds small-" in since
    assert " loaded on " not in since, since

    # The copies kept still fill the pool: another model takes the place of one of them.
    assert predict(platform, standby[0]).json() == {"predictions": [1, 1]}
    wait_until(lambda: " unloaded from " in platform.log()[restarted_at:], "a copy unloaded", platform)
    assert active(platform, standby[0]) == "Loaded"


def test_a_pool_no_service_uses_stops_after_the_grace_period(platform, home):
    """ModelMesh Serving's scaleToZero: a runtime's pool keeps its replicas for gracePeriodSeconds (20s
    here) once its last service has gone; a service that comes meanwhile is served by them."""
    runtime = runtime_yaml()
    runtime["metadata"]["name"] = "mm-idle"
    runtime["spec"]["replicas"] = 1
    runtime["spec"]["supportedModelFormats"][0]["autoSelect"] = False  # the other services keep theirs

    def on_idle_runtime(name: str) -> dict:
        service = mesh_isvc(name, "pvc://mm/small")
        service["spec"]["predictor"]["model"]["runtime"] = "mm-idle"
        return service

    def pool() -> list[int]:
        return [
            pid
            for pid in replica_processes(home)
            if "modelmesh-serving-mm-idle" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        ]

    platform.apply(runtime, on_idle_runtime("idle-a"))
    platform.cli("wait", "--for=condition=Ready", "isvc/idle-a", "--timeout=300s")
    assert predict(platform, "idle-a").json() == {"predictions": [1, 1]}
    replicas = pool()
    assert len(replicas) == 1, replicas

    platform.cli("delete", "isvc/idle-a")
    idle = "default/modelmesh-serving-mm-idle: no ModelMesh service uses it; it stops in 20s unless one does"
    wait_until(lambda: idle in platform.log(), "the pool idle", platform)
    platform.apply(on_idle_runtime("idle-b"))
    platform.cli("wait", "--for=condition=Ready", "isvc/idle-b", "--timeout=300s")
    assert predict(platform, "idle-b").json() == {"predictions": [1, 1]}
    assert pool() == replicas  # the pool did not stop: its replica serves the new service

    platform.cli("delete", "isvc/idle-b")
    wait_until(lambda: not pool(), "the idle pool's replica to stop", platform)
    assert "modelmesh-serving-mm-idle: no ModelMesh service used it for 20s; stopping" in platform.log()
