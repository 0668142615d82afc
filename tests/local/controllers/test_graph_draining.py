"""A graph's router that leaves the routes is drained as a service's replica is: it gets SIGTERM only
once the gateway has no request in flight on it (or the platform's stop grace is over), so a request it
holds for longer than its grace period is still answered, whether the graph is updated or deleted.

The reconciler runs here with a short stop grace (the platform's 20 s would make a slow test)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from modelplane.local.api.server import open_store
from modelplane.local.api.store import Ref
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from modelplane.local.replicas.supervisor import SupervisorSettings
from tests.e2e.test_draining import answer, held_graph, marks, service

GRACE = 4.0  # the routers' grace period, and the longest wait for their requests in flight


async def until(check, what: str, timeout: float = 180):
    """`check()`'s first truthy result, polled on the reconciler's event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ready(store, kind: str, name: str) -> bool:
    conditions = (store.get(Ref(kind, "default", name)).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def in_default(resource: dict) -> dict:
    resource["metadata"]["namespace"] = "default"  # as the API server sets it
    return resource


def update(store) -> None:
    store.apply([in_default(held_graph("held-graph", "held", timeout=100))])  # a new router revision


def delete(store) -> None:
    store.delete(Ref("InferenceGraph", "default", "held-graph"))


@pytest.mark.parametrize("change", [update, delete])
def test_a_request_held_in_a_router_longer_than_its_grace_period_is_answered(tmp_path, caplog, change):
    caplog.set_level(logging.INFO, "modelplane.reconciler")
    store = open_store(tmp_path / "home")
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    settings = SupervisorSettings(logs_dir=tmp_path / "logs", gateway_port=gateway.port, stop_grace=GRACE)
    folder = tmp_path / "held"
    folder.mkdir()

    def send() -> httpx.Response:
        return httpx.post(
            f"{gateway.url}/", headers={"host": "held-graph.default.localhost"}, json={}, timeout=120
        )

    async def scenario(pool: ThreadPoolExecutor) -> httpx.Response:
        reconciler = Reconciler(store, gateway, settings, RevisionLog(tmp_path / "revisions"))
        reconciler.start()
        try:
            store.apply(
                [in_default(service("held", folder, "1")), in_default(held_graph("held-graph", "held"))]
            )
            await until(lambda: ready(store, "InferenceGraph", "held-graph"), "the graph to be ready")
            request = asyncio.wrap_future(pool.submit(send))
            await until(lambda: marks(folder), "the request to reach the step behind the router")
            change(store)
            await until(
                lambda: "stopping router held-graph-router-00001" in caplog.text,
                "the router to leave the routes",
            )
            # Past the router's grace period: a router signalled as it left the routes is killed by now.
            await asyncio.sleep(GRACE + 2)
            (folder / "release").touch()
            return await request
        finally:
            (folder / "release").touch()
            await reconciler.close()

    try:
        with ThreadPoolExecutor(1) as pool:  # its request is released before it is shut down
            response = asyncio.run(scenario(pool))
    finally:
        thread.stop()
        store.close()
    port = marks(folder)[0].split()[1]
    assert (response.status_code, response.text) == answer("held-predictor-00001", port)
    assert len([line for line in marks(folder) if not line.startswith("stopped")]) == 1  # not sent again
