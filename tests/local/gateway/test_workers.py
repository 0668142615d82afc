"""The gateway as worker processes sharing one port (`modelplane up --gateway-workers N`): the routes
in effect in each, the counters added up, traffic splits and the activator across workers, and a
worker killed under load."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.workers import GatewayWorkers
from tests.local.gateway.test_proxy import HOST, eventually, upstream


@pytest.fixture(scope="module")
def echo():
    with upstream("echo-1") as address:
        yield address


@pytest.fixture(scope="module")
def other():
    with upstream("echo-2") as address:
        yield address


def table(*backends: Backend) -> RouteTable:
    return RouteTable({HOST: Route(backends)})


@contextlib.contextmanager
def running_workers(count: int, routes: RouteTable | None = None, on_demand=None):
    workers = GatewayWorkers(GatewayConfig(port=0, drain_timeout=1.0), count, on_demand, routes)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


def fresh(workers: GatewayWorkers, path: str = "/v1/models/echo") -> httpx.Response:
    """A request on a connection of its own: any worker may take it."""
    return httpx.get(f"{workers.url}{path}", headers={"host": HOST}, timeout=30)


def test_every_worker_serves_and_the_counters_add_up(echo):
    with running_workers(2, table(Backend("echo-1", (echo,)))) as workers:
        assert len(workers.worker_pids()) == 2
        for _ in range(60):
            assert fresh(workers).status_code == 200
        eventually(lambda: workers.revision_stats()["echo-1"].requests_total == 60, "the counters add up")
        served = [stats["echo-1"].requests_total for stats in workers.worker_stats() if "echo-1" in stats]
        assert len(served) == 2 and sum(served) == 60 and min(served) > 0, served

        def counted() -> float | None:
            for family in workers.collect():
                for sample in family.samples:
                    if sample.name == "modelplane_gateway_requests_total" and sample.labels["code"] == "200":
                        return sample.value
            return None

        eventually(lambda: counted() == 60, "the metrics add up")

        def replicas() -> list[float]:
            return [
                sample.value
                for family in workers.collect()
                for sample in family.samples
                if sample.name == "modelplane_gateway_replicas"
            ]

        assert replicas() == [1.0]  # one replica, seen by both workers: not counted twice


def test_routes_are_in_effect_in_every_worker_once_the_update_returns(echo):
    with running_workers(2, RouteTable()) as workers:
        assert fresh(workers).status_code == 404
        workers.update_routes(table(Backend("echo-1", (echo,))))
        assert {fresh(workers).status_code for _ in range(40)} == {200}


def test_a_split_holds_across_workers(echo, other):
    routes = table(Backend("echo-1", (echo,), weight=80), Backend("echo-2", (other,), weight=20))
    with running_workers(2, routes) as workers, ThreadPoolExecutor(4) as pool:
        replicas = Counter(pool.map(lambda _: fresh(workers).json()["replica"], range(400)))
    assert 280 <= replicas["echo-1"] <= 360, replicas  # 320 expected; 5 standard deviations either side


def test_a_request_at_zero_waits_in_any_worker_until_replicas_come(echo):
    demanded: list[str] = []
    routes = table(Backend("echo-1", ()))
    with running_workers(2, routes, on_demand=demanded.append) as workers, ThreadPoolExecutor(10) as pool:
        waiting = [pool.submit(fresh, workers) for _ in range(10)]
        eventually(lambda: workers.revision_stats()["echo-1"].queued == 10, "ten requests wait")
        assert set(demanded) == {"echo-1"}
        held = [stats["echo-1"].queued for stats in workers.worker_stats()]
        assert len(held) == 2 and min(held) > 0, held  # in both workers
        workers.update_routes(table(Backend("echo-1", (echo,))))
        assert [request.result().status_code for request in waiting] == [200] * 10


def test_a_worker_killed_under_load_is_started_again_while_the_others_serve(echo):
    with running_workers(2, table(Backend("echo-1", (echo,)))) as workers:
        killed = workers.worker_pids()[0]
        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    outcomes[str(fresh(workers).status_code)] += 1
                except httpx.TransportError:
                    outcomes["cut"] += 1

        loaders = [threading.Thread(target=load) for _ in range(2)]
        for loader in loaders:
            loader.start()
        eventually(lambda: outcomes["200"] > 20, "load")
        before = workers.revision_stats()["echo-1"].requests_total
        os.kill(killed, signal.SIGKILL)
        eventually(
            lambda: len(workers.worker_pids()) == 2 and killed not in workers.worker_pids(), "the worker back"
        )
        served_since = outcomes["200"]
        eventually(lambda: outcomes["200"] > served_since + 20, "load on the new worker too")
        stop.set()
        for loader in loaders:
            loader.join()
        # At most the requests the killed worker held at that moment were cut; nothing else failed.
        assert set(outcomes) <= {"200", "cut"} and outcomes["cut"] <= 2, outcomes
        time.sleep(0.3)  # the next report
        assert workers.revision_stats()["echo-1"].requests_total >= before  # what it had counted stays
