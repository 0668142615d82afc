"""What the reconciler tells the gateway of hosts without a route: the services stored at the start are
"starting" until reconciled, and a service that does not serve gives its status's reason."""

from __future__ import annotations

import asyncio

from modelplane.local.api.server import open_store
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.routes import RouteTable
from modelplane.local.replicas.supervisor import SupervisorSettings

MISSING_RUNTIME = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "nope", "namespace": "default"},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "runtime": "no-such-runtime",
                "storageUri": "pvc://examples/sklearn-iris",
            }
        }
    },
}


class RecordingGateway:
    def __init__(self) -> None:
        self.tables: list[RouteTable] = []

    def update_routes(self, table: RouteTable) -> None:
        self.tables.append(table)

    def revision_stats(self) -> dict:
        return {}


async def reconcile_a_stored_service(tmp_path) -> list[RouteTable]:
    store = open_store(tmp_path / "home")
    store.apply([MISSING_RUNTIME])
    gateway = RecordingGateway()
    settings = SupervisorSettings(logs_dir=tmp_path / "logs")
    reconciler = Reconciler(store, gateway, settings, RevisionLog(tmp_path / "revisions"))
    reconciler.start()
    try:
        for _ in range(500):
            if not gateway.tables[-1].starting:
                break
            await asyncio.sleep(0.01)
    finally:
        await reconciler.close()
        store.close()
    return gateway.tables


def test_stored_services_are_starting_until_reconciled_then_say_why_they_do_not_serve(tmp_path):
    tables = asyncio.run(reconcile_a_stored_service(tmp_path))
    assert tables[0].starting and not tables[0].unavailable
    assert not tables[-1].starting
    reason = tables[-1].unavailable["nope.default.localhost"]
    assert reason.startswith("InferenceService default/nope is not ready: ")
    assert "no-such-runtime" in reason
    assert "no-such-runtime" in tables[-1].unavailable["nope-predictor.default.localhost"]
    assert not tables[-1].routes
