"""Starting and stopping the real storage servers the tests fetch from, on loopback."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelplane.local.ports import free_loopback_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def wait_for_port(port: int, process: subprocess.Popen, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.args} did not listen on {port} within {deadline}s")


class Server:
    """A server process. `ready` is a regex its output prints once listening, with the port as group 1."""

    def __init__(
        self,
        args: list[str],
        *,
        ready: str | None = None,
        port: int | None = None,
        cwd=None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.port = port or 0
        try:
            if ready is not None:
                self.port = self._read_port(re.compile(ready))
            wait_for_port(self.port, self.process)
        except BaseException:
            self.stop()
            raise
        # Keep draining the output so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_port(self, pattern: re.Pattern[str], deadline: float = 30.0) -> int:
        found: list[int] = []

        def scan() -> None:
            for line in self.process.stdout:  # type: ignore[union-attr]
                match = pattern.search(line)
                if match:
                    found.append(int(match[1]))
                    return

        reader = threading.Thread(target=scan, daemon=True)
        reader.start()
        reader.join(deadline)
        if not found:
            raise RuntimeError(f"{self.args[0]} did not report its port within {deadline}s")
        return found[0]

    def _drain(self) -> None:
        for _ in self.process.stdout or ():
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_http(root: Path, *extra: str, port: int | None = None) -> Server:
    args = [sys.executable, str(HERE / "http_server.py"), str(root), *extra]
    if port:
        args += ["--port", str(port)]
    return Server(args, ready=r"listening on (\d+)")


def start_moto(*, unauthenticated_requests: int | None = None) -> Server:
    """moto's S3 server; with `unauthenticated_requests`, only that many requests go without valid
    credentials (IAM users and keys to be made with them), every later one is checked as AWS does."""
    env = {}
    if unauthenticated_requests is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(unauthenticated_requests)
    return Server(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        ready=r"Running on http://127\.0\.0\.1:(\d+)",
        env=env,
    )


def start_gcs_emulator() -> Server:
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        _missing("gcp-storage-emulator", "pip install -e '.[dev]'")
    port = free_loopback_port()
    args = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port)]
    return Server([*args, "--in-memory"], port=port)


def start_azurite(workdir: Path) -> Server:
    executable = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"
    if not executable.exists():
        _missing("Azurite", "bash scripts/setup-dev.sh (it npm-installs azurite@3 into .cache/npm)")
    args = [
        str(executable),
        "--blobHost", "127.0.0.1", "--blobPort", "0",
        "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]  # fmt: skip
    return Server(args, ready=r"listens on http://127\.0\.0\.1:(\d+)", cwd=workdir)


def start_registry(workdir: Path, htpasswd: Path | None = None) -> Server:
    """The CNCF distribution registry (Debian's docker-registry), storing in `workdir`; with `htpasswd`,
    it asks for Basic credentials."""
    executable = shutil.which("docker-registry") or shutil.which("registry")
    if executable is None:
        _missing("docker-registry", "bash scripts/setup-dev.sh (it apt-installs docker-registry)")
    port = free_loopback_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "modelplane-tests", "path": str(htpasswd)}}
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    return Server([executable, "serve", str(workdir / "config.yml")], port=port)


def _missing(what: str, how: str):
    pytest.fail(f"{what} is not installed; run: {how}", pytrace=False)


class CuttingProxy:
    """A TCP proxy on loopback that drops the first connection to send more than `cut_after` bytes back."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if downstream:
                    with self._lock:
                        cut = self.cuts == 0 and sent + len(data) > self.cut_after
                        if cut:
                            self.cuts += 1
                    if cut:
                        sink.sendall(data[: self.cut_after - sent])
                        break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        self._listener.close()


class TricklingServer:
    """An HTTP server on loopback that sends every GET a large file a byte at a time, until `stop()`: a
    model whose download takes as long as a test runs."""

    def __init__(self, size: int = 100_000_000, interval: float = 0.2) -> None:
        self.size = size
        self.interval = interval
        self.downloads = 0  # the downloads under way (a client that went away ends its own)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        with client:
            try:
                client.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.size}\r\nContent-Type: application/octet-stream\r\n\r\n"
                client.sendall(head.encode())
                with self._lock:
                    self.downloads += 1
                try:
                    while not self._stopping.wait(self.interval):
                        client.sendall(b"x")
                finally:
                    with self._lock:
                        self.downloads -= 1
            except OSError:
                pass

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
