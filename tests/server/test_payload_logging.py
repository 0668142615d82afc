"""Payload logging in `modelplane serve` itself (`--payload-log-*`, what the operator gives a built-in
runtime's pod for a component's `logger`): each request and answer, REST or gRPC, reaches a real
CloudEvents receiver as the gateway sends them, a streamed answer is logged once whole, and bad flags stop the server with
one line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import grpc
import httpx
import pytest

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.server.payload_logging import add_flags, spec_from
from tests.server.processes import REPO_ROOT, serve
from tests.telemetry.cloudevents_receiver import CloudEventsReceiver

STATUS_MODEL = str(REPO_ROOT / "tests" / "local" / "gateway" / "status_model.py") + ":StatusModel"
ALPHABET_MODEL = str(REPO_ROOT / "tests" / "server" / "alphabet_generator.py") + ":AlphabetModel"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


def test_each_request_and_answer_reaches_the_receiver():
    receiver = CloudEventsReceiver().start()
    server = serve(
        "--model-class",
        STATUS_MODEL,
        "--model-name",
        "status",
        "--payload-log-url",
        receiver.url,
        "--payload-log-inference-service",
        "status",
        "--payload-log-namespace",
        "ml",
        "--payload-log-metadata-headers",
        "x-tenant",
        "--payload-log-metadata-annotations",
        "team=fraud",
        env={"K_REVISION": "status-predictor-00001"},
    )
    try:
        url = f"{server.url}/v1/models/status:predict"
        ok = httpx.post(url, json={"instances": [[1]]}, headers={"x-request-id": "ok-1", "x-tenant": "acme"})
        bad = httpx.post(url, json={"instances": [["bad"]]}, headers={"x-request-id": "bad-1"})
        assert (ok.status_code, bad.status_code) == (200, 400)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = InferenceStub(channel)
            assert stub.ModelReady(pb.ModelReadyRequest(name="status"), timeout=30).ready  # not logged
            request = pb.ModelInferRequest(model_name="status")
            request.inputs.add(name="x", datatype="FP32", shape=[1, 1]).contents.fp32_contents.append(2.0)
            stub.ModelInfer(request, metadata=[("x-request-id", "grpc-ok")], timeout=30)
            request.inputs[0].datatype = "BYTES"
            request.inputs[0].contents.Clear()
            request.inputs[0].contents.bytes_contents.append(b"bad")
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request, metadata=[("x-request-id", "grpc-bad")], timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        events = receiver.wait_for(8)
    finally:
        server.stop()
        receiver.stop()
    by_id: dict[str, dict] = {}
    for event in events:
        by_id.setdefault(event.get_id(), {})[event.get_type()] = event
    assert set(by_id) == {"ok-1", "bad-1", "grpc-ok", "grpc-bad"}
    request, response = by_id["ok-1"][REQUEST_TYPE], by_id["ok-1"][RESPONSE_TYPE]
    assert request.get_data() == {"instances": [[1]]} and response.get_data() == {"predictions": [[1]]}
    assert request.get_extension("inferenceservicename") == "status"
    assert request.get_extension("namespace") == "ml" and request.get_extension("component") == "predictor"
    assert json.loads(request.get_extension("metadata")) == {"x-tenant": ["acme"]}
    assert json.loads(request.get_extension("annotations")) == {"team": "fraud"}
    assert response.get_extension("statuscode") == "200"
    assert response.get_extension("revision") == "status-predictor-00001"
    assert by_id["bad-1"][RESPONSE_TYPE].get_extension("statuscode") == "400"
    model_infer = "/inference.GRPCInferenceService/ModelInfer"
    for request_id, status, code in (("grpc-ok", "200", "0"), ("grpc-bad", "400", "3")):
        request, response = by_id[request_id][REQUEST_TYPE], by_id[request_id][RESPONSE_TYPE]
        assert request.get_extension("grpcmethod") == response.get_extension("grpcmethod") == model_infer
        assert request.get_extension("namespace") == "ml"
        assert (response.get_extension("statuscode"), response.get_extension("grpcstatus")) == (status, code)
        assert response.get_extension("revision") == "status-predictor-00001"
    answer = by_id["grpc-ok"][RESPONSE_TYPE].get_data()
    answer = answer.encode() if isinstance(answer, str) else answer  # the SDK gives UTF-8 bodies as text
    assert list(pb.ModelInferResponse.FromString(answer[5:]).outputs[0].contents.fp32_contents) == [2.0]
    assert by_id["grpc-bad"][RESPONSE_TYPE].get_extension("grpcmessage") == "the instance is bad"


def test_a_body_that_cannot_be_decoded_is_logged_with_its_refusal():
    receiver = CloudEventsReceiver().start()
    server = serve("--model-class", STATUS_MODEL, "--model-name", "status", "--payload-log-url", receiver.url)
    try:
        headers = {"content-type": "application/json", "content-encoding": "gzip", "x-request-id": "not-gzip"}
        url = f"{server.url}/v1/models/status:predict"
        assert httpx.post(url, content=b"xx", headers=headers).status_code == 400
        events = receiver.wait_for(2)
    finally:
        server.stop()
        receiver.stop()
    by_type = {event.get_type(): event for event in events}
    assert by_type[REQUEST_TYPE].get_id() == by_type[RESPONSE_TYPE].get_id() == "not-gzip"
    assert by_type[REQUEST_TYPE].get_data() == "xx"  # as it came
    assert by_type[RESPONSE_TYPE].get_extension("statuscode") == "400"
    assert "not valid gzip" in by_type[RESPONSE_TYPE].get_data()["error"]


def test_a_body_over_the_size_limit_is_logged_left_out_with_its_413():
    receiver = CloudEventsReceiver().start()
    server = serve(
        *("--model-class", STATUS_MODEL, "--model-name", "status", "--payload-log-url", receiver.url),
        *("--max-body-size", "1000", "--grpc-max-message-length", "1000"),
    )
    try:
        headers = {"content-type": "application/json", "x-request-id": "too-large"}
        url = f"{server.url}/v1/models/status:predict"
        body = b"[" + b"1," * 2500 + b"1]"
        assert httpx.post(url, content=body, headers=headers).status_code == 413
        request = pb.ModelInferRequest(model_name="status")
        request.inputs.add(name="x", datatype="FP32", shape=[1, 500]).contents.fp32_contents.extend(
            [1.0] * 500
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        with channel, pytest.raises(grpc.RpcError) as refused:
            InferenceStub(channel).ModelInfer(
                request, metadata=[("x-request-id", "grpc-too-large")], timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        events = receiver.wait_for(4)
    finally:
        server.stop()
        receiver.stop()
    by_id: dict[str, dict] = {}
    for event in events:
        by_id.setdefault(event.get_id(), {})[event.get_type()] = event
    by_type = by_id["too-large"]
    assert by_type[REQUEST_TYPE].get_extension("dataomitted") == str(len(body))
    assert not by_type[REQUEST_TYPE].get_data()
    assert by_type[RESPONSE_TYPE].get_extension("statuscode") == "413"
    assert by_type[RESPONSE_TYPE].get_data() == {"error": "the request body exceeds 1000 bytes"}
    by_type = by_id["grpc-too-large"]  # refused from its length prefix, unread
    assert by_type[REQUEST_TYPE].get_extension("dataomitted") == str(5 + request.ByteSize())
    assert by_type[REQUEST_TYPE].get_extension("grpcmethod") == "/inference.GRPCInferenceService/ModelInfer"
    assert by_type[RESPONSE_TYPE].get_extension("grpcstatus") == "8"
    assert by_type[RESPONSE_TYPE].get_extension("grpcmessage") == refused.value.details()


def test_a_streamed_answer_is_logged_once_whole(tmp_path):
    log = tmp_path / "events.jsonl"
    server = serve(
        "--model-class",
        ALPHABET_MODEL,
        "--model-name",
        "alphabet",
        "--payload-log-url",
        log.as_uri(),
        "--payload-log-mode",
        "response",
        grpc=False,
    )
    try:
        body = {"model": "alphabet", "prompt": "abc", "max_tokens": 3, "stream": True}
        streamed = httpx.post(f"{server.url}/openai/v1/completions", json=body).text
        deadline = time.monotonic() + 10
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    (line,) = log.read_text().splitlines()
    event = json.loads(line)
    assert event["type"] == RESPONSE_TYPE and event["datacontenttype"].startswith("text/event-stream")
    import base64

    assert base64.b64decode(event["data_base64"]).decode() == streamed
    assert streamed.endswith("data: [DONE]\n\n")


def test_a_file_sink_moved_away_as_logrotate_does_is_begun_again(tmp_path):
    log = tmp_path / "events.jsonl"
    server = serve(
        "--model-class", STATUS_MODEL, "--model-name", "status", "--payload-log-url", log.as_uri(), grpc=False
    )

    def lines_in(path):
        deadline = time.monotonic() + 30
        while not (path.exists() and len(path.read_text().splitlines()) == 2):
            assert time.monotonic() < deadline, f"{path} never had its two events"
            time.sleep(0.05)
        return [json.loads(line)["id"] for line in path.read_text().splitlines()]

    try:
        url = f"{server.url}/v1/models/status:predict"
        httpx.post(url, json={"instances": [[1]]}, headers={"x-request-id": "before"})
        assert lines_in(log) == ["before", "before"]
        log.rename(tmp_path / "events.jsonl.1")
        httpx.post(url, json={"instances": [[2]]}, headers={"x-request-id": "after"})
        assert lines_in(log) == ["after", "after"]
    finally:
        server.stop()
    assert lines_in(tmp_path / "events.jsonl.1") == ["before", "before"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--payload-log-url", "ftp://x/y"], "--payload-log-url: 'ftp://x/y': payload logs go to"),
        (
            ["--payload-log-url", "s3://logs/p", "--payload-log-store-format", "xml"],
            "is not one of json, csv, parquet",
        ),
        (
            ["--payload-log-url", "http://r/", "--payload-log-metadata-annotations", "team"],
            "is not name=value",
        ),
    ],
)
def test_bad_payload_log_flags_stop_serve_with_one_line(flags, message):
    argv = [sys.executable, "-m", "modelplane", "serve", "--model-class", STATUS_MODEL, *flags]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_parquet_flags_without_pyarrow_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # what a missing package looks like
    parser = argparse.ArgumentParser()
    add_flags(parser)
    flags = ["--payload-log-url", "s3://logs/p", "--payload-log-store-format", "parquet"]
    with pytest.raises(ValueError, match=r"pip install 'modelplane\[parquet\]'"):
        spec_from(parser.parse_args(flags))
    marshalled = spec_from(parser.parse_args([*flags, "--payload-log-marshaller-url", "http://m/"]))
    assert marshalled.blob.format == "parquet"


def _payload_log_samples(server_url: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server_url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("modelplane_payload_log_")
        for sample in family.samples
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_what_the_payload_logger_sent_and_dropped_is_on_the_servers_metrics(workers):
    """With several workers, the scrape of one shows what all of them sent."""
    receiver = CloudEventsReceiver().start()
    server = serve(
        "--model-class",
        STATUS_MODEL,
        "--model-name",
        "status",
        "--payload-log-url",
        receiver.url,
        "--workers",
        str(workers),
    )
    requests = 8
    try:
        for index in range(requests):  # a connection each: the kernel spreads them over the workers
            response = httpx.post(f"{server.url}/v1/models/status:predict", json={"instances": [[index]]})
            assert response.status_code == 200
        receiver.wait_for(2 * requests)
        sent = ("modelplane_payload_log_events_sent_total", (("sink", receiver.url),))
        deadline = time.monotonic() + 30  # the receiver keeps each event before it answers it
        samples = _payload_log_samples(server.url)
        while samples.get(sent) != 2 * requests and time.monotonic() < deadline:
            time.sleep(0.05)
            samples = _payload_log_samples(server.url)
    finally:
        server.stop()
        receiver.stop()
    assert samples[sent] == 2 * requests
    dropped = "modelplane_payload_log_events_dropped_total"
    assert samples[(dropped, (("reason", "queue_full"), ("sink", receiver.url)))] == 0
    assert samples[("modelplane_payload_log_events_queued", (("sink", receiver.url),))] == 0
