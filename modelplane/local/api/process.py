"""The control-plane API in a child process of its own, for tests and tools that need a
throwaway control plane: `with ApiProcess(home) as api: httpx.get(api.url + "/healthz")`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class ApiProcess:
    def __init__(
        self,
        home: str | Path,
        port: int = 0,
        auth_token_file: str | Path | None = None,
        tls: tuple[Path, Path] | None = None,
    ):
        self.home = Path(home)
        self.port = port
        self.auth_token_file = auth_token_file
        self.tls = tls  # (certificate, key)
        self.url = ""
        self.killed = False  # whether the last stop had to kill it
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Starts the server and returns its URL once it listens."""
        command = [sys.executable, "-m", "modelplane.local.api.server", "--home", str(self.home)]
        command += ["--port", str(self.port)]
        if self.auth_token_file is not None:
            command += ["--auth-token-file", str(self.auth_token_file)]
        if self.tls is not None:
            command += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the control-plane API did not start (it printed {line!r})")
        self.url = line.removeprefix("listening on ").strip()
        return self.url

    def stop(self) -> None:
        """Stops the server gracefully (SIGTERM), or kills it if it does not go."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.killed = True
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> ApiProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
