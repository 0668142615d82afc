"""End to end: replicas that follow the load, scale to zero and back, and rollouts under load with no
failed request, on `modelplane up` with short autoscaling periods."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform, wait_until

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
WINDOW = {"autoscaling.knative.dev/window": "6s"}  # the shortest stable window Knative allows

SLOW_MODEL = REPO_ROOT / "examples" / "slow-predictor" / "model.py"
ECHO = Path(__file__).with_name("env_echo.py")


def isvc(name: str, predictor: dict, annotations: dict | None = None) -> dict:
    metadata = {"name": name, "namespace": "default", "annotations": {**WINDOW, **(annotations or {})}}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def sklearn(**fields) -> dict:
    return {"sklearn": {"storageUri": "pvc://examples/sklearn-iris"}, **fields}


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-home")
    example_models(home / "pvc" / "examples")
    (home / "pvc" / "slow").mkdir()
    (home / "pvc" / "slow" / "model.py").write_text(SLOW_MODEL.read_text())
    options = (
        "--scale-to-zero-grace-period",
        "1s",
        "--autoscaler-tick",
        "0.5s",
        "--activator-timeout",
        "12s",
        "--hpa-sync-period",
        "1s",
    )
    with running_platform(home, *options) as platform:
        yield platform


def status(platform: PlatformProcess, name: str) -> dict:
    return json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout).get("status") or {}


def replicas(platform: PlatformProcess, name: str) -> dict[str, tuple[int, int]]:
    """(actual, desired) replicas per running revision, from the status."""
    return {
        r["name"]: (r["actualReplicas"], r.get("desiredReplicas"))
        for r in status(platform, name).get("revisions", [])
    }


def predict(platform: PlatformProcess, name: str, client: httpx.Client | None = None) -> httpx.Response:
    send = client or httpx
    return send.post(
        f"{platform.gateway_url}/v1/models/{name}:predict",
        headers={"host": f"{name}.default.localhost"},
        json=IRIS,
        timeout=120,
    )


class Load:
    """Clients that send requests back to back until stopped, counting every answer."""

    def __init__(self, platform: PlatformProcess, name: str, clients: int) -> None:
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.replies: Counter = Counter()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(platform, name), daemon=True) for _ in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def _run(self, platform: PlatformProcess, name: str) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                try:
                    response = predict(platform, name, client)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.answers[response.status_code] += 1
                if response.status_code == 200:
                    self.replies[json.dumps(response.json()["predictions"])] += 1
                else:
                    self.failures.append(f"{response.status_code}: {response.text}")


def test_an_idle_revision_scales_to_zero_and_a_burst_wakes_it(platform):
    platform.apply(isvc("iris-zero", sklearn(minReplicas=0)))
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-zero", "--timeout=300s")
    revision = "iris-zero-predictor-00001"
    wait_until(lambda: replicas(platform, "iris-zero") == {revision: (0, 0)}, "scale to zero", platform)
    ready = {c["type"]: c["status"] for c in status(platform, "iris-zero")["conditions"]}
    assert ready["Ready"] == "True", "a revision at zero is still ready"

    results: list[httpx.Response] = []
    burst = [
        threading.Thread(target=lambda: results.append(predict(platform, "iris-zero"))) for _ in range(20)
    ]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join(180)
    assert [r.status_code for r in results] == [200] * 20, [r.text for r in results if r.status_code != 200]
    assert {json.dumps(r.json()) for r in results} == {'{"predictions": [1, 1]}'}
    actual, desired = replicas(platform, "iris-zero")[revision]
    assert actual >= 1 and desired >= 1
    assert "scale from zero: a request waits in the gateway" in platform.log()

    wide = platform.cli("get", "isvc", "iris-zero", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["REVISIONS", "REPLICAS", "DESIRED"], wide
    assert wide[1].split()[-3] == revision


def test_a_revision_that_cannot_wake_answers_503_with_the_reason(platform):
    """Woken from zero, its replica fails to load: the requests waiting for it, and those after, are
    answered at once with why, not after the activator's timeout."""
    model_dir = platform.home / "pvc" / "vanishing"
    shutil.copytree(platform.home / "pvc" / "examples" / "sklearn-iris", model_dir)
    predictor = {"minReplicas": 0, "sklearn": {"storageUri": "pvc://vanishing"}}
    platform.apply(isvc("vanishing", predictor))
    platform.cli("wait", "--for=condition=Ready", "isvc/vanishing", "--timeout=300s")
    wait_until(
        lambda: replicas(platform, "vanishing") == {"vanishing-predictor-00001": (0, 0)}, "zero", platform
    )
    shutil.rmtree(model_dir)  # the next replica cannot load its model

    for _ in range(2):
        response = predict(platform, "vanishing")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error.startswith("the predictor of InferenceService default/vanishing does not serve: "), error
        assert "vanishing" in error.split("does not serve: ", 1)[1]
    platform.cli("delete", "isvc", "vanishing")


def test_replicas_follow_the_concurrency_up_and_back_down(platform):
    slow = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "scaleTarget": 1,
        "containers": [
            {
                "name": "kserve-container",
                "image": "slow:latest",
                "command": ["python", "/mnt/models/model.py"],
                "env": [{"name": "STORAGE_URI", "value": "pvc://slow"}],
            }
        ],
    }
    platform.apply(isvc("slow", slow))
    platform.cli("wait", "--for=condition=Ready", "isvc/slow", "--timeout=300s")
    revision = "slow-predictor-00001"
    with Load(platform, "slow", clients=3) as load:
        wait_until(lambda: len(load.replies) >= 2, "a second replica answering", platform)
        assert replicas(platform, "slow")[revision][1] in (2, 3)
    assert load.failures == []
    assert "panic: average concurrency" in platform.log() or "stable: average concurrency" in platform.log()
    wait_until(lambda: replicas(platform, "slow") == {revision: (1, 1)}, "back to minReplicas", platform)


def test_replicas_follow_their_cpu_up_and_back_down(platform):
    """Standard mode's HPA on cpu: replicas that use more than the target's share of their request
    are joined by more, and an idle revision comes back to its minimum."""
    predictor = sklearn(
        minReplicas=1,
        maxReplicas=2,
        scaleMetric="cpu",
        scaleTarget=20,
        autoScaling={"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
    )
    predictor["sklearn"]["resources"] = {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}
    platform.apply(isvc("busy", predictor, {"serving.kserve.io/deploymentMode": "Standard"}))
    platform.cli("wait", "--for=condition=Ready", "isvc/busy", "--timeout=300s")
    revision = "busy-predictor-00001"
    assert replicas(platform, "busy") == {revision: (1, 1)}
    with Load(platform, "busy", clients=2) as load:
        wait_until(lambda: replicas(platform, "busy")[revision] == (2, 2), "a second replica", platform)
    assert load.failures == []
    assert re.search(
        r"autoscaler busy-predictor-00001: 1 -> 2 replicas: cpu \d+% of the request", platform.log()
    )
    wait_until(lambda: replicas(platform, "busy") == {revision: (1, 1)}, "back to minReplicas", platform)
    described = platform.cli("describe", "isvc", "busy").stdout
    assert re.search(
        r"Normal\s+SuccessfulRescale\s+.*busy-predictor-00001: new size 2 \(was 1\); cpu", described
    )


def test_knatives_hpa_class_scales_on_memory(platform):
    """A replica holding more memory than the per-replica target (10 MiB: any Python process) is joined
    by another, up to maxReplicas, with no request sent."""
    predictor = sklearn(minReplicas=1, maxReplicas=2, scaleMetric="memory", scaleTarget=10)
    annotations = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
    platform.apply(isvc("holding", predictor, annotations))
    revision = "holding-predictor-00001"
    wait_until(lambda: replicas(platform, "holding").get(revision) == (2, 2), "two replicas", platform)
    assert re.search(
        r"autoscaler holding-predictor-00001: 1 -> 2 replicas: memory \d+Mi per replica", platform.log()
    )


def test_the_recreate_strategy_stops_the_old_revision_before_the_new_one_starts(platform):
    """A new revision of a Recreate component starts only once the old one has stopped; requests sent
    in between wait in the gateway and are answered."""
    annotations = {"serving.kserve.io/deploymentMode": "Standard"}
    predictor = sklearn(deploymentStrategy={"type": "Recreate"})
    platform.apply(isvc("recreated", predictor, annotations))
    platform.cli("wait", "--for=condition=Ready", "isvc/recreated", "--timeout=300s")
    predictor["sklearn"]["env"] = [{"name": "SECOND", "value": "1"}]
    with Load(platform, "recreated", clients=2) as load:
        wait_until(lambda: sum(load.answers.values()) > 5, "answers before the change", platform)
        platform.apply(isvc("recreated", predictor, annotations))
        wait_until(
            lambda: replicas(platform, "recreated") == {"recreated-predictor-00002": (1, 1)},
            "only the new revision, ready",
            platform,
        )
        served = sum(load.answers.values())
        wait_until(lambda: sum(load.answers.values()) > served + 5, "answers after the change", platform)
    assert load.failures == []
    log = platform.log()
    order = [
        "predictor recreated: recreated-predictor-00001 stops before recreated-predictor-00002 starts",
        "predictor stopped; starting recreated-predictor-00002",
        "replica 0 of recreated-predictor-00002 started",
    ]
    assert all(line in log for line in order), log[-4000:]
    assert sorted(order, key=log.index) == order


def test_rollouts_canaries_and_rollbacks_under_load_lose_no_request(platform):
    def changed(version: str, **fields) -> dict:
        env = [{"name": "MODEL_VERSION", "value": version}]
        return isvc(
            "iris-live", {"sklearn": {"storageUri": "pvc://examples/sklearn-iris", "env": env}, **fields}
        )

    def traffic() -> list[tuple[str, int]]:
        predictor = status(platform, "iris-live").get("components", {}).get("predictor", {})
        return [(t["revisionName"], t["percent"]) for t in predictor.get("traffic", [])]

    def only(revision: str) -> bool:
        return traffic() == [(revision, 100)] and set(replicas(platform, "iris-live")) == {revision}

    platform.apply(changed("1"))
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-live", "--timeout=300s")
    with Load(platform, "iris-live", clients=2) as load:
        platform.apply(changed("2"))  # a rollout
        wait_until(lambda: only("iris-live-predictor-00002"), "the rollout", platform)

        platform.apply(changed("3", canaryTrafficPercent=30))  # a canary
        wait_until(
            lambda: (
                sorted(traffic()) == [("iris-live-predictor-00002", 70), ("iris-live-predictor-00003", 30)]
            ),
            "the canary split",
            platform,
        )
        platform.apply(changed("3", canaryTrafficPercent=0))  # a rollback
        wait_until(
            lambda: (
                sorted(traffic()) == [("iris-live-predictor-00002", 100), ("iris-live-predictor-00003", 0)]
            ),
            "the rollback",
            platform,
        )
        platform.apply(changed("3"))  # the promotion
        wait_until(lambda: only("iris-live-predictor-00003"), "the promotion", platform)
        platform.apply(changed("3", canaryTrafficPercent=0))  # a rollback after the promotion: 00002 again
        wait_until(
            lambda: (
                sorted(traffic()) == [("iris-live-predictor-00002", 100), ("iris-live-predictor-00003", 0)]
                and replicas(platform, "iris-live").get("iris-live-predictor-00002", (0, 0))[0] > 0
            ),
            "the rollback to the previous rolled-out revision",
            platform,
        )
        rolled_out = status(platform, "iris-live")["components"]["predictor"]
        assert rolled_out["latestRolledoutRevision"] == "iris-live-predictor-00002"
        served = load.answers[200]
        wait_until(lambda: load.answers[200] > served + 5, "answers after the rollback", platform)
    assert load.failures == []
    assert load.answers[200] > 20


def iris_canary(name: str, version: str, storage: str = "pvc://examples/sklearn-iris") -> dict:
    """A version of the iris service with canaryTrafficPercent 20: a new ready revision takes 20%."""
    env = [{"name": "MODEL_VERSION", "value": version}]
    return isvc(name, {"sklearn": {"storageUri": storage, "env": env}, "canaryTrafficPercent": 20})


def predictor_status(platform: PlatformProcess, name: str) -> dict:
    return status(platform, name).get("components", {}).get("predictor", {})


def traffic_split(platform: PlatformProcess, name: str) -> list[tuple[str, int]]:
    targets = predictor_status(platform, name).get("traffic", [])
    return sorted((t["revisionName"], t["percent"]) for t in targets)


def canary_ready_over_a_failed_revision(platform: PlatformProcess, name: str) -> list[tuple[str, int]]:
    """v1, then v2 a canary at 20% and ready, then v3 (20% too) that fails to load; returns the split."""
    split = [(f"{name}-predictor-00001", 80), (f"{name}-predictor-00002", 20)]
    platform.apply(iris_canary(name, "1"))
    platform.cli("wait", "--for=condition=Ready", f"isvc/{name}", "--timeout=300s")
    platform.apply(iris_canary(name, "2"))
    wait_until(lambda: traffic_split(platform, name) == split, "the canary split", platform)
    platform.apply(iris_canary(name, "3", "pvc://examples/no-such-model"))
    wait_until(
        lambda: (
            predictor_status(platform, name).get("latestCreatedRevision") == f"{name}-predictor-00003"
            and f"{name}-predictor-00003" in replicas(platform, name)
        ),
        "the third revision",
        platform,
    )
    wait_until(
        lambda: f"{name}-predictor-00003" in platform.log() and "failed" in str(status(platform, name)),
        "its failure",
        platform,
    )
    return split


def test_a_ready_canary_keeps_its_share_while_a_newer_revision_loads_or_fails(platform):
    """Knative's latest target follows the latest ready revision: v2, a canary at 20%, keeps its share and
    keeps running while v3 (20% too) fails to load, and stays the latestReadyRevision."""
    split = canary_ready_over_a_failed_revision(platform, "iris-next")
    assert traffic_split(platform, "iris-next") == split
    assert predictor_status(platform, "iris-next").get("latestReadyRevision") == "iris-next-predictor-00002"
    assert {"iris-next-predictor-00001", "iris-next-predictor-00002"} <= set(replicas(platform, "iris-next"))
    assert predict(platform, "iris-next").status_code == 200


def test_a_restart_in_place_keeps_the_latest_ready_canary_and_its_share(platform):
    """After SIGHUP the control plane takes the latest ready revision back from the stored status: v2, a
    canary ready before v3 failed, keeps its 20% and its replica (it was stopped, the split lost)."""
    name = "iris-kept"
    split = canary_ready_over_a_failed_revision(platform, name)
    restarts = platform.log().count("restarting in place")
    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")

    def split_after_the_restart() -> str | None:
        log = platform.log()
        if log.count("restarting in place") == restarts:
            return None
        lines = log.rsplit("restarting in place", 1)[1].splitlines()
        return next((line for line in lines if f"{name}: predictor traffic:" in line), None)

    logged = wait_until(split_after_the_restart, "the split of the control plane run again", platform)
    assert f"{name}-predictor-00002 20%, {name}-predictor-00001 80%" in logged, logged
    assert traffic_split(platform, name) == split
    assert predictor_status(platform, name).get("latestReadyRevision") == f"{name}-predictor-00002"
    assert replicas(platform, name).get(f"{name}-predictor-00002") == (1, 1)
    tagged = f"latest-{name}-predictor.default.localhost"
    answer = platform.request("POST", tagged, f"/v1/models/{name}:predict", json=IRIS)
    assert answer.status_code == 200, answer.text


def test_a_revision_at_zero_stays_there_over_a_restart_in_place(platform):
    """It started again at its initial scale (one replica) and went back to zero only a stable window
    later; Knative's autoscaler keeps a revision at zero over a restart of its controller."""
    name, revision = "iris-asleep", "iris-asleep-predictor-00001"
    platform.apply(isvc(name, sklearn(minReplicas=0)))
    platform.cli("wait", "--for=condition=Ready", f"isvc/{name}", "--timeout=300s")
    wait_until(lambda: replicas(platform, name) == {revision: (0, 0)}, "scale to zero", platform)
    restarts = platform.log().count("restarting in place")
    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")

    def first_decision_after_the_restart() -> str | None:
        log = platform.log()
        if log.count("restarting in place") == restarts:
            return None
        after = log.rsplit("restarting in place", 1)[1]
        return next((line for line in after.splitlines() if f"autoscaler {revision}: none -> " in line), None)

    first = wait_until(first_decision_after_the_restart, "the revision's autoscaler started again", platform)
    assert f"autoscaler {revision}: none -> 0 replicas" in first, first
    assert replicas(platform, name) == {revision: (0, 0)}
    assert predict(platform, name).status_code == 200
    woken = f"autoscaler {revision}: 0 -> 1 replicas: scale from zero: a request waits in the gateway"
    assert woken in platform.log().rsplit("restarting in place", 1)[1]


def slow_echo(name: str, version: str, **fields) -> dict:
    """A custom predictor that takes 3 s to start serving, then answers with its environment."""
    start = f"sleep 3; exec {shlex.quote(sys.executable)} {shlex.quote(str(ECHO))}"
    container = {
        "name": "kserve-container",
        "image": "env-echo:latest",
        "command": ["sh", "-c", start],
        "env": [{"name": "VERSION", "value": version}],
    }
    return isvc(name, {"containers": [container], **fields})


def stored_status(platform: PlatformProcess, name: str) -> dict:
    """The status straight from the API: quicker than `modelplane get`, to catch a short state."""
    url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{name}"
    return httpx.get(url, timeout=30).json().get("status") or {}


def test_a_canary_woken_from_zero_stays_ready_and_latest_ready_while_it_starts(platform):
    """The split keeps a canary's share while its replica starts again, and the status says the same:
    Ready stays True and latestReadyRevision names the canary, as a Knative revision's Ready leaves out
    whether it is active (they were Unknown, RevisionMissing, and the older revision)."""
    name, canary = "waking", "waking-predictor-00002"
    platform.apply(slow_echo(name, "1", minReplicas=1))
    platform.cli("wait", "--for=condition=Ready", f"isvc/{name}", "--timeout=300s")
    platform.apply(slow_echo(name, "2", minReplicas=0, canaryTrafficPercent=50))
    wait_until(
        lambda: replicas(platform, name).get(canary) == (0, 0) and len(traffic_split(platform, name)) == 2,
        "the canary split, the canary at zero",
        platform,
    )
    seen = []
    with ThreadPoolExecutor(1) as pool:
        tagged = f"latest-{name}-predictor.default.localhost"
        answer = pool.submit(platform.request, "GET", tagged, "/", timeout=60)
        while not answer.done():
            seen.append(stored_status(platform, name))
            time.sleep(0.1)
    assert answer.result().status_code == 200 and answer.result().json()["env"]["VERSION"] == "2"
    waking = [
        s
        for s in seen
        if {"name": canary, "actualReplicas": 0, "desiredReplicas": 1}.items()
        <= next(r for r in s["revisions"] if r["name"] == canary).items()
    ]
    assert waking, "no status was seen while the canary woke"
    for woken in waking:
        ready = next(c for c in woken["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", ready
        assert woken["components"]["predictor"]["latestReadyRevision"] == canary


def test_a_graph_router_scales_to_zero_and_a_request_wakes_it_and_its_service(platform):
    platform.apply(isvc("graph-iris", sklearn(minReplicas=0)))
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "zero-graph", "namespace": "default", "annotations": WINDOW},
        "spec": {
            "minReplicas": 0,
            "nodes": {
                "root": {
                    "routerType": "Sequence",
                    "steps": [{"name": "iris", "serviceName": "graph-iris", "data": "$request"}],
                }
            },
        },
    }
    platform.apply(graph)
    platform.cli("wait", "--for=condition=Ready", "ig/zero-graph", "--timeout=300s")
    wait_until(
        lambda: replicas(platform, "graph-iris") == {"graph-iris-predictor-00001": (0, 0)}, "zero", platform
    )
    wait_until(
        lambda: re.search(r"autoscaler zero-graph-\S+: 1 -> 0 replicas", platform.log()),
        "router at zero",
        platform,
    )
    graph_status = json.loads(platform.cli("get", "ig", "zero-graph", "-o", "json").stdout)["status"]
    ready = {c["type"]: c["status"] for c in graph_status["conditions"]}
    assert ready["Ready"] == "True", "a graph whose router is at zero is still ready"

    response = platform.request("POST", "zero-graph.default.localhost", "/", json=IRIS)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [1, 1]}
    assert re.search(r"autoscaler zero-graph-\S+: 0 -> 1 replicas: scale from zero", platform.log())
    assert "autoscaler graph-iris-predictor-00001: 0 -> 1 replicas: scale from zero" in platform.log()
