"""A revision that leaves the routes on `modelplane up` (a rollout, a delete) answers the requests it
holds before its replicas stop, as Knative's queue-proxy drains a revision's pod: none is cut, sent
again to the new revision, or refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

HELD = Path(__file__).with_name("held_answer.py")
IN_FLIGHT = 4


def service(name: str, folder: Path, version: str) -> dict:
    env = {"MARKS": str(folder / "marks"), "RELEASE": str(folder / "release"), "VERSION": version}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "held-answer:latest",
                        "command": ["python", str(HELD)],
                        "env": [{"name": key, "value": value} for key, value in env.items()],
                    }
                ]
            }
        },
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    with running_platform(tmp_path_factory.mktemp("mp-home")) as platform:
        yield platform


def held_requests(platform: PlatformProcess, name: str, folder: Path, pool: ThreadPoolExecutor) -> list:
    """`IN_FLIGHT` requests, once each has reached the replica (which holds it)."""
    marks = folder / "marks"
    marks.write_text("")

    def send() -> httpx.Response:
        return platform.request("POST", f"{name}.default.localhost", "/", json={}, timeout=120)

    futures = [pool.submit(send) for _ in range(IN_FLIGHT)]
    wait_until(lambda: len(marks.read_text().splitlines()) == IN_FLIGHT, "the requests in flight", platform)
    return futures


def stopped_under_its_requests(folder: Path) -> bool:
    """Whether the replica gets SIGTERM while it holds the requests. Without draining the platform stops
    a revision a moment after it leaves the routes: a few seconds are plenty to see it."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if "stopped" in (folder / "marks").read_text().splitlines():
            return True
        time.sleep(0.1)
    return False


def answers(futures: list) -> list[tuple[int, str]]:
    return [(response.status_code, response.text) for response in (f.result() for f in futures)]


def test_a_rollout_lets_the_old_revision_answer_its_requests_in_flight(platform, tmp_path):
    platform.apply(service("rolled", tmp_path, "1"))
    platform.cli("wait", "--for=condition=Ready", "isvc/rolled", "--timeout=120s")
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = held_requests(platform, "rolled", tmp_path, pool)
        platform.apply(service("rolled", tmp_path, "2"))
        wait_until(
            lambda: "default/rolled: stopping rolled-predictor-00001" in platform.log(),
            "the old revision to leave the routes",
            platform,
        )
        stopped = stopped_under_its_requests(tmp_path)
        (tmp_path / "release").touch()
        assert not stopped
        old = '{"revision": "rolled-predictor-00001"}'
        assert answers(futures) == [(200, old)] * IN_FLIGHT


def test_a_deleted_service_answers_its_requests_in_flight(platform, tmp_path):
    platform.apply(service("deleted", tmp_path, "1"))
    platform.cli("wait", "--for=condition=Ready", "isvc/deleted", "--timeout=120s")
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = held_requests(platform, "deleted", tmp_path, pool)
        platform.cli("delete", "isvc", "deleted")
        wait_until(
            lambda: "default/deleted deleted: stopping its revisions" in platform.log(),
            "the service's revisions to leave the routes",
            platform,
        )
        stopped = stopped_under_its_requests(tmp_path)
        (tmp_path / "release").touch()
        assert not stopped
        assert answers(futures) == [(200, '{"revision": "deleted-predictor-00001"}')] * IN_FLIGHT
