"""The gateway's metrics: every exposition parses with prometheus_client's parser, and the counters move
by the number of requests and calls sent, per host, revision and status."""

from __future__ import annotations

import contextlib

import httpx
import pytest
import tritonclient.grpc as grpcclient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from tests.server.processes import serve

HOST = "status.default.localhost"
IDLE_HOST = "idle.default.localhost"
REVISION = "status-predictor-00001"


@pytest.fixture(scope="module")
def replica():
    server = serve(
        "--model-class", "tests/local/gateway/status_model.py:StatusModel", "--model-name", "status"
    )
    yield server
    server.stop()


@contextlib.contextmanager
def gateway_for(replica):
    thread = GatewayThread(GatewayConfig(port=0, queue_timeout=0.2))
    gateway = thread.start()
    backend = Backend(
        REVISION, (f"127.0.0.1:{replica.http_port}",), grpc_replicas=(f"127.0.0.1:{replica.grpc_port}",)
    )
    idle = Backend("idle-predictor-00001", ())  # no replica: requests wait, then are refused
    gateway.update_routes(RouteTable({HOST: Route((backend,)), IDLE_HOST: Route((idle,))}))
    try:
        yield gateway
    finally:
        thread.stop()


def samples(gateway) -> dict[tuple[str, tuple], float]:
    """Every sample of the gateway's exposition, parsed by prometheus_client, by (name, labels)."""
    registry = CollectorRegistry()
    registry.register(gateway)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_and_timed_per_host_revision_and_code(replica):
    with gateway_for(replica) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as client:
        before = samples(gateway)
        for _ in range(5):
            assert (
                client.post(
                    "/v1/models/status:predict", json={"instances": [[1]]}, headers={"host": HOST}
                ).status_code
                == 200
            )
        for _ in range(2):
            assert (
                client.post(
                    "/v1/models/status:predict", json={"instances": [["bad"]]}, headers={"host": HOST}
                ).status_code
                == 400
            )
        assert client.get("/", headers={"host": "nobody.default.localhost"}).status_code == 404
        after = samples(gateway)
    requests = "modelplane_gateway_requests_total"
    for code, count in (("200", 5), ("400", 2)):
        moved = value(after, requests, host=HOST, revision=REVISION, code=code) - value(
            before, requests, host=HOST, revision=REVISION, code=code
        )
        assert moved == count
    assert value(after, requests, host="unknown", revision="", code="404") == 1
    histogram = "modelplane_gateway_request_duration_seconds_count"
    assert value(after, histogram, host=HOST, revision=REVISION) == 7
    assert (
        value(
            after,
            "modelplane_gateway_request_duration_seconds_bucket",
            host=HOST,
            revision=REVISION,
            le="+Inf",
        )
        == 7
    )
    assert value(after, "modelplane_gateway_requests_in_flight", revision=REVISION) == 0
    assert value(after, "modelplane_gateway_replicas", revision=REVISION) == 1


def test_the_activators_waits_and_timeouts_are_counted(replica):
    with gateway_for(replica) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/", headers={"host": IDLE_HOST}).status_code == 503
        found = samples(gateway)
    assert value(found, "modelplane_gateway_activator_waits_total", revision="idle-predictor-00001") == 3
    assert value(found, "modelplane_gateway_activator_timeouts_total", revision="idle-predictor-00001") == 3
    assert (
        value(
            found,
            "modelplane_gateway_requests_total",
            host=IDLE_HOST,
            revision="idle-predictor-00001",
            code="503",
        )
        == 3
    )


def test_grpc_calls_are_counted_by_their_grpc_status(replica):
    with gateway_for(replica) as gateway:
        client = grpcclient.InferenceServerClient(
            f"127.0.0.1:{gateway.port}", channel_args=[("grpc.default_authority", HOST)]
        )
        for _ in range(4):
            assert client.is_model_ready("status")
        with pytest.raises(Exception, match="not found|NOT_FOUND|unknown"):
            client.get_model_metadata("nobody")
        client.close()
        found = samples(gateway)
    calls = "modelplane_gateway_grpc_calls_total"
    assert value(found, calls, host=HOST, revision=REVISION, grpc_code="0") == 4
    assert value(found, calls, host=HOST, revision=REVISION, grpc_code="5") == 1  # NOT_FOUND
