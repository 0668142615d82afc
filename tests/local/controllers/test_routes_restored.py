"""After a start, the gateway says "starting" (503) to a host it does not know until the reconciler
has restored the route of every service stored; then an unknown host is a 404 again."""

from __future__ import annotations

import asyncio
import sys

import httpx

from modelplane.local.api.server import open_store
from modelplane.local.api.store import Ref
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.routes import RouteTable
from modelplane.local.gateway.server import Gateway, GatewayConfig, GatewayThread
from modelplane.local.replicas.supervisor import SupervisorSettings

SERVICES = ("alpha", "beta", "gamma")


def waiting_service(name: str) -> dict:
    """A service whose replica never gets ready: its route is there, with no replica behind it."""
    command = [sys.executable, "-c", "import time; time.sleep(600)"]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "command": command}]}},
    }


def rolled_out_services(tmp_path, store) -> None:
    """The services as a platform stopped before leaves them: each with a revision it rolled out
    (their replicas never got ready here; the status says they did, as after a real rollout)."""
    for name in SERVICES:
        store.create(waiting_service(name))

    async def create_revisions() -> None:
        reconciler = Reconciler(store, Gateway(), settings(tmp_path), RevisionLog(tmp_path / "revisions"))
        reconciler.start()
        try:
            while not all(created(store, name) for name in SERVICES):
                await asyncio.sleep(0.05)
        finally:
            await reconciler.close()

    asyncio.run(create_revisions())
    for name in SERVICES:
        ref = Ref("InferenceService", "default", name)
        status = store.get(ref)["status"]
        status["components"]["predictor"]["latestRolledoutRevision"] = created(store, name)
        store.set_status(ref, status)


def created(store, name: str) -> str | None:
    status = store.get(Ref("InferenceService", "default", name)).get("status") or {}
    return (status.get("components") or {}).get("predictor", {}).get("latestCreatedRevision")


def settings(tmp_path, gateway_port: int = 8080) -> SupervisorSettings:
    return SupervisorSettings(logs_dir=tmp_path / "logs", gateway_port=gateway_port)


def test_unknown_hosts_are_503_until_every_stored_service_has_its_route(tmp_path):
    store = open_store(tmp_path)
    rolled_out_services(tmp_path, store)
    thread = GatewayThread(GatewayConfig(port=0), routes=RouteTable(starting=True))
    gateway = thread.start()
    unknown = {"host": "unknown.default.localhost"}

    async def scenario() -> list[int]:
        log = RevisionLog(tmp_path / "revisions")
        reconciler = Reconciler(store, gateway, settings(tmp_path, gateway.port), log)
        statuses = [httpx.get(f"{gateway.url}/", headers=unknown).status_code]
        reconciler.start()
        try:
            while statuses[-1] == 503:
                await asyncio.sleep(0)  # the reconciler's turn
                response = httpx.get(f"{gateway.url}/", headers=unknown)
                statuses.append(response.status_code)
            # The first answer that is not "starting" already knows every service.
            for name in SERVICES:
                assert f"{name}.default.localhost" in response.json()["error"], response.text
        finally:
            await reconciler.close()
        return statuses

    try:
        statuses = asyncio.run(scenario())
    finally:
        thread.stop()
        store.close()
    assert statuses[0] == 503 and statuses[-1] == 404
