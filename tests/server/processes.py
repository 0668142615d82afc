"""Starting real server processes on free loopback ports, and stopping them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from modelplane.local.ports import free_loopback_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """`modelplane serve ...` (or any command) running until `stop()`."""

    def __init__(self, args: Sequence[str], http_port: int, grpc_port: int | None, env: dict | None = None):
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"modelplane-test-{http_port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO_ROOT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def peak_memory(self) -> int:
        """The most memory the process has held (VmHWM, Linux), in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024

    def wait_ready(self, path: str = "/v2/health/ready", timeout: float = 60, status: int = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == status:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


def serve(
    *extra: str,
    grpc: bool = True,
    env: dict | None = None,
    ready_path: str = "/v2/health/ready",
    ready_status: int = 200,
    ready_timeout: float = 60,
) -> ServerProcess:
    http_port = free_loopback_port()
    grpc_port = free_loopback_port() if grpc else None
    args = [
        sys.executable,
        "-m",
        "modelplane",
        "serve",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port if grpc else -1),
        *extra,
    ]
    server = ServerProcess(args, http_port, grpc_port, env)
    try:
        server.wait_ready(ready_path, timeout=ready_timeout, status=ready_status)
    except Exception:
        server.stop()
        raise
    return server


def v1_predict(server: ServerProcess, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=30)


def v2_infer(server: ServerProcess, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


LOADABLE_TEST_MODELS = ("echo", "datetime", "slow", "stages", "buggy", "headers", "instances-kind")


def start_models_server(*extra: str) -> ServerProcess:
    """The test models of tests/server/models.py, each under its own name, in a real `ModelServer`."""
    http_port, grpc_port = free_loopback_port(), free_loopback_port()
    args = [
        sys.executable,
        "tests/server/models.py",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
    ]
    server = ServerProcess([*args, *extra], http_port, grpc_port)
    try:
        # The server loads its models one after another: a test may use any that can load.
        for name in LOADABLE_TEST_MODELS:
            server.wait_ready(f"/v2/models/{name}/ready")
    except Exception:
        server.stop()
        raise
    return server
