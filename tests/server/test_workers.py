"""`--workers N`: N processes on the same ports, metrics summed across them, a dead worker replaced."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx

from modelplane.protocol.grpc.service import InferenceStub
from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve
from tests.server.test_grpc import iris_request


def worker_pids(parent: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True
    )
    return [int(line.split()[0]) for line in result.stdout.splitlines() if "spawn_main" in line]


def wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError


def test_two_workers_share_the_ports(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", "--workers", "2")
    try:
        pids = wait_for(lambda: (p := worker_pids(server.process.pid)) and len(p) == 2 and p)
        environ = Path(f"/proc/{pids[0]}/environ").read_bytes()
        metrics_dir = Path(re.search(rb"PROMETHEUS_MULTIPROC_DIR=([^\0]+)", environ).group(1).decode())
        assert metrics_dir.is_dir()

        # Every worker must be ready before counting: fresh connections land on either of them,
        # so twenty ready answers in a row mean both have loaded the model.
        def all_workers_ready() -> bool:
            return all(httpx.get(server.url + "/v2/health/ready").status_code == 200 for _ in range(20))

        wait_for(all_workers_ready)
        for _ in range(40):
            with httpx.Client() as client:  # a new connection each time, spread over the workers
                response = client.post(server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS})
                assert response.json() == {"predictions": [1, 1]}
        for _ in range(20):  # gRPC too: a new channel (and connection) each time
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                answer = InferenceStub(channel).ModelInfer(iris_request(), timeout=10)
                assert list(answer.outputs[0].contents.int64_contents) == [1, 1]
        text = httpx.get(server.url + "/metrics").text
        counted = re.search(
            r'modelplane_requests_total\{code="200",model_name="iris",protocol="v1"\} (\S+)', text
        )
        assert float(counted.group(1)) == 40.0

        os.kill(pids[0], signal.SIGKILL)
        replaced = wait_for(
            lambda: (p := worker_pids(server.process.pid)) and len(p) == 2 and pids[0] not in p and p
        )
        assert len(replaced) == 2
        wait_for(all_workers_ready)  # the new worker too, not only the one that stayed
        response = httpx.post(server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS})
        assert response.json() == {"predictions": [1, 1]}
    finally:
        assert server.stop() == 0
    assert not metrics_dir.exists(), "the workers' metric files outlived the server"


def test_a_port_in_use_is_refused_in_one_line(sklearn_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "modelplane",
                "serve",
                "--model-dir",
                str(sklearn_dir),
                "--model-name",
                "iris",
            ]
            + ["--http-port", str(port), "--grpc-port", "-1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"modelplane serve: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


SLOW_TO_LOAD = """
import time

from modelplane.server.model import Model


class SlowToLoad(Model):
    def load(self) -> bool:
        time.sleep(4)
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [len(payload["instances"])]}
"""


def test_a_worker_started_again_takes_no_request_before_its_model_is_loaded(tmp_path):
    """While a replacement worker loads its model, the worker that kept serving answers everything: none
    of the requests sent meanwhile is answered "not ready"."""
    (tmp_path / "slow_to_load.py").write_text(SLOW_TO_LOAD)
    model_class = f"{tmp_path / 'slow_to_load.py'}:SlowToLoad"
    server = serve("--model-class", model_class, "--model-name", "slow", "--workers", "2", ready_timeout=90)
    try:
        pids = wait_for(lambda: (p := worker_pids(server.process.pid)) and len(p) == 2 and p)
        wait_for(
            lambda: all(httpx.get(server.url + "/v2/health/ready").status_code == 200 for _ in range(20))
        )
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: (p := worker_pids(server.process.pid)) and len(p) == 2 and pids[0] not in p)
        statuses = []
        deadline = time.monotonic() + 8  # past the replacement's 4 s load
        while time.monotonic() < deadline:
            with httpx.Client() as client:  # a new connection each time, for either worker to take
                response = client.post(server.url + "/v1/models/slow:predict", json={"instances": [[1]]})
                statuses.append(response.status_code)
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
    finally:
        assert server.stop() == 0
