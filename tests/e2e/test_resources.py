"""Resources on `modelplane up`: threads from cpu, an enforced memory limit, GPUs of a replica's own
or a reason to wait for them, and a warning for the fields one machine cannot honor."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.platform_process import PlatformProcess, kill_leftovers, running_platform, wait_until

PROBE = Path(__file__).with_name("resource_probe.py")
PREDICT = "/v1/models/probe:predict"


def probe_service(name: str, resources: dict, **predictor) -> dict:
    """An InferenceService whose replicas run the resource probe under `modelplane serve`."""
    container = {
        "name": "kserve-container",
        "image": "modelplane:latest",
        "command": ["modelplane", "serve"],
        "args": [
            "--runtime=custom",
            "--model-class=/mnt/models/resource_probe.py:ResourceProbe",
            "--model-name=probe",
            "--http-port=8080",
        ],
        "env": [{"name": "STORAGE_URI", "value": "pvc://probe"}],
        "resources": resources,
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {**predictor, "containers": [container]}},
    }


def apply(platform: PlatformProcess, tmp_path: Path, resource: dict) -> str:
    """`modelplane apply -f` of the resource as a file; its warnings."""
    path = tmp_path / f"{resource['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(resource, sort_keys=False))
    return platform.cli("apply", "-f", str(path)).stderr


def isvc(platform: PlatformProcess, name: str) -> dict | None:
    url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{name}"
    response = httpx.get(url, timeout=30)
    return response.json() if response.status_code == 200 else None


def condition(resource: dict | None, kind: str) -> dict:
    conditions = ((resource or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def ready(platform: PlatformProcess, name: str) -> dict:
    return wait_until(
        lambda: (
            (found := isvc(platform, name)) and condition(found, "Ready").get("status") == "True" and found
        ),
        f"{name} to be ready",
        platform,
    )


def ask(platform: PlatformProcess, name: str, mebibytes: int = 0) -> dict:
    response = platform.request(
        "POST", f"{name}.default.localhost", PREDICT, json={"instances": [[mebibytes]]}
    )
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def platform_home(tmp_path_factory, name: str) -> Path:
    home = tmp_path_factory.mktemp(name)
    (home / "pvc" / "probe").mkdir(parents=True)
    shutil.copy(PROBE, home / "pvc" / "probe" / PROBE.name)
    return home


@pytest.fixture(scope="module")
def no_gpu_platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    home = platform_home(tmp_path_factory, "mp-resources")
    with running_platform(home, "--gpus", "none") as platform:
        yield platform


def test_a_replica_predicts_with_the_threads_its_cpu_gives_and_node_selection_is_a_warning(
    no_gpu_platform, tmp_path
):
    platform = no_gpu_platform
    service = probe_service(
        "threads",
        {"limits": {"cpu": "1500m", "memory": "4Gi"}},
        nodeSelector={"accelerator": "h100"},
        tolerations=[{"key": "gpu", "operator": "Exists"}],
    )
    warnings = apply(platform, tmp_path, service)
    path = tmp_path / "threads.yaml"
    assert (
        f"Warning: {path}:7: spec.predictor.nodeSelector: accepted but not acted on: every replica runs on this machine"
        in warnings
    )
    assert f"Warning: {path}:9: spec.predictor.tolerations: accepted but not acted on" in warnings

    status = ready(platform, "threads")
    fields = condition(status, "FieldsHonored")
    assert (fields["status"], fields["severity"], fields["reason"]) == (
        "False",
        "Warning",
        "NotHonoredOnOneMachine",
    )
    assert "spec.predictor.nodeSelector (every replica runs on this machine)" in fields["message"]
    assert "spec.predictor.tolerations" in fields["message"]

    report = ask(platform, "threads")
    # 1500m is 2 threads: the pools inference runs with (on a worker thread), not only the variables.
    assert report["openmp"] == [2] and report["blas"] == [2] and report["torch"] == 2, report
    assert report["env"] == {
        "OMP_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
        "TF_NUM_INTRAOP_THREADS": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    assert (
        "--nthread=2"
        in (platform.home / "logs/default/threads/predictor/threads-predictor-00001-0.log").read_text()
    )


def test_a_replica_over_its_memory_limit_is_oom_killed_restarted_and_says_so(no_gpu_platform, tmp_path):
    platform = no_gpu_platform
    apply(platform, tmp_path, probe_service("hog", {"limits": {"memory": "1Gi"}}))
    ready(platform, "hog")
    assert ask(platform, "hog", 16) == {"held_mib": 16}  # under the limit: kept
    with contextlib.suppress(httpx.HTTPError):  # its answer, if one comes, does not matter
        platform.request("POST", "hog.default.localhost", PREDICT, json={"instances": [[1536]]}, timeout=60)

    def back_after_oom_kill() -> dict | None:
        found = isvc(platform, "hog")
        revision = next(iter(found["status"].get("revisions") or []), {})
        terminated = (revision.get("lastState") or {}).get("terminated") or {}
        back = condition(found, "Ready").get("status") == "True"
        return terminated.get("reason") == "OOMKilled" and back and revision

    revision = wait_until(back_after_oom_kill, "OOMKilled in the status, and the replica back", platform)
    assert revision["restartCount"] >= 1
    assert revision["lastState"]["terminated"]["exitCode"] == 137
    assert "over its memory limit of 1024Mi" in revision["lastState"]["terminated"]["message"]
    assert ask(platform, "hog", 16) == {"held_mib": 16}  # a fresh replica: nothing held from before


def test_a_replica_asking_for_a_gpu_on_a_machine_without_one_stays_pending_and_says_why(
    no_gpu_platform, tmp_path
):
    platform = no_gpu_platform
    apply(platform, tmp_path, probe_service("wants-gpu", {"limits": {"nvidia.com/gpu": 1}}))

    def unschedulable() -> dict | None:
        found = condition(isvc(platform, "wants-gpu"), "PredictorReady")
        return found.get("reason") == "Unschedulable" and found

    predictor = wait_until(unschedulable, "PredictorReady Unschedulable", platform)
    assert predictor["status"] == "False"
    assert predictor["message"] == (
        'Revision "wants-gpu-predictor-00001" cannot start: '
        "needs 1 GPU (nvidia.com/gpu: 1), and this machine has no GPU."
    )
    (revision,) = isvc(platform, "wants-gpu")["status"]["revisions"]
    assert revision["state"]["waiting"]["reason"] == "Unschedulable"
    log = platform.home / "logs/default/wants-gpu/predictor/wants-gpu-predictor-00001-0.log"
    assert "waiting: needs 1 GPU" in log.read_text() and "starting:" not in log.read_text()
    platform.cli("delete", "isvc", "wants-gpu")


def test_each_replica_gets_gpus_of_its_own_and_a_replica_waits_until_some_are_free(
    tmp_path_factory, tmp_path
):
    home = platform_home(tmp_path_factory, "mp-gpus")
    with running_platform(home, "--gpus", "0,1") as platform:
        apply(platform, tmp_path, probe_service("pair", {"limits": {"nvidia.com/gpu": 1}}, minReplicas=2))
        ready(platform, "pair")
        seen: dict[int, str] = {}

        def both_replicas_answered() -> bool:
            report = ask(platform, "pair")
            seen[report["pid"]] = report["env"]["CUDA_VISIBLE_DEVICES"]
            return len(seen) == 2

        wait_until(both_replicas_answered, "an answer from each replica of pair", platform)
        assert sorted(seen.values()) == ["0", "1"]

        apply(platform, tmp_path, probe_service("late", {"limits": {"nvidia.com/gpu": 1}}))

        def waiting() -> dict | None:
            found = condition(isvc(platform, "late"), "PredictorReady")
            return found.get("reason") == "Unschedulable" and found

        assert waiting_message(wait_until(waiting, "late to wait for a GPU", platform)) == (
            "needs 1 GPU (nvidia.com/gpu: 1), 0 of 2 free"
        )
        platform.cli("delete", "isvc", "pair")
        ready(platform, "late")
        assert ask(platform, "late")["env"]["CUDA_VISIBLE_DEVICES"] in ("0", "1")
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def waiting_message(condition_: dict) -> str:
    return condition_["message"].split("cannot start: ", 1)[1].removesuffix(".")
