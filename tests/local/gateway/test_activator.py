"""Requests wait in the gateway while a revision scales from zero or its replicas are at their limit."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread

APP = Path(__file__).with_name("upstream_app.py")
HOST = "iris.default.localhost"


@contextlib.contextmanager
def upstream(name: str):
    process = subprocess.Popen([sys.executable, str(APP), name], stdout=subprocess.PIPE, text=True)
    try:
        yield f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def replica():
    with upstream("iris-1-a") as address:
        yield address


class Demand:
    """Records the activator's "revision X needs a replica" calls."""

    def __init__(self) -> None:
        self.revisions: list[str] = []
        self.seen = threading.Event()

    def __call__(self, revision: str) -> None:
        self.revisions.append(revision)
        self.seen.set()


@contextlib.contextmanager
def running_gateway(backend: Backend, demand: Demand | None = None, **config):
    thread = GatewayThread(GatewayConfig(port=0, **config), on_demand=demand)
    gateway = thread.start()
    gateway.update_routes(table(backend))
    try:
        yield gateway
    finally:
        thread.stop()


def table(*backends: Backend) -> RouteTable:
    return RouteTable({HOST: Route(backends)}) if backends else RouteTable()


def eventually(condition, what: str, deadline: float = 20.0):
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def predict(gateway, path: str = "/v1/models/iris:predict") -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}", headers={"host": HOST}, content=b'{"instances": [[1, 2, 3, 4]]}', timeout=60
    )


def test_a_request_waits_while_the_revision_scales_from_zero(replica):
    demand = Demand()
    with running_gateway(Backend("iris-1"), demand) as gateway, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(predict, gateway)
        assert demand.seen.wait(20)
        assert demand.revisions == ["iris-1"]
        eventually(lambda: gateway.revision_stats()["iris-1"].queued == 1, "the request is queued")
        gateway.update_routes(table(Backend("iris-1", (replica,))))
        response = pending.result(timeout=60)
        assert response.status_code == 200
        assert response.json()["replica"] == "iris-1-a"
        # The gateway settles its counters just after the response's last byte leaves.
        eventually(lambda: gateway.revision_stats()["iris-1"].in_flight == 0, "the request is done")
        stats = gateway.revision_stats()["iris-1"]
        assert (stats.queued, stats.in_flight, stats.requests_total, stats.replicas) == (0, 0, 1, 1)


def test_no_replica_in_time_is_a_503_that_says_why():
    demand = Demand()
    with running_gateway(Backend("iris-1"), demand, queue_timeout=0.3) as gateway:
        response = predict(gateway)
        assert response.status_code == 503
        assert response.json() == {
            "error": "revision iris-1 could not take the request within 0.3s: no replica became ready"
        }
        assert demand.revisions == ["iris-1"]
        assert gateway.revision_stats()["iris-1"].queued == 0


def test_the_revision_timeout_counts_the_wait_for_a_replica():
    """A component's timeout is the request's, from its arrival (Knative's activator and queue-proxy
    count the wait for a replica and a slot in it): past it, 504, however long the queue would wait."""
    with running_gateway(Backend("iris-1", timeout_seconds=0.3), queue_timeout=60) as gateway:
        response = predict(gateway)
        assert response.status_code == 504
        assert response.json() == {
            "error": "revision iris-1 did not start responding within 0.3s: no replica became ready"
        }
        assert gateway.revision_stats()["iris-1"].queued == 0


def test_a_full_queue_refuses_at_once():
    with running_gateway(Backend("iris-1"), max_queued=1) as gateway, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(predict, gateway)
        eventually(lambda: gateway.revision_stats()["iris-1"].queued == 1, "the first request is queued")
        refused = predict(gateway)
        assert refused.status_code == 503
        assert refused.json()["error"] == "revision iris-1 is overloaded: 1 requests already wait"
        gateway.update_routes(table())
        assert waiting.result(timeout=60).json() == {"error": "revision iris-1 no longer serves any host"}


def test_a_waiting_request_goes_where_its_host_routes_when_its_revision_leaves(replica):
    """The last step of a rollout: the old revision, with no replica left, leaves the routes while a
    request waits for it; the new revision answers it rather than a 503."""
    with running_gateway(Backend("iris-1")) as gateway, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(predict, gateway)
        eventually(lambda: gateway.revision_stats()["iris-1"].queued == 1, "the request is queued")
        gateway.update_routes(table(Backend("iris-2", (replica,))))
        response = waiting.result(timeout=60)
        assert response.status_code == 200 and response.json()["replica"] == "iris-1-a"
        assert gateway.revision_stats()["iris-2"].requests_total == 1


def test_requests_beyond_container_concurrency_wait_in_the_gateway(replica):
    backend = Backend("iris-1", (replica,), container_concurrency=1)
    with running_gateway(backend) as gateway, ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(predict, gateway, "/slow?seconds=0.5") for _ in range(3)]
        eventually(lambda: gateway.revision_stats()["iris-1"].queued >= 1, "a request waits in the gateway")
        responses = [future.result() for future in pending]
        eventually(lambda: gateway.revision_stats()["iris-1"].in_flight == 0, "the requests are done")
        stats = gateway.revision_stats()["iris-1"]
    assert [response.status_code for response in responses] == [200] * 3
    # The replica never had more than one of these requests at a time.
    assert [response.json()["in_flight"] for response in responses] == [1] * 3
    assert (stats.in_flight, stats.queued, stats.requests_total) == (0, 0, 3)
    assert stats.concurrency_seconds > 0


def test_in_flight_counts_what_the_replicas_are_working_on(replica):
    with running_gateway(Backend("iris-1", (replica,))) as gateway, ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(predict, gateway, "/slow?seconds=2") for _ in range(3)]
        eventually(lambda: gateway.revision_stats()["iris-1"].in_flight == 3, "three requests in flight")
        assert all(future.result().status_code == 200 for future in pending)
        eventually(lambda: gateway.revision_stats()["iris-1"].in_flight == 0, "the requests are done")


def test_a_failing_scale_from_zero_callback_does_not_fail_the_request(replica):
    def broken(revision: str) -> None:
        raise RuntimeError("autoscaler is down")

    with running_gateway(Backend("iris-1"), broken) as gateway, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(predict, gateway)
        eventually(lambda: gateway.revision_stats()["iris-1"].queued == 1, "the request is queued")
        gateway.update_routes(table(Backend("iris-1", (replica,))))
        assert pending.result(timeout=60).status_code == 200


def test_busy_replicas_are_skipped_for_free_ones(replica):
    with upstream("iris-1-b") as second:
        backend = Backend("iris-1", (replica, second), container_concurrency=1)
        with running_gateway(backend) as gateway, ThreadPoolExecutor(2) as pool:
            pending = [pool.submit(predict, gateway, "/slow?seconds=2") for _ in range(2)]
            eventually(lambda: gateway.revision_stats()["iris-1"].in_flight == 2, "both requests in flight")
            assert gateway.revision_stats()["iris-1"].queued == 0
            served = sorted(future.result().json()["replica"] for future in pending)
    assert served == ["iris-1-a", "iris-1-b"]


def test_a_callback_that_brings_a_replica_at_once_serves_the_request(replica):
    holder = {}

    def scale_now(revision: str) -> None:
        holder["gateway"].update_routes(table(Backend(revision, (replica,))))

    with running_gateway(Backend("iris-1"), scale_now) as gateway:
        holder["gateway"] = gateway
        response = predict(gateway)
    assert response.status_code == 200
    assert response.json()["replica"] == "iris-1-a"


def nobody_listening() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_requests_for_a_crashed_replica_wait_for_its_restart_instead_of_failing(replica):
    crashed = nobody_listening()  # the replica died; the routes still name it
    with running_gateway(Backend("iris-1", (crashed,))) as gateway, ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(predict, gateway) for _ in range(4)]
        eventually(lambda: gateway.revision_stats()["iris-1"].queued == 4, "the requests wait")
        gateway.update_routes(table(Backend("iris-1", (replica,))))  # restarted, on a new port
        responses = [p.result(timeout=60) for p in pending]
    assert [r.status_code for r in responses] == [200] * 4
    assert {r.json()["replica"] for r in responses} == {"iris-1-a"}


def test_a_replica_that_stays_unreachable_is_a_503_that_says_so():
    with running_gateway(Backend("iris-1", (nobody_listening(),)), queue_timeout=0.3) as gateway:
        response = predict(gateway)
    assert response.status_code == 503
    assert response.json() == {
        "error": "revision iris-1 could not take the request within 0.3s: its replicas refused connections"
    }
