"""`modelplane logger`: the payload logger a cluster's pod gets in front of a model server that does not
log itself. A real model server, the logger as its own process in front of it, and a CloudEvents
receiver (the `cloudevents` SDK) behind."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelplane.local.ports import free_loopback_port
from tests.server.processes import REPO_ROOT, ServerProcess, serve
from tests.telemetry.cloudevents_receiver import CloudEventsReceiver

STATUS_MODEL = str(REPO_ROOT / "tests" / "local" / "gateway" / "status_model.py") + ":StatusModel"
ALPHABET_MODEL = str(REPO_ROOT / "tests" / "server" / "alphabet_generator.py") + ":AlphabetModel"
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


def start_logger(component_port: int, *flags: str, env: dict | None = None) -> ServerProcess:
    port = free_loopback_port()
    args = [sys.executable, "-m", "modelplane", "logger", "--host", "127.0.0.1", "--port", str(port)]
    logger = ServerProcess([*args, "--component-port", str(component_port), *flags], port, None, env)
    try:
        logger.wait_ready("/v2/health/ready")
    except Exception:
        logger.stop()
        raise
    return logger


def logged(receiver: CloudEventsReceiver, ids: tuple[str, ...], timeout: float = 30) -> dict[str, dict]:
    """Event type -> event, per request id, once each of `ids` has its request and its response."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, dict] = {}
        for event in list(receiver.events):
            found.setdefault(event.get_id(), {})[event.get_type()] = event
        if all(len(found.get(wanted, {})) == 2 for wanted in ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_requests_pass_through_whatever_their_host_and_are_logged_with_their_answers():
    receiver = CloudEventsReceiver().start()
    server = serve("--model-class", STATUS_MODEL, "--model-name", "status", grpc=False)
    logger = None
    try:
        logger = start_logger(
            server.http_port,
            "--payload-log-url",
            receiver.url,
            "--payload-log-inference-service",
            "status",
            "--payload-log-namespace",
            "ml",
            "--payload-log-metadata-headers",
            "x-tenant",
            env={"K_REVISION": "status-predictor-00001"},
        )
        url = f"{logger.url}/v1/models/status:predict"
        service_host = {"host": "status-predictor.ml.svc.cluster.local"}
        ok = httpx.post(
            url, json={"instances": [[1]]}, headers={**service_host, "x-request-id": "ok-1", "x-tenant": "a"}
        )
        bad = httpx.post(
            url, json={"instances": [["bad"]]}, headers={"host": "10.0.0.7:9081", "x-request-id": "b-1"}
        )
        assert (ok.status_code, ok.json()) == (200, {"predictions": [[1]]})
        assert bad.status_code == 400 and bad.json() == {"error": "the instance is bad"}
        found = logged(receiver, ("ok-1", "b-1"))
    finally:
        if logger is not None:
            logger.stop()
        server.stop()
        receiver.stop()
    request, response = found["ok-1"][REQUEST_TYPE], found["ok-1"][RESPONSE_TYPE]
    assert request.get_data() == {"instances": [[1]]} and response.get_data() == {"predictions": [[1]]}
    assert request.get_extension("inferenceservicename") == "status"
    assert request.get_extension("namespace") == "ml" and request.get_extension("component") == "predictor"
    assert request.get_extension("metadata") == '{"x-tenant":["a"]}'
    assert response.get_extension("statuscode") == "200"
    assert response.get_extension("revision") == "status-predictor-00001"
    assert found["b-1"][RESPONSE_TYPE].get_extension("statuscode") == "400"


def test_a_stream_passes_through_as_it_is_written_and_is_logged_whole(tmp_path):
    server = serve("--model-class", ALPHABET_MODEL, "--model-name", "alphabet", grpc=False)
    logger = None
    log_file = tmp_path / "payloads.jsonl"
    try:
        logger = start_logger(
            server.http_port, "--payload-log-url", f"file://{log_file}", "--payload-log-mode", "response"
        )
        body = {"model": "alphabet", "prompt": "a", "max_tokens": 3, "stream": True}
        with httpx.stream(
            "POST", f"{logger.url}/openai/v1/completions", json=body, headers={"x-request-id": "s-1"}
        ) as answer:
            assert answer.status_code == 200
            events = [line for line in answer.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) == 4
    finally:
        if logger is not None:
            logger.stop()  # delivers what is queued
        server.stop()
    records = [line for line in log_file.read_text().splitlines() if '"s-1"' in line]
    assert len(records) == 1 and RESPONSE_TYPE in records[0]


def test_with_wait_for_component_the_logger_listens_once_the_model_server_does_and_probes_are_not_logged(
    tmp_path,
):
    """In a Knative pod the logger's port is the one the pod is probed on."""
    component_port = free_loopback_port()
    log_file = tmp_path / "payloads.jsonl"
    port = free_loopback_port()
    args = [sys.executable, "-m", "modelplane", "logger", "--host", "127.0.0.1", "--port", str(port)]
    flags = ["--component-port", str(component_port), "--wait-for-component"]
    logger = ServerProcess([*args, *flags, "--payload-log-url", f"file://{log_file}"], port, None)
    server = None
    try:
        for _ in range(5):
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{logger.url}/v2/health/ready", timeout=1)
            time.sleep(0.1)
        assert logger.process.poll() is None
        serving = [sys.executable, "-m", "modelplane", "serve", "--http-port", str(component_port)]
        server = ServerProcess(
            [*serving, "--grpc-port", "-1", "--model-class", STATUS_MODEL, "--model-name", "status"],
            component_port,
            None,
        )
        logger.wait_ready("/v2/health/ready")  # through the logger: the model server's answer
        ready = f"{logger.url}/v2/models/status/ready"
        assert (
            httpx.get(ready, headers={"k-kubelet-probe": "queue", "x-request-id": "p-1"}).status_code == 200
        )
        assert (
            httpx.get(ready, headers={"user-agent": "kube-probe/1.31", "x-request-id": "p-2"}).status_code
            == 200
        )
        predicted = httpx.post(
            f"{logger.url}/v1/models/status:predict",
            json={"instances": [[1]]},
            headers={"x-request-id": "ok-1"},
        )
        assert predicted.status_code == 200
    finally:
        logger.stop()  # delivers what is queued
        if server is not None:
            server.stop()
    records = log_file.read_text()
    assert '"ok-1"' in records
    assert '"p-1"' not in records and '"p-2"' not in records


def scraped(url: str) -> dict[str, list]:
    """Family name -> samples, from a scrape of `url`."""
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def test_the_metrics_port_serves_the_loggers_metrics_with_the_model_servers():
    receiver = CloudEventsReceiver().start()
    server = serve("--model-class", STATUS_MODEL, "--model-name", "status", grpc=False)
    metrics_port = free_loopback_port()
    logger = None
    try:
        logger = start_logger(
            server.http_port, "--payload-log-url", receiver.url, "--metrics-port", str(metrics_port)
        )
        url = f"http://127.0.0.1:{metrics_port}/metrics"

        def answered() -> float:
            requests = scraped(url)["modelplane_gateway_requests"]
            return sum(
                s.value for s in requests if s.name.endswith("_total") and s.labels.get("code") == "200"
            )

        before = answered()  # the readiness probes that came through
        for index in range(3):
            answer = httpx.post(
                f"{logger.url}/v1/models/status:predict",
                json={"instances": [[1]]},
                headers={"x-request-id": f"m-{index}"},
            )
            assert answer.status_code == 200
        logged(receiver, ("m-0", "m-1", "m-2"))
        assert answered() == before + 3
        families = scraped(url)
        sent = families["modelplane_payload_log_events_sent"]
        assert sum(s.value for s in sent if s.name.endswith("_total")) == 2 * (before + 3)  # each logged
        served = [s for s in families["modelplane_requests"] if s.name.endswith("_total")]
        assert sum(s.value for s in served if s.labels["model_name"] == "status") == 3
        assert [s.value for s in families["modelplane_scrape_up"]] == [1]
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/other").status_code == 404

        server.stop()  # the logger's own metrics are still served, and say the model server's were not
        families = scraped(url)
        assert [s.value for s in families["modelplane_scrape_up"]] == [0]
        assert "modelplane_gateway_requests" in families and "modelplane_requests" not in families
    finally:
        if logger is not None:
            logger.stop()
        server.stop()
        receiver.stop()


def test_bad_flags_stop_the_logger_with_one_line():
    for flags, message in (
        ([], "--payload-log-url is required"),
        (["--payload-log-url", "ftp://x/y"], "payload logs go to"),
        (
            ["--payload-log-url", "http://r/", "--component-port", "70000"],
            "--component-port 70000 is not a port",
        ),
        (
            ["--payload-log-url", "http://r/", "--response-timeout", "0"],
            "--response-timeout must be more than 0",
        ),
        (["--payload-log-url", "http://r/", "--metrics-port", "-1"], "--metrics-port -1 is not a port"),
        (["--payload-log-url", "http://r/", "--metrics-path", "metrics"], "must begin with /"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", "logger", *flags], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("modelplane logger: ") and message in result.stderr
        assert "Traceback" not in result.stderr
