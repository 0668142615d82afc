"""Real processes for the router tests: stub services and `modelplane router`, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STUB_SCRIPT = Path(__file__).with_name("stub_service.py")
STARTUP_TIMEOUT = 30


class Process:
    """A child process that prints `... http://HOST:PORT` on its first line once it listens."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"{args[:4]} did not start: {line}{self.proc.stderr.read()}")
        self.url = line.strip().rsplit(" ", 1)[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class Stub(Process):
    def __init__(self) -> None:
        super().__init__([sys.executable, str(STUB_SCRIPT)])

    def at(self, path: str) -> str:
        return self.url + path

    def requests(self) -> list[dict]:
        """The requests received since the last call."""
        return httpx.get(self.url + "/__log?clear=1").json()


class Router(Process):
    def __init__(self, spec: dict, env: dict[str, str] | None = None, drain_seconds: float = 0) -> None:
        args = [sys.executable, "-m", "modelplane", "router", "--graph-json", json.dumps(spec)]
        args += ["--host", "127.0.0.1", "--port", "0", "--drain-seconds", str(drain_seconds)]
        super().__init__(args, env)
        self.client = httpx.Client(base_url=self.url, timeout=STARTUP_TIMEOUT)

    def post(self, body: object = None, *, content: bytes | None = None, **kwargs) -> httpx.Response:
        if content is None:
            content = json.dumps(body).encode()
        return self.client.post("/", content=content, **kwargs)

    def stop(self) -> None:
        self.client.close()
        super().stop()


@pytest.fixture(scope="session")
def stub() -> Iterator[Stub]:
    service = Stub()
    yield service
    service.stop()


@pytest.fixture
def start_router(stub: Stub) -> Iterator:
    """Start a router for a graph spec; stopped at the end of the test."""
    started: list[Router] = []
    stub.requests()  # forget what earlier tests sent

    def start(spec: dict, env: dict[str, str] | None = None, drain_seconds: float = 0) -> Router:
        router = Router(spec, env, drain_seconds)
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


def sequence(*steps: dict) -> dict:
    return {"routerType": "Sequence", "steps": list(steps)}


def graph(root: dict, **nodes: dict) -> dict:
    return {"nodes": {"root": root, **nodes}}
