"""gRPC through the gateway: HTTP/2 on the REST port, routed by `:authority`, relayed to replicas' gRPC ports.

The replicas are real grpc.aio servers in their own processes (grpc_upstream.py); the clients
are grpcio stubs and tritonclient's gRPC client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

from modelplane.local.gateway.routes import (
    Backend,
    ComponentTraffic,
    Route,
    RouteTable,
    inference_graph_routes,
    inference_service_routes,
)
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.telemetry.payload_events import PayloadLogSpec
from tests.protocol.raw_h2 import Answer, RawH2

APP = Path(__file__).with_name("grpc_upstream.py")
HTTP_APP = Path(__file__).with_name("upstream_app.py")
REFUSING_APP = Path(__file__).with_name("refusing_grpc_upstream.py")
HOST = "iris.default.localhost"
MAX_MESSAGE = 64 * 1024 * 1024


@contextlib.contextmanager
def upstream_process(name: str, app: Path = APP):
    process = subprocess.Popen([sys.executable, str(app), name], stdout=subprocess.PIPE, text=True)
    try:
        yield process, f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def upstream(name: str, app: Path = APP):
    with upstream_process(name, app) as (_, address):
        yield address


@contextlib.contextmanager
def running_gateway(table: RouteTable, on_demand=None, **settings):
    thread = GatewayThread(GatewayConfig(port=0, **settings), on_demand=on_demand)
    gateway = thread.start()
    gateway.update_routes(table)
    try:
        yield gateway
    finally:
        thread.stop()


@contextlib.contextmanager
def channel(gateway, authority: str = HOST):
    options = [
        ("grpc.default_authority", authority),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}", options=options) as chan:
        yield chan


def backend(revision: str, *replicas: str, weight: int = 100, **settings) -> Backend:
    """A revision whose stand-in replicas serve gRPC only (the HTTP address is never called here)."""
    return Backend(revision, tuple(replicas), weight=weight, grpc_replicas=tuple(replicas), **settings)


def service(predictor: Backend | tuple[Backend, ...], name: str = "iris") -> dict[str, Route]:
    backends = predictor if isinstance(predictor, tuple) else (predictor,)
    return inference_service_routes(
        name, "default", predictor=ComponentTraffic(backends, latest=backends[-1], prev=backends[0])
    )


def infer(
    chan, parameters: dict | None = None, payload: bytes = b"\x01\x02\x03\x04", **call
) -> pb.ModelInferResponse:
    request = pb.ModelInferRequest(model_name="iris")
    request.inputs.add(name="x", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(payload)
    for key, value in (parameters or {}).items():
        if isinstance(value, float):
            request.parameters[key].double_param = value
        else:
            request.parameters[key].string_param = value
    return InferenceStub(chan).ModelInfer(request, **call)


def settled(gateway, revision: str, **expected) -> dict:
    """The revision's counters once they match `expected` (they change as responses end)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = gateway.revision_stats()[revision]
        if all(getattr(stats, key) == value for key, value in expected.items()):
            return stats
        time.sleep(0.02)
    raise AssertionError(f"{revision}: {stats} never matched {expected}")


@pytest.fixture(scope="module")
def replicas():
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(upstream(name)) for name in ("iris-1", "iris-2", "iris-3")}


def test_a_grpc_call_goes_to_the_predictor_of_a_service_without_transformer(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    with running_gateway(table) as gateway, channel(gateway) as chan:
        response = infer(chan)
        assert (response.id, response.model_name) == ("iris-1", "iris")
        assert list(response.raw_output_contents) == [b"\x01\x02\x03\x04"]
        ready = InferenceStub(chan).ServerReady(pb.ServerReadyRequest())
        assert ready.ready
        stats = settled(gateway, "iris-predictor-1", in_flight=0)
        assert stats.requests_total == 2


def test_metadata_reaches_the_replica_and_the_authority_matches_like_host(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    with running_gateway(table) as gateway, channel(gateway, "IRIS-predictor.default.localhost:8080") as chan:
        call = chan.unary_unary("/test.Echo/Metadata")
        seen = json.loads(call(b"", metadata=(("x-request-id", "abc"), ("custom-bin", b"\x00\xff"))))
        assert (seen["x-request-id"], seen["custom-bin"]) == ("abc", "00ff")


def test_a_logged_call_reaches_the_replica_with_the_request_id_it_was_given(replicas, tmp_path):
    log = PayloadLogSpec((tmp_path / "events.jsonl").as_uri(), "all", "iris", "default", "predictor")
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"], payload_log=log)))
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with running_gateway(table) as gateway, channel(gateway) as chan:
        call = chan.unary_unary("/test.Echo/Metadata")
        answer, outcome = call.with_call(b"", metadata=(("traceparent", traceparent),))
    seen = json.loads(answer)
    assert seen["traceparent"] == traceparent  # tracing is off: the client's goes on as it came
    assert seen["x-request-id"] == dict(outcome.initial_metadata())["x-request-id"]


def test_a_localhost_target_is_its_own_authority(replicas):
    """grpcio resolves `*.localhost` to the loopback address, and the target's host is the authority."""
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-3"])))
    with running_gateway(table) as gateway, grpc.insecure_channel(f"{HOST}:{gateway.port}") as chan:
        assert infer(chan).id == "iris-3"


def test_tritonclient_through_the_gateway(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-2"])))
    with running_gateway(table) as gateway:
        client = triton.InferenceServerClient(
            f"127.0.0.1:{gateway.port}", channel_args=[("grpc.default_authority", HOST)]
        )
        try:
            assert client.is_server_live()
            assert client.get_server_metadata().name == "iris-2"
            data = np.arange(8, dtype=np.float32).reshape(2, 4)
            tensor = triton.InferInput("input-0", [2, 4], "FP32")
            tensor.set_data_from_numpy(data)
            result = client.infer("iris", [tensor])
            assert result.get_response().id == "iris-2"
            np.testing.assert_array_equal(result.as_numpy("input-0"), data)
        finally:
            client.close()


def test_large_messages_stream_both_ways(replicas):
    """Larger than every HTTP/2 window on the way, so flow control has to work end to end."""
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    payload = bytes(range(256)) * (24 * 1024)  # 6 MiB
    with running_gateway(table) as gateway, channel(gateway) as chan:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: infer(chan, payload=payload), range(4)))
        assert all(list(r.raw_output_contents) == [payload] for r in responses)


def test_a_bidirectional_stream_is_relayed_message_by_message(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-3"])))
    with running_gateway(table) as gateway, channel(gateway) as chan:
        chat = chan.stream_stream("/test.Echo/Chat")
        messages = [b"message %d " % i * (i * 100) for i in range(200)]
        assert list(chat(iter(messages))) == messages


def test_traffic_split_and_tag_hosts(replicas):
    prev = backend("iris-predictor-1", replicas["iris-1"], weight=50)
    latest = backend("iris-predictor-2", replicas["iris-2"], weight=50)
    table = RouteTable(service((prev, latest)))
    with running_gateway(table) as gateway:
        with channel(gateway) as chan:
            seen = Counter(infer(chan).id for _ in range(60))
        assert set(seen) == {"iris-1", "iris-2"}, seen
        with channel(gateway, "latest-iris-predictor.default.localhost") as chan:
            assert {infer(chan).id for _ in range(5)} == {"iris-2"}
        with channel(gateway, "prev-iris-predictor.default.localhost") as chan:
            assert {infer(chan).id for _ in range(5)} == {"iris-1"}
        stats = gateway.revision_stats()
        assert stats["iris-predictor-1"].requests_total + stats["iris-predictor-2"].requests_total == 70


def test_an_unknown_host_names_the_known_ones(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    with running_gateway(table) as gateway, channel(gateway, "nothing.default.localhost") as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "nothing.default.localhost" in error.value.details()
        assert "iris-predictor.default.localhost" in error.value.details()


def test_a_service_that_does_not_serve_is_unavailable_with_the_reason(replicas):
    reason = "InferenceService default/iris is not ready: the runtime is missing"
    table = RouteTable(unavailable={HOST: reason}, starting=True)
    with running_gateway(table) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error.value.details() == reason
    with running_gateway(RouteTable(starting=True)) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error.value.details().startswith("modelplane is starting")


def test_a_revision_without_grpc_is_refused(replicas):
    table = RouteTable(
        inference_graph_routes("pipeline", "default", (Backend("pipeline-router-1", ("127.0.0.1:9",)),))
    )
    with running_gateway(table) as gateway, channel(gateway, "pipeline.default.localhost") as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "does not serve gRPC" in error.value.details()


def test_no_replica_within_the_queue_timeout_is_unavailable_and_asks_for_one():
    asked = []
    table = RouteTable(service(backend("iris-predictor-1")))
    with running_gateway(table, asked.append, queue_timeout=0.3) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no replica became ready" in error.value.details()
        assert asked == ["iris-predictor-1"]


def test_a_call_waits_while_the_revision_scales_from_zero(replicas):
    table = RouteTable(service(backend("iris-predictor-1")))
    with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(infer, chan)
        settled(gateway, "iris-predictor-1", queued=1)
        gateway.update_routes(RouteTable(service(backend("iris-predictor-1", replicas["iris-3"]))))
        assert pending.result(30).id == "iris-3"


def test_calls_count_in_flight_and_respect_container_concurrency(replicas):
    limited = backend("iris-predictor-1", replicas["iris-1"], container_concurrency=1)
    with running_gateway(RouteTable(service(limited))) as gateway, channel(gateway) as chan:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(infer, chan, {"sleep": 5.0})  # long enough for the next lines
            settled(gateway, "iris-predictor-1", in_flight=1)
            second = pool.submit(infer, chan)
            stats = settled(gateway, "iris-predictor-1", queued=1)
            assert stats.in_flight == 1
            assert first.result(30).id == second.result(30).id == "iris-1"
        stats = settled(gateway, "iris-predictor-1", in_flight=0, queued=0)
        assert stats.requests_total == 2
        assert stats.concurrency_seconds > 0


def test_a_cancelled_call_frees_its_slot(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-2"])))
    with running_gateway(table) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan, {"sleep": 5.0}, timeout=0.3)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        settled(gateway, "iris-predictor-1", in_flight=0)
        assert infer(chan).id == "iris-2"


def test_the_backend_timeout_bounds_the_wait_for_the_response_headers(replicas):
    slow = backend("iris-predictor-1", replicas["iris-3"], timeout_seconds=0.3)
    with running_gateway(RouteTable(service(slow))) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan, {"sleep": 5.0})
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "did not start responding within 0.3s" in error.value.details()
        settled(gateway, "iris-predictor-1", in_flight=0)


def test_the_backend_timeout_counts_the_wait_for_a_replica():
    table = RouteTable(service(backend("iris-predictor-1", timeout_seconds=0.3)))
    with running_gateway(table, queue_timeout=60) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error.value.details() == (
            "revision iris-predictor-1 did not start responding within 0.3s: no replica became ready"
        )


def test_the_replicas_own_errors_pass_through(replicas):
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    with running_gateway(table) as gateway, channel(gateway) as chan:
        with pytest.raises(grpc.RpcError) as error:
            infer(chan, {"fail": "bad tensor: ünïcode"})
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details() == "bad tensor: ünïcode"
        with pytest.raises(grpc.RpcError) as error:
            chan.unary_unary("/test.Missing/Method")(b"")
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_replica_that_dies_mid_call_gives_unavailable_and_the_others_serve_on(replicas):
    with upstream("doomed") as doomed:
        table = RouteTable(service(backend("iris-predictor-1", doomed)))
        with running_gateway(table) as gateway, channel(gateway) as chan:
            assert infer(chan).id == "doomed"
            with pytest.raises(grpc.RpcError) as error:
                infer(chan, {"die": "now"})
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "doomed" not in error.value.details()  # it names the replica by address
            assert doomed in error.value.details()
            settled(gateway, "iris-predictor-1", in_flight=0)
            # The replica is gone: connecting fails (or, while its process is still being torn down,
            # the new connection is reset), and the call says so.
            with pytest.raises(grpc.RpcError) as error:
                infer(chan)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert doomed in error.value.details()
            gateway.update_routes(RouteTable(service(backend("iris-predictor-2", replicas["iris-1"]))))
            assert infer(chan).id == "iris-1"


def test_rest_and_grpc_share_the_port(replicas):
    with upstream("rest-1", HTTP_APP) as rest:
        table = RouteTable(
            {
                **service(backend("iris-predictor-1", replicas["iris-1"])),
                **inference_service_routes(
                    "echo", "default", predictor=ComponentTraffic((Backend("echo-predictor-1", (rest,)),))
                ),
            }
        )
        with running_gateway(table) as gateway, channel(gateway) as chan:
            assert infer(chan).id == "iris-1"
            response = httpx.get(f"{gateway.url}/v2/health/ready", headers={"host": "echo.default.localhost"})
            assert response.status_code == 200
            assert response.json()["replica"] == "rest-1"
            assert infer(chan).id == "iris-1"


def test_the_preface_may_come_in_pieces_and_rest_over_http2_is_refused(replicas):
    """A raw HTTP/2 client: the preface split over two writes, then a REST request over HTTP/2."""
    table = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"])))
    with running_gateway(table) as gateway, socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        conn = h2.connection.H2Connection()
        conn.initiate_connection()
        opening = conn.data_to_send()
        sock.sendall(opening[:7])
        time.sleep(0.05)
        sock.sendall(opening[7:])
        request = [
            (":method", "GET"),
            (":path", "/v2/health/ready"),
            (":scheme", "http"),
            (":authority", HOST),
        ]
        conn.send_headers(1, request, end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body, ended = None, b"", False
        while not ended:
            data = sock.recv(65536)
            assert data, "the gateway closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            sock.sendall(conn.data_to_send())
        assert status == b"505"
        assert json.loads(body)["error"].endswith(
            "send REST requests over HTTP/1.1 (curl, which picks HTTP/2 over TLS: --http1.1)"
        )


def test_a_waiting_call_goes_where_its_host_routes_when_its_revision_leaves_the_table(replicas):
    table = RouteTable(service(backend("iris-predictor-1")))
    with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(infer, chan)
        settled(gateway, "iris-predictor-1", queued=1)
        gateway.update_routes(RouteTable(service(backend("iris-predictor-2", replicas["iris-1"]))))
        assert pending.result(30).id == "iris-1"  # the rollout's new revision answers it


def test_a_waiting_call_fails_when_its_host_leaves_the_table(replicas):
    table = RouteTable(service(backend("iris-predictor-1")))
    with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(infer, chan)
        settled(gateway, "iris-predictor-1", queued=1)
        gateway.update_routes(RouteTable())
        with pytest.raises(grpc.RpcError) as error:
            pending.result(30)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "revision iris-predictor-1 no longer serves any host" in error.value.details()


def test_stopping_the_gateway_lets_the_calls_under_way_finish(replicas):
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(RouteTable(service(backend("iris-predictor-1", replicas["iris-2"]))))
    try:
        with channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(infer, chan, {"sleep": 1.0})
            settled(gateway, "iris-predictor-1", in_flight=1)
            thread.stop()
            assert pending.result(30).id == "iris-2"
    finally:
        thread.stop()


def test_a_replica_that_shuts_down_gracefully_finishes_its_calls():
    """Its GOAWAY stops new calls on that connection, not the ones under way."""
    with upstream_process("leaving") as (process, address):
        table = RouteTable(service(backend("iris-predictor-1", address)))
        with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            assert infer(chan).id == "leaving"
            pending = pool.submit(infer, chan, {"sleep": 3.0})
            assert process.stdout.readline() == "sleeping\n"  # the replica has the call
            process.send_signal(signal.SIGUSR1)
            assert pending.result(30).id == "leaving"
            settled(gateway, "iris-predictor-1", in_flight=0)


@pytest.mark.parametrize("how", ["goaway", "refuse"])
def test_a_call_a_stopping_replica_refused_goes_to_one_that_serves(replicas, how):
    """HTTP/2 says a refused stream was not processed (a GOAWAY past it, or REFUSED_STREAM): the call
    goes to a replica that serves, as a stopping replica's last calls do."""
    with upstream_process(how, REFUSING_APP) as (process, address):
        table = RouteTable(service(backend("iris-predictor-1", address)))
        with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(infer, chan, timeout=30)
            assert process.stdout.readline() == "held\n"
            gateway.update_routes(RouteTable(service(backend("iris-predictor-1", replicas["iris-3"]))))
            process.send_signal(signal.SIGUSR1)
            assert pending.result(30).id == "iris-3"
            settled(gateway, "iris-predictor-1", in_flight=0)


def test_a_logged_call_sent_again_after_a_refusal_is_logged_once(replicas, tmp_path):
    events = tmp_path / "events.jsonl"
    log = PayloadLogSpec(events.as_uri(), "all", "iris", "default", "predictor")
    with upstream_process("refuse", REFUSING_APP) as (process, address):
        table = RouteTable(service(backend("iris-predictor-1", address, payload_log=log)))
        with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(infer, chan, timeout=30)
            assert process.stdout.readline() == "held\n"
            served = RouteTable(service(backend("iris-predictor-1", replicas["iris-3"], payload_log=log)))
            gateway.update_routes(served)
            process.send_signal(signal.SIGUSR1)
            assert pending.result(30).id == "iris-3"
        # The gateway has stopped: its payload logger wrote what it had.
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [line["type"].rsplit(".", 1)[1] for line in lines] == ["request", "response"]
    assert lines[0]["id"] == lines[1]["id"]
    assert (lines[1]["grpcstatus"], lines[1]["statuscode"]) == ("0", "200")


def test_a_refused_call_too_large_to_keep_is_unavailable(replicas):
    """The gateway keeps up to 1 MiB of a call to send it again; a larger one fails as it was refused."""
    with upstream_process("refuse", REFUSING_APP) as (process, address):
        table = RouteTable(service(backend("iris-predictor-1", address)))
        with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(infer, chan, payload=b"x" * (2 << 20), timeout=30)
            assert process.stdout.readline() == "held\n"
            assert process.stdout.readline() == "ended\n"  # all of it went up, past what is kept
            process.send_signal(signal.SIGUSR1)
            with pytest.raises(grpc.RpcError) as error:
                pending.result(30)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "refused the call" in error.value.details()
            settled(gateway, "iris-predictor-1", in_flight=0)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_many_calls_cancelled_cut_and_rerouted_leave_nothing_behind(replicas):
    """Calls of every kind, some cancelled, some streaming, while the routes change under them: the
    counters come back to zero and the gateway logs no error."""
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    one = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"], container_concurrency=2)))
    two = RouteTable(service(backend("iris-predictor-1", replicas["iris-1"], replicas["iris-2"])))
    payload = bytes(300_000)

    def client(seed: int, gateway) -> None:
        rng = random.Random(seed)
        with channel(gateway) as chan:
            chat = chan.stream_stream("/test.Echo/Chat")
            for _ in range(15):
                kind = rng.choice(("plain", "cancelled", "stream", "stream-cancelled", "big", "unknown"))
                try:
                    if kind == "plain":
                        infer(chan)
                    elif kind == "cancelled":
                        infer(chan, {"sleep": 0.3}, timeout=0.05)
                    elif kind == "big":
                        infer(chan, payload=payload)
                    elif kind == "unknown":
                        chan.unary_unary("/x.Y/Z")(b"", timeout=10, metadata=())
                    else:
                        call = chat(
                            iter([b"a" * 70_000] * 5), timeout=0.02 if kind == "stream-cancelled" else 30
                        )
                        for _ in call:
                            pass
                except grpc.RpcError as error:
                    codes = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED}
                    assert error.code() in codes, (kind, error.code(), error.details())

    try:
        with running_gateway(one) as gateway, ThreadPoolExecutor(6) as pool:
            calls = [pool.submit(client, seed, gateway) for seed in range(6)]
            for index in range(20):
                gateway.update_routes(two if index % 2 else one)
                time.sleep(0.05)
            for call in calls:
                call.result(120)
            stats = settled(gateway, "iris-predictor-1", in_flight=0, queued=0)
            assert stats.requests_total > 0
    finally:
        logging.getLogger().removeHandler(errors)
    assert [record.getMessage() for record in errors.records] == []


class _ScriptedReplica(asyncio.Protocol):
    """A replica's gRPC port on the `h2` library, answering by path: `/test.Big/Get` with a message of
    `BIG` bytes (as the gateway's windows allow), `/test.Probe/Get` with only trailers (no data, which
    a client's window would hold back), anything else with an empty message."""

    BIG = 600_000

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.paths: dict[int, bytes] = {}
        self.unsent: dict[int, bytes] = {}  # answer data waiting for a window
        self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.paths[event.stream_id] = dict(event.headers)[b":path"]
            elif isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._answer(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.unsent.pop(event.stream_id, None)
            elif isinstance(event, h2.events.WindowUpdated):
                for stream_id in list(self.unsent):
                    try:
                        self._send(stream_id)
                    except h2.exceptions.StreamClosedError:  # reset by a frame of the same read
                        del self.unsent[stream_id]
        self.transport.write(self.h2.data_to_send())

    def _answer(self, stream_id: int) -> None:
        head = [(b":status", b"200"), (b"content-type", b"application/grpc")]
        if self.paths.get(stream_id) == b"/test.Probe/Get":
            self.h2.send_headers(stream_id, [*head, (b"grpc-status", b"0")], end_stream=True)
            return
        self.h2.send_headers(stream_id, head)
        size = self.BIG if self.paths.get(stream_id) == b"/test.Big/Get" else 0
        self.unsent[stream_id] = struct.pack(">BL", 0, size) + bytes(size)
        self._send(stream_id)

    def _send(self, stream_id: int) -> None:
        data = self.unsent[stream_id]
        while data:
            size = min(
                len(data), self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if not size:
                self.unsent[stream_id] = data
                return
            self.h2.send_data(stream_id, data[:size])
            data = data[size:]
        del self.unsent[stream_id]
        self.h2.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


@contextlib.contextmanager
def scripted_replica(sock: socket.socket | None = None):
    """Serves `_ScriptedReplica` on `sock` (a listening socket), or on a port of its own."""
    loop = asyncio.new_event_loop()
    if sock is None:
        sock = socket.create_server(("127.0.0.1", 0))
    server = loop.run_until_complete(loop.create_server(_ScriptedReplica, sock=sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.close()


def test_a_call_cancelled_with_answer_data_unsent_gives_its_window_back_to_the_shared_connection():
    """Answer data the gateway holds for a client whose window is shut is still the replica's
    connection's window: a call cancelled then returns it, or every later call on that connection (which
    all clients share) would wait for a WINDOW_UPDATE that never comes."""
    with scripted_replica() as address:
        table = RouteTable(service(backend("iris-predictor-1", address)))
        with running_gateway(table) as gateway:
            # A client that takes no data: what the replica answers stays at the gateway.
            stingy = RawH2(gateway.port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
            try:
                big = _raw_call(stingy, b"/test.Big/Get")
                while not stingy.answers[big].headers:
                    stingy.receive()
                # The replica sent the whole answer before answering this one, on the same connection.
                probe = _raw_call(stingy, b"/test.Probe/Get")
                assert stingy.wait(probe).status[b"grpc-status"] == b"0"
                assert not stingy.answers[big].body
                stingy.conn.reset_stream(big, h2.errors.ErrorCodes.CANCEL)
                stingy.flush()
                # Another client's call through the same connection to the replica, with an answer
                # larger than what would be left of its window.
                with channel(gateway) as chan:
                    answer = chan.unary_unary("/test.Big/Get")(b"", timeout=10)
                assert len(answer) == _ScriptedReplica.BIG
            finally:
                stingy.close()
            settled(gateway, "iris-predictor-1", in_flight=0)


def _raw_call(client: RawH2, path: bytes) -> int:
    stream_id = client.conn.get_next_available_stream_id()
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", HOST.encode()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    client.conn.send_headers(stream_id, headers)
    client.conn.send_data(stream_id, struct.pack(">BL", 0, 0), end_stream=True)
    client.answers[stream_id] = Answer()
    client.flush()
    return stream_id


def test_calls_waiting_for_the_connection_a_cancelled_call_was_opening_open_their_own():
    """The first call to a replica opens the connection that the calls after it wait for. Cancelled
    by its client while it connects (a call's deadline, a rapid reset), it leaves them to connect
    themselves, instead of waiting for it for ever."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    # The listener accepts nothing yet and its backlog is full: a connection to it waits.
    queued = socket.create_connection(listener.getsockname(), timeout=5)
    table = RouteTable(service(backend("iris-predictor-1", address)))
    try:
        with running_gateway(table) as gateway, channel(gateway) as chan, ThreadPoolExecutor(1) as pool:
            client = RawH2(gateway.port)
            try:
                first = _raw_call(client, b"/test.Empty/Get")
                settled(gateway, "iris-predictor-1", in_flight=1)  # it is connecting
                second = pool.submit(chan.unary_unary("/test.Empty/Get"), b"", timeout=15)
                settled(gateway, "iris-predictor-1", in_flight=2)  # it waits for that connection
                client.conn.reset_stream(first, h2.errors.ErrorCodes.CANCEL)
                client.flush()
                settled(gateway, "iris-predictor-1", in_flight=1)
            finally:
                client.close()
            with scripted_replica(listener):
                assert second.result(30) == b""
                settled(gateway, "iris-predictor-1", in_flight=0)
    finally:
        queued.close()
        listener.close()
