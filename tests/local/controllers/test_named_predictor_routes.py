"""A named predictor (`spec.predictor.name: blue`) is KServe's Service `<isvc>-blue-predictor`: a transformer
or explainer written for the cluster calls that host, and the gateway sends it to the predictor."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import httpx

from modelplane.local.api.server import open_store
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.routes import RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from modelplane.local.replicas.supervisor import SupervisorSettings

PREDICTOR_HOST = "named-predictor.default.localhost"
NAMED_PREDICTOR_HOST = "named-blue-predictor.default.localhost"


def named_service(predictor: dict, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "named", "namespace": "default", "annotations": annotations or {}},
        "spec": {"predictor": {"name": "blue", **predictor}},
    }


# A predictor that answers every request with its name, on the port its argument names.
ANSWERING_SERVER = """
import http.server, sys
class Blue(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "4")
        self.end_headers()
        self.wfile.write(b"blue")
    do_POST = do_GET
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Blue).serve_forever()
"""
ANSWERING = {
    "containers": [{"name": "kserve-container", "command": [sys.executable, "-c", ANSWERING_SERVER, "8080"]}]
}
MISSING_RUNTIME = {
    "model": {
        "modelFormat": {"name": "sklearn"},
        "runtime": "no-such-runtime",
        "storageUri": "pvc://examples/sklearn-iris",
    }
}


class RecordingGateway:
    def __init__(self) -> None:
        self.tables: list[RouteTable] = []

    def update_routes(self, table: RouteTable) -> None:
        self.tables.append(table)

    def revision_stats(self) -> dict:
        return {}


async def first_table_where(tmp_path, isvc: dict, wanted: Callable[[RouteTable], bool]) -> RouteTable:
    """The first route table the reconciler gives for `isvc` that is `wanted`."""
    store = open_store(tmp_path / "home")
    store.apply([isvc])
    gateway = RecordingGateway()
    settings = SupervisorSettings(logs_dir=tmp_path / "logs")
    reconciler = Reconciler(store, gateway, settings, RevisionLog(tmp_path / "revisions"))
    reconciler.start()
    try:
        for _ in range(1000):
            table = gateway.tables[-1] if gateway.tables else None
            if table is not None and wanted(table):
                return table
            await asyncio.sleep(0.01)
        raise AssertionError(f"no such route table: {gateway.tables[-1:]}")
    finally:
        await reconciler.close()
        store.close()


async def table_refusing_the_predictor(tmp_path, isvc: dict) -> RouteTable:
    return await first_table_where(tmp_path, isvc, lambda table: PREDICTOR_HOST in table.unavailable)


def test_the_named_predictors_service_host_goes_to_the_predictor(tmp_path):
    store = open_store(tmp_path / "home")
    store.apply([named_service(ANSWERING)])
    thread = GatewayThread(GatewayConfig(port=0), routes=RouteTable(starting=True))
    gateway = thread.start()

    async def scenario() -> httpx.Response:
        settings = SupervisorSettings(logs_dir=tmp_path / "logs", gateway_port=gateway.port)
        reconciler = Reconciler(store, gateway, settings, RevisionLog(tmp_path / "revisions"))
        reconciler.start()
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(600):  # 503 while the service starts and its predictor loads
                    response = await client.post(
                        f"{gateway.url}/v1/models/named:predict",
                        json={"instances": [[1]]},
                        headers={"host": NAMED_PREDICTOR_HOST},
                    )
                    if response.status_code != 503:
                        return response
                    await asyncio.sleep(0.05)
            return response
        finally:
            await reconciler.close()

    try:
        response = asyncio.run(scenario())
    finally:
        thread.stop()
        store.close()
    assert (response.status_code, response.text) == (200, "blue")


def test_the_named_predictors_service_host_says_why_it_does_not_serve(tmp_path):
    table = asyncio.run(table_refusing_the_predictor(tmp_path, named_service(MISSING_RUNTIME)))
    assert "no-such-runtime" in table.unavailable[NAMED_PREDICTOR_HOST]
    assert table.unavailable[NAMED_PREDICTOR_HOST] == table.unavailable[PREDICTOR_HOST]


def test_the_named_predictor_has_its_own_tag_hosts(tmp_path):
    """KServe's Knative Service of a named predictor is `<isvc>-blue-predictor`, so its tags are
    `latest-<isvc>-blue-predictor...` (and `prev-`): the hosts its status names."""
    tagged = named_service(ANSWERING, {"serving.kserve.io/enable-tag-routing": "true"})
    table = asyncio.run(
        first_table_where(
            tmp_path, tagged, lambda table: "latest-named-predictor.default.localhost" in table.routes
        )
    )
    named = table.routes["latest-named-blue-predictor.default.localhost"]
    assert named.backends == table.routes["latest-named-predictor.default.localhost"].backends
