"""`modelplane batcher` as a process in front of a real HTTP server that counts what it is sent: concurrent
V1 predict requests reach it as one request and each caller gets its own predictions; anything else goes
through as it came and comes back as it was; an upstream error reaches every caller of a batch; made-up
model names do not grow the proxy; its metrics count what it batched, with the upstream server's."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelplane.agent.batcher_proxy import BatcherProxy
from modelplane.local.ports import free_loopback_port
from modelplane.protocol.http_server import HttpRequest
from modelplane.server import metrics
from modelplane.server.request_batching import KEPT_BATCHERS, BatchSettings


class Upstream(ThreadingHTTPServer):
    """Answers V1 predict requests by doubling each instance (or with a 500, once `failing`), a GET of
    the model with its own header, and 404 for anything else; keeps every request it got."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _UpstreamHandler)
        self.requests: list[tuple[str, str, dict, bytes]] = []  # method, path, headers, body
        self.failing = False
        self.lock = threading.Lock()

    def predicts(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for method, _, _, body in self.requests if method == "POST"]


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self._keep(body)
        if self.server.failing:
            self._answer(500, b'{"error": "the model broke"}', [("x-failed", "yes")])
            return
        payload = json.loads(body)
        if "instances" not in payload:
            self._answer(400, b'{"error": "no instances here"}')
            return
        answer = {"predictions": [2 * x for x in payload["instances"]], "model_name": "doubler"}
        self._answer(200, json.dumps(answer).encode())

    def do_GET(self) -> None:  # noqa: N802
        self._keep(b"")
        if self.path == "/v1/models/doubler":
            self._answer(200, b'{"name": "doubler", "ready": true}', [("x-upstream", "yes")])
        elif self.path == "/metrics":
            page = b"# TYPE doubler_loaded gauge\ndoubler_loaded 1.0\n"
            self._answer(200, page, content_type="text/plain; version=0.0.4")
        else:
            self._answer(404, b"nothing at " + self.path.encode(), content_type="text/plain")

    def _keep(self, body: bytes) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, self.path, dict(self.headers), body))

    def _answer(self, status: int, body: bytes, headers=(), content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def start_batcher(upstream: Upstream, *flags: str) -> tuple[subprocess.Popen, str]:
    port = free_loopback_port()
    argv = [sys.executable, "-m", "modelplane", "batcher", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--upstream", f"127.0.0.1:{upstream.server_address[1]}", *flags]
    process = subprocess.Popen(argv, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("modelplane batcher did not listen")


@pytest.fixture
def batcher(upstream):
    started = []

    def start(*flags: str) -> str:
        process, url = start_batcher(upstream, *flags)
        started.append(process)
        return url

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=30) == 0


async def predict_together(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(client.post(f"{url}/v1/models/doubler:predict", json=b) for b in bodies)
        )


def test_concurrent_requests_are_one_request_upstream(upstream, batcher):
    # A latency longer than any test: the batch starts once it holds its four instances.
    url = batcher("--max-batch-size", "4", "--max-latency", "600000")
    bodies = [{"instances": [1]}, {"instances": [10, 20]}, {"instances": [100]}]
    responses = asyncio.run(predict_together(url, bodies))

    assert [r.status_code for r in responses] == [200, 200, 200]
    answers = [r.json() for r in responses]
    assert sorted(a["predictions"] for a in answers) == [[2], [20, 40], [200]]
    assert all(a["model_name"] == "doubler" for a in answers)
    assert all(r.headers["content-type"] == "application/json" for r in responses)
    [stacked] = upstream.predicts()
    assert sorted(stacked["instances"]) == [1, 10, 20, 100]


def test_other_requests_pass_through(upstream, batcher):
    url = batcher("--max-batch-size", "4", "--max-latency", "600000")
    with httpx.Client(timeout=30) as client:
        model = client.get(f"{url}/v1/models/doubler", headers={"x-caller": "test"})
        missing = client.get(f"{url}/nowhere?x=1")
        # Not V1 instances: not batched, and the upstream server's own refusal comes back.
        inputs = client.post(f"{url}/v1/models/doubler:predict", json={"inputs": [1]})

    assert model.status_code == 200
    assert model.json() == {"name": "doubler", "ready": True}
    assert model.headers["x-upstream"] == "yes"
    assert (missing.status_code, missing.text) == (404, "nothing at /nowhere?x=1")
    assert missing.headers["content-type"] == "text/plain"
    assert (inputs.status_code, inputs.json()) == (400, {"error": "no instances here"})
    method, path, headers, _ = upstream.requests[0]
    assert (method, path, headers["x-caller"]) == ("GET", "/v1/models/doubler", "test")
    assert [request[1] for request in upstream.requests] == [
        "/v1/models/doubler",
        "/nowhere?x=1",
        "/v1/models/doubler:predict",
    ]


def test_an_upstream_error_reaches_every_caller(upstream, batcher):
    upstream.failing = True
    url = batcher("--max-batch-size", "3", "--max-latency", "600000")
    responses = asyncio.run(
        predict_together(url, [{"instances": [1]}, {"instances": [2]}, {"instances": [3]}])
    )

    for response in responses:
        assert response.status_code == 500
        assert response.json() == {"error": "the model broke"}
        assert response.headers["x-failed"] == "yes"
    # The batch, then each request on its own (a failed batch is retried request by request).
    sent = [sorted(p["instances"]) for p in upstream.predicts()]
    assert sent[0] == [1, 2, 3]
    assert sorted(sent[1:]) == [[1], [2], [3]]


def test_made_up_model_names_leave_no_batcher_behind(upstream):
    """A client that sends each request to a model name of its own does not grow the proxy without
    bound: past `KEPT_BATCHERS` paths, those with nothing waiting are dropped, and one that holds a
    waiting request is kept with it."""
    names = [f"made-up-{i}" for i in range(3 * KEPT_BATCHERS)]

    async def scenario() -> tuple[list[int], int, int]:
        settings = BatchSettings(max_batch_size=2, max_latency=600.0)
        proxy = BatcherProxy(f"127.0.0.1:{upstream.server_address[1]}", settings)
        try:
            # One instance: it waits for a second one to the same model.
            waiting = asyncio.ensure_future(proxy(v1_predict("kept", [1])))
            await asyncio.sleep(0)
            # Two instances each: a full batch, sent at once.
            statuses = [(await proxy(v1_predict(name, [1, 2]))).status for name in names]
            paths = proxy.batched_paths
            second = await proxy(v1_predict("kept", [2]))
            first = await waiting
            return statuses, paths, (first.status, second.status)
        finally:
            await proxy.aclose()

    statuses, paths, kept = asyncio.run(scenario())

    assert statuses == [200] * len(names)
    assert paths <= KEPT_BATCHERS
    assert kept == (200, 200)
    # The two requests to the kept model went as one batch: its batcher outlived the pruning.
    assert upstream.predicts()[-1] == {"instances": [1, 2]}
    assert not set(names) & set(metrics._by_model)


def v1_predict(model: str, instances: list) -> HttpRequest:
    body = json.dumps({"instances": instances}).encode()
    headers = [(b"content-type", b"application/json")]
    return HttpRequest(b"POST", f"/v1/models/{model}:predict".encode(), headers, body)


def test_with_wait_for_upstream_it_listens_once_the_upstream_server_does():
    """In a Knative pod the batcher's port is the one probed: it takes connections only once the model
    server does."""
    upstream_port, port = free_loopback_port(), free_loopback_port()
    argv = [sys.executable, "-m", "modelplane", "batcher", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--upstream", f"127.0.0.1:{upstream_port}", "--max-latency", "0", "--wait-for-upstream"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = None
    try:
        for line in process.stderr:
            if "waiting for the upstream server" in line:
                break
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        server = Upstream(upstream_port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with httpx.Client(timeout=30, transport=httpx.HTTPTransport(retries=100)) as client:
            answer = client.post(
                f"http://127.0.0.1:{port}/v1/models/doubler:predict", json={"instances": [3]}
            )
        assert (answer.status_code, answer.json()["predictions"]) == (200, [6])
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        if server is not None:
            server.shutdown()
            server.server_close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of the page at `port`'s /metrics, by name and labels."""
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert page.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
    }


DOUBLER = (("model_name", "doubler"),)


def test_its_metrics_count_the_requests_and_batches(upstream, batcher):
    metrics_port = free_loopback_port()
    url = batcher("--max-batch-size", "4", "--max-latency", "600000", "--metrics-port", str(metrics_port))

    async def scenario() -> tuple[list[int], float]:
        async with httpx.AsyncClient(timeout=60) as client:
            predict = f"{url}/v1/models/doubler:predict"
            first = [asyncio.ensure_future(client.post(predict, json={"instances": [x]})) for x in (1, 2)]
            waiting = 0.0
            while waiting < 2:  # both wait for two more instances
                await asyncio.sleep(0.05)
                waiting = (await asyncio.to_thread(scrape, metrics_port))[
                    ("modelplane_batcher_requests_waiting", DOUBLER)
                ]
            last = await client.post(predict, json={"instances": [10, 20]})
            return [r.status_code for r in [*(await asyncio.gather(*first)), last]], waiting

    statuses, waiting = asyncio.run(scenario())
    samples = scrape(metrics_port)

    assert statuses == [200, 200, 200]
    assert waiting == 2
    assert samples[("modelplane_batcher_requests_total", DOUBLER)] == 3
    assert samples[("modelplane_batcher_batches_total", DOUBLER)] == 1
    assert samples[("modelplane_batcher_batch_size_count", DOUBLER)] == 1
    assert samples[("modelplane_batcher_batch_size_sum", DOUBLER)] == 4
    assert samples[("modelplane_batcher_batch_size_bucket", (("le", "4.0"), *DOUBLER))] == 1
    assert samples[("modelplane_batcher_batch_size_bucket", (("le", "2.0"), *DOUBLER))] == 0
    assert samples[("modelplane_batcher_wait_seconds_count", DOUBLER)] == 3
    assert samples[("modelplane_batcher_wait_seconds_sum", DOUBLER)] > 0
    assert samples[("modelplane_batcher_requests_waiting", DOUBLER)] == 0
    # With the upstream server's own metrics, read when scraped.
    assert samples[("doubler_loaded", ())] == 1
    assert samples[("modelplane_scrape_up", ())] == 1
    [stacked] = upstream.predicts()
    assert sorted(stacked["instances"]) == [1, 2, 10, 20]


def test_its_metrics_count_the_requests_the_upstream_server_failed():
    port, metrics_port, nobody = free_loopback_port(), free_loopback_port(), free_loopback_port()
    argv = [sys.executable, "-m", "modelplane", "batcher", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--upstream", f"127.0.0.1:{nobody}", "--max-batch-size", "1", "--max-latency", "0"]
    argv += ["--metrics-port", str(metrics_port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=30, transport=httpx.HTTPTransport(retries=100)) as client:
            statuses = [
                client.post(
                    f"http://127.0.0.1:{port}/v1/models/doubler:predict", json={"instances": [x]}
                ).status_code
                for x in range(3)
            ]
            # Passed on, not batched: counted too.
            statuses.append(client.get(f"http://127.0.0.1:{port}/v1/models/doubler").status_code)
        samples = scrape(metrics_port)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0

    assert statuses == [502, 502, 502, 502]
    assert samples[("modelplane_batcher_upstream_errors_total", (("reason", "connect"),))] == 4
    assert samples[("modelplane_batcher_requests_total", DOUBLER)] == 3
    assert samples[("modelplane_scrape_up", ())] == 0
