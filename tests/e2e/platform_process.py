"""`modelplane up` as a child process on OS-chosen ports, and the `modelplane` CLI against it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


class PlatformProcess:
    """`modelplane up --home HOME` until `stop()`; its log is `HOME/up.log`."""

    def __init__(self, home: Path, *options: str):
        self.home = home
        self.options = options  # more `modelplane up` options
        self.api_url = ""
        self.gateway_url = ""
        self.log_path = home / "up.log"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "MODELPLANE_HOME": str(self.home), "MODELPLANE_API": self.api_url}
        env.pop("MODELPLANE_PVC_DIR", None)
        env.pop("MODELPLANE_CACHE_DIR", None)
        return env

    def start(self, timeout: float = 120, *, own_group: bool = False) -> PlatformProcess:
        """Starts it and waits until it is up; `own_group`: in a process group of its own, as a shell
        starts a command (so that a signal to the group reaches what did not leave it)."""
        command = [
            sys.executable,
            "-m",
            "modelplane",
            "up",
            "--api-port",
            "0",
            "--gateway-port",
            "0",
            *self.options,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                cwd=REPO_ROOT,
                text=True,
                process_group=0 if own_group else None,
            )
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and not line:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
        if not line.startswith("modelplane is up: "):
            self.stop()
            raise RuntimeError(f"modelplane up did not start: {line!r}\n{self.log()}")
        api, gateway = line.removeprefix("modelplane is up: ").strip().split(", ")
        self.api_url = api.removeprefix("API ")
        self.gateway_url = gateway.removeprefix("gateway ")
        return self

    def stop(self, timeout: float = 120) -> int | None:
        """SIGTERM and wait: `modelplane up` stops every replica before it exits."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO_ROOT,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"modelplane {' '.join(args)} failed:\n{result.stderr}\n--- up.log:\n{self.log()}"
            )
        return result

    def wait_ready(self, *services: str, timeout: str = "300s") -> None:
        """Waits, in one `modelplane wait`, until each InferenceService named is Ready."""
        self.cli(
            "wait", "--for=condition=Ready", *(f"isvc/{name}" for name in services), f"--timeout={timeout}"
        )

    def apply(self, *resources: dict, check: bool = True) -> subprocess.CompletedProcess:
        """`modelplane apply -f` of the resources, written as one YAML file in the platform's home."""
        folder = self.home / "applied"
        folder.mkdir(exist_ok=True)
        path = folder / f"{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump_all(resources, sort_keys=False))
        return self.cli("apply", "-f", str(path), check=check)

    def request(self, method: str, host: str, path: str, **kwargs) -> httpx.Response:
        """A request through the gateway, with the service's host in the Host header."""
        return httpx.request(
            method,
            self.gateway_url + path,
            headers={"host": host},
            timeout=kwargs.pop("timeout", 120),
            **kwargs,
        )


def replica_processes(home: Path) -> list[int]:
    """Processes whose command line names the home folder (the replicas of that platform)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(home) in cmdline and " up " not in cmdline:
            found.append(int(entry.name))
    return found


def kill_leftovers(home: Path) -> list[int]:
    pids = replica_processes(home)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return pids


def write_iris_models(models: dict[Path, object]) -> None:
    """Fits each scikit-learn model on the iris data set and saves it as `<folder>/model.joblib`."""
    import joblib
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    for folder, model in models.items():
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(model.fit(features, labels), folder / "model.joblib")


@contextlib.contextmanager
def running_platform(home: Path, *options: str) -> Iterator[PlatformProcess]:
    """`modelplane up` on `home` for the duration of the block (a module's fixture); once it has stopped,
    no replica of it may be left running (any that is, is killed and fails the block)."""
    platform = PlatformProcess(home, *options).start()
    try:
        yield platform
    finally:
        platform.stop()
        leftovers = kill_leftovers(home)
    assert leftovers == [], f"replicas outlived modelplane up: {leftovers}"


def wait_until(check, what: str, platform: PlatformProcess, timeout: float = 240):
    """`check()`'s first truthy result, polled every half second; fails with the platform's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n--- up.log:\n{platform.log()[-6000:]}")
