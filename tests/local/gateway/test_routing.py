"""The gateway routes by Host to the right component and revision, and splits traffic by weight."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from modelplane.local.gateway.routes import Backend, Route, RouteTable, component_host, isvc_host
from modelplane.local.gateway.server import GatewayConfig, GatewayThread

APP = Path(__file__).with_name("upstream_app.py")


@contextlib.contextmanager
def upstream(name: str):
    process = subprocess.Popen([sys.executable, str(APP), name], stdout=subprocess.PIPE, text=True)
    try:
        yield f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def running_gateway(table: RouteTable):
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(table)
    try:
        yield gateway
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def replicas():
    names = ("predictor-1", "predictor-2", "transformer-1", "explainer-1")
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(upstream(name)) for name in names}


def iris_table(replicas: dict[str, str], predictor_split: tuple[int, int] = (100, 0)) -> RouteTable:
    """sklearn-iris with a transformer, an explainer and a canary predictor revision."""
    latest = Backend("sklearn-iris-predictor-2", (replicas["predictor-2"],), weight=predictor_split[1])
    prev = Backend("sklearn-iris-predictor-1", (replicas["predictor-1"],), weight=predictor_split[0])
    predictor = Route((prev, latest))
    transformer = Route((Backend("sklearn-iris-transformer-1", (replicas["transformer-1"],)),))
    explainer = Route((Backend("sklearn-iris-explainer-1", (replicas["explainer-1"],)),))
    return RouteTable(
        {
            isvc_host("sklearn-iris", "default"): Route(transformer.backends, explain=explainer),
            component_host("sklearn-iris", "default", "predictor"): predictor,
            component_host("sklearn-iris", "default", "transformer"): transformer,
            component_host("sklearn-iris", "default", "explainer"): explainer,
            component_host("sklearn-iris", "default", "predictor", tag="latest"): Route((latest,)),
            component_host("sklearn-iris", "default", "predictor", tag="prev"): Route((prev,)),
        }
    )


def replica_for(gateway, host: str, path: str = "/v1/models/sklearn-iris:predict") -> str:
    response = httpx.post(
        f"{gateway.url}{path}", headers={"host": host}, content=b'{"instances": [[1, 2, 3, 4]]}'
    )
    assert response.status_code == 200, response.text
    return response.json()["replica"]


def test_the_isvc_host_goes_to_the_transformer_and_explain_to_the_explainer(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        assert replica_for(gateway, "sklearn-iris.default.localhost") == "transformer-1"
        explain = "/v1/models/sklearn-iris:explain"
        assert replica_for(gateway, "sklearn-iris.default.localhost", explain) == "explainer-1"


def test_component_and_tag_hosts_reach_their_revision(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        assert replica_for(gateway, "sklearn-iris-predictor.default.localhost") == "predictor-1"
        assert replica_for(gateway, "sklearn-iris-transformer.default.localhost") == "transformer-1"
        assert replica_for(gateway, "sklearn-iris-explainer.default.localhost") == "explainer-1"
        assert replica_for(gateway, "latest-sklearn-iris-predictor.default.localhost") == "predictor-2"
        assert replica_for(gateway, "prev-sklearn-iris-predictor.default.localhost") == "predictor-1"


def test_host_matches_with_or_without_port_and_in_any_case(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        for host in (
            f"sklearn-iris-predictor.default.localhost:{gateway.port}",
            "SKLEARN-IRIS-PREDICTOR.Default.LocalHost",
            "sklearn-iris-predictor.default.localhost.",
        ):
            assert replica_for(gateway, host) == "predictor-1"


def test_unknown_host_is_a_404_that_lists_the_known_hosts(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        response = httpx.get(f"{gateway.url}/v1/models/x", headers={"host": "nope.default.localhost"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error.startswith("no InferenceService or InferenceGraph serves host 'nope.default.localhost'")
    assert "known hosts: " in error
    assert "sklearn-iris.default.localhost" in error
    assert "latest-sklearn-iris-predictor.default.localhost" in error


def test_a_service_that_does_not_serve_is_a_503_with_the_reason(replicas):
    reason = 'InferenceService default/broken is not ready: Revision "broken-predictor-00001" failed'
    table = RouteTable(
        iris_table(replicas).routes,
        unavailable={"broken.default.localhost": reason, "sklearn-iris.default.localhost": "not this"},
    )
    with running_gateway(table) as gateway:
        response = httpx.get(
            f"{gateway.url}/v1/models/broken", headers={"host": "Broken.default.localhost:80"}
        )
        assert response.status_code == 503
        assert response.json() == {"error": reason}
        # A host with a route is served, whatever the table says of it besides.
        assert replica_for(gateway, "sklearn-iris.default.localhost") == "transformer-1"
        response = httpx.get(f"{gateway.url}/v1/models/x", headers={"host": "nope.default.localhost"})
        assert response.status_code == 404


def test_while_the_routes_load_an_unknown_host_is_a_503_starting(replicas):
    thread = GatewayThread(GatewayConfig(port=0), routes=RouteTable(starting=True))
    gateway = thread.start()
    try:
        response = httpx.get(f"{gateway.url}/v1/models/x", headers={"host": "sklearn-iris.default.localhost"})
        assert response.status_code == 503
        assert response.json()["error"].startswith("modelplane is starting")
        gateway.update_routes(RouteTable(iris_table(replicas).routes, starting=True))
        assert replica_for(gateway, "sklearn-iris.default.localhost") == "transformer-1"
        gateway.update_routes(iris_table(replicas))
        response = httpx.get(f"{gateway.url}/v1/models/x", headers={"host": "nope.default.localhost"})
        assert response.status_code == 404
    finally:
        thread.stop()


def test_traffic_splits_by_weight(replicas):
    requests = 1000
    with running_gateway(iris_table(replicas, predictor_split=(80, 20))) as gateway:
        host = {"host": "sklearn-iris-predictor.default.localhost"}
        with httpx.Client(base_url=gateway.url, headers=host) as client:
            served = Counter(
                client.post("/v1/models/sklearn-iris:predict", content=b"{}").json()["replica"]
                for _ in range(requests)
            )
        stats = gateway.revision_stats()
    assert set(served) == {"predictor-1", "predictor-2"}
    assert abs(served["predictor-1"] / requests - 0.8) < 0.05, served
    assert (
        stats["sklearn-iris-predictor-1"].requests_total + stats["sklearn-iris-predictor-2"].requests_total
        == requests
    )


def test_a_gateway_reached_from_beyond_this_machine_keeps_its_hosts_to_itself():
    """Bound to another address than loopback, a 404 does not list the services there are."""
    from modelplane.local.gateway.dispatch import Dispatcher
    from modelplane.local.gateway.revisions import Unavailable

    for list_hosts, told in ((True, True), (False, False)):
        dispatcher = Dispatcher(list_hosts=list_hosts)
        dispatcher.update(
            RouteTable({"iris.default.localhost": Route((Backend("iris-1", ("127.0.0.1:1",)),))})
        )
        with pytest.raises(Unavailable) as refused:
            dispatcher.resolve(b"nope.default.localhost", b"/v1/models/iris:predict")
        assert refused.value.status == 404
        assert refused.value.message.startswith(
            "no InferenceService or InferenceGraph serves host 'nope.default.localhost'"
        )
        assert ("iris.default.localhost" in refused.value.message) is told


def test_update_routes_swaps_the_whole_table(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        assert replica_for(gateway, "sklearn-iris-predictor.default.localhost") == "predictor-1"
        gateway.update_routes(iris_table(replicas, predictor_split=(0, 100)))
        assert replica_for(gateway, "sklearn-iris-predictor.default.localhost") == "predictor-2"
        gateway.update_routes(RouteTable())
        response = httpx.get(f"{gateway.url}/", headers={"host": "sklearn-iris.default.localhost"})
        assert response.status_code == 404
        assert response.json()["error"].endswith("known hosts: none")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_reaches_a_localhost_subdomain_without_a_host_header(replicas):
    with running_gateway(iris_table(replicas)) as gateway:
        url = f"http://sklearn-iris-predictor.default.localhost:{gateway.port}/v1/models/sklearn-iris:predict"
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "-d", '{"instances": [[1, 2, 3, 4]]}', url],
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert '"replica":"predictor-1"' in result.stdout
