"""A revision or a replica that leaves the routes on `modelplane up` (a rollout, a delete, a scale down)
answers the requests it holds before it stops, as Knative's queue-proxy drains a pod: none is cut, sent
again to another replica, or refused. Scaling down takes idle replicas first. A graph's router replaced
or deleted is drained the same way: it gets SIGTERM once the requests it holds are answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

HELD = Path(__file__).with_name("held_answer.py")
IN_FLIGHT = 4


def service(name: str, folder: Path, version: str, **predictor: object) -> dict:
    env = {"MARKS": str(folder / "marks"), "RELEASE": str(folder / "release"), "VERSION": version}
    container = {
        "name": "kserve-container",
        "image": "held-answer:latest",
        "command": ["python", str(HELD)],
        "env": [{"name": key, "value": value} for key, value in env.items()],
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": predictor.pop("annotations", {})},
        "spec": {"predictor": {**predictor, "containers": [container]}},
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    with running_platform(tmp_path_factory.mktemp("mp-home")) as platform:
        yield platform


def marks(folder: Path) -> list[str]:
    path = folder / "marks"
    return path.read_text().splitlines() if path.exists() else []


def held_requests(
    platform: PlatformProcess, name: str, folder: Path, pool: ThreadPoolExecutor, count: int = IN_FLIGHT
) -> list[Future]:
    """`count` requests, once each has reached a replica (which holds it)."""

    def send() -> tuple[int, str]:
        response = platform.request("POST", f"{name}.default.localhost", "/", json={}, timeout=120)
        return response.status_code, response.text

    futures = [pool.submit(send) for _ in range(count)]
    wait_until(lambda: len(marks(folder)) == count, "the requests in flight", platform)
    return futures


def stopped_under_its_requests(folder: Path) -> bool:
    """Whether a replica gets SIGTERM while it holds requests. Without draining the platform stops it a
    moment after it leaves the routes: a few seconds are plenty to see it."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if any(line.startswith("stopped") for line in marks(folder)):
            return True
        time.sleep(0.1)
    return False


def answer(revision: str, port: str) -> tuple[int, str]:
    return 200, f'{{"revision": "{revision}", "port": "{port}"}}'


def test_a_rollout_lets_the_old_revision_answer_its_requests_in_flight(platform, tmp_path):
    platform.apply(service("rolled", tmp_path, "1"))
    platform.cli("wait", "--for=condition=Ready", "isvc/rolled", "--timeout=120s")
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = held_requests(platform, "rolled", tmp_path, pool)
        port = marks(tmp_path)[0].split()[1]
        platform.apply(service("rolled", tmp_path, "2"))
        wait_until(
            lambda: "default/rolled: stopping rolled-predictor-00001" in platform.log(),
            "the old revision to leave the routes",
            platform,
        )
        stopped = stopped_under_its_requests(tmp_path)
        (tmp_path / "release").touch()
        assert not stopped
        assert [f.result() for f in futures] == [answer("rolled-predictor-00001", port)] * IN_FLIGHT


def test_a_deleted_service_answers_its_requests_in_flight(platform, tmp_path):
    platform.apply(service("deleted", tmp_path, "1"))
    platform.cli("wait", "--for=condition=Ready", "isvc/deleted", "--timeout=120s")
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = held_requests(platform, "deleted", tmp_path, pool)
        port = marks(tmp_path)[0].split()[1]
        platform.cli("delete", "isvc", "deleted")
        wait_until(
            lambda: "default/deleted deleted: stopping its revisions" in platform.log(),
            "the service's revisions to leave the routes",
            platform,
        )
        stopped = stopped_under_its_requests(tmp_path)
        (tmp_path / "release").touch()
        assert not stopped
        assert [f.result() for f in futures] == [answer("deleted-predictor-00001", port)] * IN_FLIGHT


def scaled_service(name: str, folder: Path, concurrency: int) -> dict:
    """One to two replicas, `concurrency` requests each and as many per replica as the target, a
    window short enough to scale down within seconds."""
    return service(
        name,
        folder,
        "1",
        minReplicas=1,
        maxReplicas=2,
        containerConcurrency=concurrency,
        annotations={
            "autoscaling.knative.dev/window": "6s",
            "autoscaling.knative.dev/target-utilization-percentage": "100",
        },
    )


def test_scaling_down_stops_an_idle_replica_and_spares_the_busy_one(platform, tmp_path):
    """One request per replica and a target of one: two requests make two replicas; once the first is
    answered the revision scales down to one. The newest replica holds the second request, so it stays
    (not the newest first, as without requests in flight) and the idle one stops at once."""
    platform.apply(scaled_service("spared", tmp_path, 1))
    platform.cli("wait", "--for=condition=Ready", "isvc/spared", "--timeout=120s")
    with ThreadPoolExecutor(2) as pool:
        requests = held_requests(platform, "spared", tmp_path, pool, count=2)
        first_port, second_port = (line.split()[1] for line in marks(tmp_path))
        (tmp_path / f"release.{first_port}").touch()
        (first,), (second,) = wait(requests, return_when=FIRST_COMPLETED)
        assert first.result() == answer("spared-predictor-00001", first_port)
        wait_until(
            lambda: "spared-predictor-00001: 2 -> 1 replicas" in platform.log(),
            "the revision to scale down",
            platform,
        )
        stops = wait_until(
            lambda: [line for line in marks(tmp_path) if line.startswith("stopped")],
            "a replica to stop",
            platform,
            timeout=60,
        )
        (tmp_path / f"release.{second_port}").touch()
        assert stops == [f"stopped {first_port}"]
        assert second.result() == answer("spared-predictor-00001", second_port)
    assert f"stopped {second_port}" not in marks(tmp_path)


def test_a_replica_scaled_down_answers_its_requests_in_flight(platform, tmp_path):
    """Three requests per replica, as many as the target: four requests make two replicas, the newest
    holding the fourth. Two answered, the two left (one on each replica) need one replica: both are
    busy, so the newest is taken away, and answers its request before it stops."""
    platform.apply(scaled_service("scaled", tmp_path, 3))
    platform.cli("wait", "--for=condition=Ready", "isvc/scaled", "--timeout=120s")

    def send(hold: str) -> tuple[int, str]:
        response = platform.request("POST", "scaled.default.localhost", "/", json={"hold": hold}, timeout=120)
        return response.status_code, response.text

    with ThreadPoolExecutor(4) as pool:
        held = {hold: pool.submit(send, hold) for hold in "abc"}
        wait_until(lambda: len(marks(tmp_path)) == 3, "three requests on the first replica", platform)
        held["d"] = pool.submit(send, "d")
        wait_until(lambda: len(marks(tmp_path)) == 4, "the fourth on a second replica", platform)
        first_port, newest_port = marks(tmp_path)[0].split()[1], marks(tmp_path)[3].split()[1]
        assert newest_port != first_port
        for hold in "ab":
            (tmp_path / f"release.{hold}").touch()
            assert held[hold].result() == answer("scaled-predictor-00001", first_port)
        wait_until(
            lambda: "scaled-predictor-00001: 2 -> 1 replicas" in platform.log(),
            "the revision to scale down",
            platform,
        )
        stopped = stopped_under_its_requests(tmp_path)
        for hold in "cd":
            (tmp_path / f"release.{hold}").touch()
        assert not stopped
        assert held["c"].result() == answer("scaled-predictor-00001", first_port)
        assert held["d"].result() == answer("scaled-predictor-00001", newest_port)
    wait_until(lambda: f"stopped {newest_port}" in marks(tmp_path), "the newest replica to stop", platform)
    assert len([line for line in marks(tmp_path) if not line.startswith("stopped")]) == 4  # none sent again


def held_graph(name: str, service_name: str, **spec: object) -> dict:
    """A graph whose one step is a held service: a request through it is held in its router."""
    root = {"routerType": "Sequence", "steps": [{"serviceName": service_name}]}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name},
        "spec": {"nodes": {"root": root}, **spec},
    }


def told_to_stop(platform: PlatformProcess, graph: str, revision: str) -> bool:
    """Whether the router revision's replica got SIGTERM (it says so in its log)."""
    log = platform.home / "logs" / "default" / graph / "router" / f"{revision}-0.log"
    return log.exists() and "modelplane router: draining" in log.read_text(errors="replace")


def router_stopped_under_its_request(platform: PlatformProcess, graph: str, revision: str) -> bool:
    """Whether a router that left the routes gets SIGTERM while it holds a request: without draining, a
    moment after it left them (as `stopped_under_its_requests` sees of a replica)."""
    wait_until(
        lambda: f"default/{graph}: stopping router {revision}" in platform.log(),
        "the router to leave the routes",
        platform,
    )
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if told_to_stop(platform, graph, revision):
            return True
        time.sleep(0.1)
    return False


def request_through_a_router(
    platform: PlatformProcess, name: str, folder: Path, pool: ThreadPoolExecutor
) -> tuple[Future, str]:
    """A graph `<name>-graph` in front of a held service `name`, and a request held in its router (and
    the service behind it); the port of the service's replica that holds it."""
    platform.apply(service(name, folder, "1"), held_graph(f"{name}-graph", name))
    platform.cli("wait", "--for=condition=Ready", f"ig/{name}-graph", "--timeout=180s")
    request = pool.submit(
        platform.request, "POST", f"{name}-graph.default.localhost", "/", json={}, timeout=120
    )
    wait_until(lambda: len(marks(folder)) == 1, "the request to reach the step behind the router", platform)
    return request, marks(folder)[0].split()[1]


def test_a_graph_router_replaced_by_an_update_answers_its_request_in_flight(platform, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        request, port = request_through_a_router(platform, "updated", tmp_path, pool)
        platform.apply(held_graph("updated-graph", "updated", timeout=100))  # a new router revision
        stopped = router_stopped_under_its_request(platform, "updated-graph", "updated-graph-router-00001")
        (tmp_path / "release").touch()
        response = request.result()
    assert not stopped
    assert (response.status_code, response.text) == answer("updated-predictor-00001", port)
    assert len(marks(tmp_path)) == 1  # answered by the router it went to, not sent again
    wait_until(
        lambda: told_to_stop(platform, "updated-graph", "updated-graph-router-00001"),
        "the router before the update to be stopped once its request was answered",
        platform,
    )


def test_a_deleted_graph_router_answers_its_request_in_flight(platform, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        request, port = request_through_a_router(platform, "unrouted", tmp_path, pool)
        platform.cli("delete", "ig", "unrouted-graph")
        stopped = router_stopped_under_its_request(platform, "unrouted-graph", "unrouted-graph-router-00001")
        (tmp_path / "release").touch()
        response = request.result()
    assert not stopped
    assert (response.status_code, response.text) == answer("unrouted-predictor-00001", port)
    assert len(marks(tmp_path)) == 1  # answered by the router it went to, not sent again
    wait_until(
        lambda: told_to_stop(platform, "unrouted-graph", "unrouted-graph-router-00001"),
        "the deleted graph's router to be stopped once its request was answered",
        platform,
    )
