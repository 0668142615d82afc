"""Payload logging at the gateway: each request and each answer of a route with a `logger` reaches a
real CloudEvents receiver (parsed with the cloudevents SDK) as KServe's agent sends them; a sink that
is away costs requests nothing, and what could not be delivered is counted on the gateway's metrics."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import json
import logging
import time
import zlib

import grpc
import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_http as v1_from_http
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.telemetry.payload_delivery import DeliverySettings
from modelplane.telemetry.payload_events import PayloadLogSpec
from tests.server.processes import serve
from tests.telemetry.cloudevents_receiver import CloudEventsReceiver

HOST = "status.default.localhost"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
# Quick to give up, so that a sink that is away shows in the counters within moments.
QUICK = DeliverySettings(queue_size=4, max_attempts=2, backoff_initial=0.05, backoff_max=0.2, send_timeout=2)


@pytest.fixture(scope="module")
def status_server():
    server = serve(
        "--model-class", "tests/local/gateway/status_model.py:StatusModel", "--model-name", "status"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replica(status_server):
    return f"127.0.0.1:{status_server.http_port}"


@pytest.fixture
def receiver():
    receiver = CloudEventsReceiver().start()
    yield receiver
    receiver.stop()


def spec(url: str, **fields) -> PayloadLogSpec:
    return PayloadLogSpec(
        **{
            "url": url,
            "mode": "all",
            "inference_service": "status",
            "namespace": "default",
            "component": "predictor",
            **fields,
        }
    )


@contextlib.contextmanager
def gateway_for(
    replica: str,
    log: PayloadLogSpec,
    settings: DeliverySettings = DeliverySettings(),
    replicas=None,
    grpc_replicas: tuple[str, ...] | None = None,
):
    thread = GatewayThread(GatewayConfig(port=0, payload_log=settings, queue_timeout=1))
    gateway = thread.start()
    backend = Backend(
        "status-predictor-00001",
        (replica,) if replicas is None else replicas,
        grpc_replicas=grpc_replicas,
        payload_log=log,
    )
    gateway.update_routes(RouteTable({HOST: Route((backend,))}))
    try:
        with httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client:
            yield gateway, client
    finally:
        thread.stop()


def grpc_infer(gateway, value, request_id: str) -> grpc.RpcError | pb.ModelInferResponse:
    """A ModelInfer call through the gateway: an FP32 input of `value`s, or BYTES for a string."""
    request = pb.ModelInferRequest(model_name="status")
    if isinstance(value, str):
        request.inputs.add(name="x", datatype="BYTES", shape=[1, 1]).contents.bytes_contents.append(
            value.encode()
        )
    else:
        request.inputs.add(name="x", datatype="FP32", shape=[1, len(value)]).contents.fp32_contents.extend(
            value
        )
    address = gateway.url.removeprefix("http://")
    with grpc.insecure_channel(address, options=[("grpc.default_authority", HOST)]) as channel:
        try:
            return InferenceStub(channel).ModelInfer(
                request, metadata=[("x-request-id", request_id), ("x-tenant", "acme")], timeout=30
            )
        except grpc.RpcError as exc:
            return exc


def grpc_message(event, message_class):
    """The one message of the gRPC body an event carries (its 5-byte prefix: not compressed, and the
    length). The SDK hands over a body that happens to be UTF-8 as text: encoded again, the bytes."""
    data = event.get_data()
    data = data.encode() if isinstance(data, str) else data
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == len(data) - 5
    return message_class.FromString(data[5:])


def predict(client: httpx.Client, instances, **headers) -> httpx.Response:
    return client.post("/v1/models/status:predict", json={"instances": instances}, headers=headers)


def metric(gateway, name: str, **labels) -> float:
    registry = CollectorRegistry()
    registry.register(gateway)  # a collector: its collect() gives the gateway's families
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_every_answer_is_a_request_and_a_response_event_as_kserve_sends_them(replica, receiver):
    with gateway_for(replica, spec(receiver.url)) as (_, client):
        answers = [
            predict(client, [[1, 2]], **{"x-request-id": "ok-1"}),
            predict(client, [["bad"]], **{"x-request-id": "bad-1"}),
            predict(client, [["boom"]], **{"x-request-id": "boom-1"}),
        ]
    assert [answer.status_code for answer in answers] == [200, 400, 500]
    events = receiver.wait_for(6)
    assert len(events) == 6
    by_id: dict[str, dict[str, object]] = {}
    for event in events:
        by_id.setdefault(event.get_id(), {})[event.get_type()] = event
    assert set(by_id) == {"ok-1", "bad-1", "boom-1"}
    for request_id, status in (("ok-1", 200), ("bad-1", 400), ("boom-1", 500)):
        request, response = by_id[request_id][REQUEST_TYPE], by_id[request_id][RESPONSE_TYPE]
        for event in (request, response):
            assert event.get_specversion() == "1.0"
            assert event.get_extension("inferenceservicename") == "status"
            assert event.get_extension("namespace") == "default"
            assert event.get_extension("component") == "predictor"
            assert event.get_extension("endpoint") == ""
            assert json.loads(event.get_extension("metadata")) == {}
            assert event.get_extension("recordedtime")
            assert event.get_source() == "status-predictor.default"
            assert event.get_time() is not None
        assert request.get_datacontenttype() == "application/json"
        assert request.get_extension("statuscode") is None
        assert response.get_extension("statuscode") == str(status)
        assert response.get_extension("revision") == "status-predictor-00001"
    assert by_id["ok-1"][REQUEST_TYPE].get_data() == {"instances": [[1, 2]]}
    assert by_id["ok-1"][RESPONSE_TYPE].get_data() == {"predictions": [[1, 2]]}
    assert by_id["bad-1"][RESPONSE_TYPE].get_data() == {"error": "the instance is bad"}
    assert "the model broke" in by_id["boom-1"][RESPONSE_TYPE].get_data()["error"]


def test_the_id_is_the_requests_ce_id_or_the_request_id_the_client_is_given(replica, receiver):
    with gateway_for(replica, spec(receiver.url)) as (_, client):
        given = predict(client, [[1]], **{"ce-id": "event-7"})
        generated = predict(client, [[2]])
    events = receiver.wait_for(4)
    ids = {event.get_id() for event in events}
    assert ids == {"event-7", generated.headers["x-request-id"]}
    assert given.status_code == 200


def test_metadata_headers_and_annotations_are_carried(replica, receiver):
    log = spec(
        receiver.url,
        metadata_headers=("X-Tenant", "x-missing"),
        annotations=(("team", "fraud"), ("tier", "gold")),
    )
    with gateway_for(replica, log) as (_, client):
        predict(client, [[1]], **{"x-tenant": "acme", "x-other": "no"})
    events = receiver.wait_for(2)
    for event in events:
        assert json.loads(event.get_extension("metadata")) == {"X-Tenant": ["acme"]}
        assert json.loads(event.get_extension("annotations")) == {"team": "fraud", "tier": "gold"}


def test_json_attributes_go_unencoded_as_kserves_agent_sends_them(replica, receiver):
    """KServe's agent (Go's CloudEvents SDK) sends `metadata` and `annotations` as plain JSON, and the
    consumers written for it (Go's SDK, Python's cloudevents 1.x API) read header values undecoded.
    Only `%` and what a header cannot carry are percent-encoded, which the binding's decoders undo."""
    log = spec(receiver.url, metadata_headers=("X-Tenant",), annotations=(("team", "fraud & co"),))
    with gateway_for(replica, log) as (_, client):
        headers = [(b"x-tenant", b"acme 100%"), (b"ce-id", "réf 7".encode())]
        client.post("/v1/models/status:predict", json={"instances": [[1]]}, headers=headers)
    events = receiver.wait_for(2)
    raw = receiver.raw_headers[0]
    assert raw["ce-annotations"] == '{"team":"fraud & co"}'
    assert raw["ce-metadata"] == '{"X-Tenant":["acme 100%25"]}'
    kserve_consumer_event = v1_from_http(raw, b"{}")
    assert json.loads(kserve_consumer_event["annotations"]) == {"team": "fraud & co"}
    for event in events:  # a decoding SDK gets every value back as it was
        assert json.loads(event.get_extension("metadata")) == {"X-Tenant": ["acme 100%"]}
        assert event.get_id() == "réf 7"


def test_utf8_header_values_reach_the_events_as_the_client_wrote_them(replica, receiver):
    with gateway_for(replica, spec(receiver.url, metadata_headers=("x-tenant",))) as (_, client):
        headers = [(b"x-tenant", "café".encode()), (b"x-request-id", "idé-1".encode())]
        client.post("/v1/models/status:predict", json={"instances": [[1]]}, headers=headers)
    for event in receiver.wait_for(2):
        assert event.get_id() == "idé-1"
        assert json.loads(event.get_extension("metadata")) == {"x-tenant": ["café"]}


@pytest.mark.parametrize(("mode", "types"), [("request", {REQUEST_TYPE}), ("response", {RESPONSE_TYPE})])
def test_the_mode_picks_the_events(replica, receiver, mode, types):
    with gateway_for(replica, spec(receiver.url, mode=mode)) as (_, client):
        for _ in range(3):
            predict(client, [[1]])
        predict(client, [["bad"]])
    events = receiver.wait_for(4)
    assert {event.get_type() for event in events} == types


@pytest.mark.parametrize("close_each", [False, True], ids=["keep-alive", "connection-close"])
def test_events_of_concurrent_requests_all_arrive_over_few_connections(replica, close_each, caplog):
    caplog.set_level(logging.INFO, logger="modelplane.payload_log")
    receiver = CloudEventsReceiver(close_each=close_each).start()
    try:
        with gateway_for(replica, spec(receiver.url)) as (_, client):
            ids = [f"burst-{index}" for index in range(60)]
            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(lambda i: predict(client, [[1]], **{"x-request-id": i}), ids))
            assert {answer.status_code for answer in answers} == {200}
            events = receiver.wait_for(120)
        assert sorted((e.get_id(), e.get_type()) for e in events) == sorted(
            (i, kind) for i in ids for kind in (REQUEST_TYPE, RESPONSE_TYPE)
        )
        if close_each:  # a batch of several events met a receiver that closes: one at a time from then on
            assert "sending one event at a time" in caplog.text
        else:  # pipelined batches on kept-alive connections, as many as the sink opens
            assert receiver.connections_accepted <= DeliverySettings().connections
    finally:
        receiver.stop()


def test_the_gateways_own_answers_are_logged_with_their_status(receiver):
    with gateway_for("127.0.0.1:9", spec(receiver.url), replicas=()) as (_, client):
        answer = predict(client, [[1]], **{"x-request-id": "waited"})
    assert answer.status_code == 503
    events = receiver.wait_for(2)
    response = next(event for event in events if event.get_type() == RESPONSE_TYPE)
    assert response.get_extension("statuscode") == "503"
    assert "no replica became ready" in response.get_data()["error"]


MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def test_grpc_calls_are_logged_with_their_messages_and_status(status_server, replica, receiver):
    grpc_replicas = (f"127.0.0.1:{status_server.grpc_port}",)
    log = spec(receiver.url, metadata_headers=("x-tenant",))
    with gateway_for(replica, log, grpc_replicas=grpc_replicas) as (gateway, _):
        answers = {
            "ok-1": grpc_infer(gateway, [1.5, 2.5], "ok-1"),
            "bad-1": grpc_infer(gateway, "bad", "bad-1"),
            "boom-1": grpc_infer(gateway, "boom", "boom-1"),
        }
    assert list(answers["ok-1"].outputs[0].contents.fp32_contents) == [1.5, 2.5]
    assert answers["bad-1"].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert answers["boom-1"].code() == grpc.StatusCode.INTERNAL
    events = receiver.wait_for(6)
    by_id: dict[str, dict[str, object]] = {}
    for event in events:
        by_id.setdefault(event.get_id(), {})[event.get_type()] = event
    assert set(by_id) == set(answers)
    for request_id, (status, code) in {"ok-1": (200, 0), "bad-1": (400, 3), "boom-1": (500, 13)}.items():
        request, response = by_id[request_id][REQUEST_TYPE], by_id[request_id][RESPONSE_TYPE]
        for event in (request, response):
            assert event.get_extension("grpcmethod") == MODEL_INFER
            assert event.get_extension("inferenceservicename") == "status"
            assert event.get_extension("component") == "predictor"
            assert event.get_datacontenttype() == "application/grpc"
            assert json.loads(event.get_extension("metadata")) == {"x-tenant": ["acme"]}
        assert grpc_message(request, pb.ModelInferRequest).model_name == "status"
        assert request.get_extension("grpcstatus") is None
        assert response.get_extension("statuscode") == str(status)
        assert response.get_extension("grpcstatus") == str(code)
        assert response.get_extension("revision") == "status-predictor-00001"
    answer = grpc_message(by_id["ok-1"][RESPONSE_TYPE], pb.ModelInferResponse)
    assert list(answer.outputs[0].contents.fp32_contents) == [1.5, 2.5]
    assert by_id["ok-1"][RESPONSE_TYPE].get_extension("grpcmessage") is None
    assert by_id["bad-1"][RESPONSE_TYPE].get_extension("grpcmessage") == "the instance is bad"
    assert not by_id["bad-1"][RESPONSE_TYPE].get_data()  # an error's answer is its trailers alone


def test_a_logged_grpc_call_without_a_request_id_is_given_one_and_told_it(status_server, replica, receiver):
    grpc_replicas = (f"127.0.0.1:{status_server.grpc_port}",)
    request = pb.ModelInferRequest(model_name="status")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 1]).contents.fp32_contents.append(1.0)
    with gateway_for(replica, spec(receiver.url), grpc_replicas=grpc_replicas) as (gateway, _):
        address = gateway.url.removeprefix("http://")
        with grpc.insecure_channel(address, options=[("grpc.default_authority", HOST)]) as channel:
            _, call = InferenceStub(channel).ModelInfer.with_call(request, timeout=30)
    given = dict(call.initial_metadata())["x-request-id"]
    events = receiver.wait_for(2)
    assert {event.get_id() for event in events} == {given}


def test_the_gateways_own_answers_to_grpc_calls_are_logged(receiver):
    log = spec(receiver.url)
    with gateway_for("127.0.0.1:9", log, replicas=(), grpc_replicas=()) as (gateway, _):
        answer = grpc_infer(gateway, [1.0], "waited")
    assert answer.code() == grpc.StatusCode.UNAVAILABLE
    events = receiver.wait_for(2)
    response = next(event for event in events if event.get_type() == RESPONSE_TYPE)
    assert (response.get_extension("statuscode"), response.get_extension("grpcstatus")) == ("503", "14")
    assert "no replica became ready" in response.get_extension("grpcmessage")
    assert response.get_id() == "waited"


def test_a_sink_that_is_away_costs_requests_nothing_and_its_losses_are_counted(replica, receiver):
    with gateway_for(replica, spec(receiver.url), QUICK) as (gateway, client):
        sink = receiver.url
        assert predict(client, [[1]]).status_code == 200
        receiver.wait_for(2)
        receiver.stop()
        for _ in range(20):
            assert predict(client, [[1]]).status_code == 200

        def dropped() -> float:
            return sum(
                metric(gateway, "modelplane_payload_log_events_dropped_total", sink=sink, reason=reason)
                for reason in ("queue_full", "undeliverable")
            )

        assert dropped() >= 20 * 2 - QUICK.queue_size  # the queue holds 4 of the 40 events at most
        receiver.start()  # on the same port: the sink is back, and what is still queued goes out
        eventually(lambda: metric(gateway, "modelplane_payload_log_events_queued", sink=sink) == 0)
        for index in range(3):
            assert predict(client, [[3]], **{"x-request-id": f"after-{index}"}).status_code == 200
        eventually(lambda: len([e for e in receiver.events if e.get_id().startswith("after-")]) == 6)
        assert metric(gateway, "modelplane_payload_log_events_sent_total", sink=sink) >= 8


def eventually(condition, deadline: float = 30.0) -> None:
    give_up = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < give_up, "never happened"
        time.sleep(0.02)


def test_a_file_sink_writes_json_lines_and_rotates(replica, tmp_path):
    path = tmp_path / "logs" / "payloads.jsonl"
    settings = DeliverySettings(file_max_bytes=4000, file_backups=2)
    with gateway_for(replica, spec(path.as_uri()), settings) as (gateway, client):
        for index in range(20):
            assert predict(client, [[index] * 20]).status_code == 200

        def lines():
            files = [
                path.with_name("payloads.jsonl.2"),
                path.with_name("payloads.jsonl.1"),
                path,
            ]  # oldest first
            return [line for file in files if file.exists() for line in file.read_text().splitlines()]

        eventually(
            lambda: metric(gateway, "modelplane_payload_log_events_sent_total", sink=path.as_uri()) == 40
        )
    assert path.with_name("payloads.jsonl.1").exists()
    assert not path.with_name("payloads.jsonl.3").exists()
    assert path.stat().st_size <= 4000
    events = [JSONFormat().read(None, line) for line in lines()]
    assert events, "no event was kept"
    assert {event.get_type() for event in events} == {REQUEST_TYPE, RESPONSE_TYPE}
    last = [event for event in events if event.get_type() == RESPONSE_TYPE][-1]
    assert last.get_data() == {"predictions": [[19] * 20]}
    assert last.get_extension("statuscode") == "200"


def test_a_pretty_printed_json_body_keeps_its_event_on_one_line(replica, tmp_path):
    path = tmp_path / "payloads.jsonl"
    pretty = b'{\r\n  "instances": [\n    [6.8, 2.8]\n  ]\n}\n'  # as `curl -d @iris-input.json` sends it
    with gateway_for(replica, spec(path.as_uri())) as (gateway, client):
        answer = client.post(
            "/v1/models/status:predict", content=pretty, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 200
        eventually(
            lambda: metric(gateway, "modelplane_payload_log_events_sent_total", sink=path.as_uri()) == 2
        )
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    request = JSONFormat().read(None, lines[0])
    assert request.get_type() == REQUEST_TYPE and request.get_data() == {"instances": [[6.8, 2.8]]}


def test_a_compressed_body_is_logged_decoded_as_its_content_type_says(replica, receiver):
    body = b'{"instances": [[7]]}'
    with gateway_for(replica, spec(receiver.url)) as (gateway, client):
        headers = {"content-type": "application/json"}
        for coding, coded in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
            headers |= {"content-encoding": coding, "x-request-id": coding}
            answer = client.post("/v1/models/status:predict", content=coded, headers=headers)
            assert answer.json() == {"predictions": [[7]]}
        headers |= {"content-encoding": "gzip", "x-request-id": "not-gzip"}
        assert client.post("/v1/models/status:predict", content=b"xx", headers=headers).status_code == 400
        events = receiver.wait_for(6)
    requests = {event.get_id(): event for event in events if event.get_type() == REQUEST_TYPE}
    assert requests["gzip"].get_data() == requests["deflate"].get_data() == {"instances": [[7]]}
    assert requests["not-gzip"].get_data() == "xx"  # what cannot be decoded is kept as it passed
