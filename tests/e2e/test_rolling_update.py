"""A Standard-mode rolling update on `modelplane up`: the new revision replaces the old one a replica at
a time, within maxSurge and maxUnavailable, and every request is answered meanwhile; a rollout stuck on
a revision that never gets ready is carried over a restart of the control plane in place, where it was."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

ECHO = Path(__file__).with_name("env_echo.py")
NAME = "rolling"


def service(version: str, rolling_update: dict, *, ready: bool = True) -> dict:
    container = {
        "name": "kserve-container",
        "image": "env-echo:latest",
        "command": ["python", str(ECHO)],
        "env": [{"name": "VERSION", "value": version}],
    }
    if not ready:
        container["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
        "spec": {
            "predictor": {
                "minReplicas": 2,
                "maxReplicas": 2,
                "deploymentStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling_update},
                "containers": [container],
            }
        },
    }


def status(platform: PlatformProcess) -> dict:
    url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{NAME}"
    return httpx.get(url, timeout=30).json().get("status") or {}


def version(platform: PlatformProcess) -> str:
    """The version that answered; else the status and what the gateway said, for the failure message."""
    response = platform.request("GET", f"{NAME}.default.localhost", "/", timeout=30)
    if response.status_code != 200:
        return f"{response.status_code}: {response.text[:300]}"
    return response.json()["env"]["VERSION"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    home = tmp_path_factory.mktemp("mp-rolling")
    with running_platform(home) as running:
        yield running


def test_a_rolling_update_replaces_a_replica_at_a_time_and_answers_throughout(platform):
    one_at_a_time = {"maxSurge": 0, "maxUnavailable": 1}
    platform.apply(service("1", one_at_a_time))

    def both_ready() -> bool:
        revisions = status(platform).get("revisions") or []
        return [r.get("actualReplicas") for r in revisions] == [2] and version(platform) == "1"

    wait_until(both_ready, "version 1 on 2 replicas", platform)
    answers: list[str] = []
    most_replicas = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            answers.append(version(platform))
            most_replicas.append(
                sum(r.get("desiredReplicas") or 0 for r in status(platform).get("revisions") or [])
            )

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        platform.apply(service("2", one_at_a_time))
        wait_until(
            lambda: answers[-3:] == ["2"] * 3 and len(status(platform).get("revisions") or []) == 1,
            "version 2 alone",
            platform,
        )
    finally:
        done.set()
        watcher.join()
    assert set(answers) == {"1", "2"}, [a for a in answers if a not in ("1", "2")]  # every request answered
    assert max(most_replicas) <= 2  # maxSurge 0: never a replica more than the two
    assert answers[0] == "1" and answers[-1] == "2"
    log = platform.log()
    assert f"predictor rolls out {NAME}-predictor-00002 over {NAME}-predictor-00001 (2 replicas" in log
    assert f"predictor rolled out {NAME}-predictor-00002" in log


def test_what_a_deployment_would_refuse_is_refused(platform):
    refused = platform.apply(service("3", {"maxSurge": 0, "maxUnavailable": 0}), check=False)
    assert refused.returncode != 0
    assert (
        "spec.predictor.deploymentStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
        in refused.stderr
    )
    refused = platform.apply(service("3", {"maxSurge": "two"}), check=False)
    assert "a valid percent string must be a numeric string followed by an ending '%'" in refused.stderr


def desired(platform: PlatformProcess) -> list[int]:
    """The replicas each revision that runs wants, oldest first."""
    revisions = sorted(status(platform).get("revisions") or [], key=lambda r: r["name"])
    return [r.get("desiredReplicas") or 0 for r in revisions]


def test_a_stuck_rollout_is_carried_over_a_restart_in_place(platform):
    one_at_a_time = {"maxSurge": 0, "maxUnavailable": 1}
    platform.apply(service("1", one_at_a_time))
    wait_until(lambda: version(platform) == "1" and desired(platform) == [2], "version 1", platform)
    platform.apply(service("never-ready", one_at_a_time, ready=False))
    stuck = [1, 1]
    wait_until(lambda: desired(platform) == stuck, "the rollout stuck at its first step", platform)
    answers: list[str] = []
    counts: list[list[int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            answers.append(version(platform))
            try:
                counts.append(desired(platform))
            except httpx.TransportError:  # the control-plane API, while its next process takes over
                continue

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        platform.process.send_signal(signal.SIGHUP)
        assert platform.process.stdout.readline().startswith("modelplane is up: ")
        time.sleep(8)  # several of the new control plane's passes
    finally:
        done.set()
        watcher.join()
    assert set(answers) == {"1"}, {a: answers.count(a) for a in set(answers)}
    # Neither revision went back to its autoscaler's count of 2: the rollout kept its step.
    assert all(sum(c) <= 2 for c in counts), [c for c in counts if sum(c) > 2][:3]
    assert desired(platform) == stuck
    # A good revision then finishes the rollout the restart carried over.
    platform.apply(service("3", one_at_a_time))
    wait_until(lambda: version(platform) == "3" and len(desired(platform)) == 1, "version 3 alone", platform)
