"""What the agent's tests run: a ConfigMap volume updated the way kubelet updates one, iris models on a
real HTTP server, and `modelplane agent` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


class ConfigMapVolume:
    """A folder as kubelet keeps a mounted ConfigMap: each key a symlink `<key> -> ..data/<key>`, and
    `..data` a symlink to a timestamped folder holding the files. An update writes a new timestamped
    folder, swaps `..data` to it by renaming a new symlink over it, and removes the old folder (kubelet's
    AtomicWriter)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: dict[str, str]) -> None:
        version = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:8]}"
        (self.root / version).mkdir()
        for key, text in files.items():
            (self.root / version / key).write_text(text)
        data = self.root / "..data"
        previous = os.readlink(data) if data.is_symlink() else None
        os.symlink(version, self.root / "..data_tmp")
        os.rename(self.root / "..data_tmp", data)
        for key in files:
            if not (self.root / key).is_symlink():
                os.symlink(f"..data/{key}", self.root / key)
        if previous is not None:
            for path in sorted((self.root / previous).iterdir()):
                path.unlink()
            (self.root / previous).rmdir()

    def write_models(self, models: dict[str, str]) -> None:
        """models.json listing each model name with its storageUri, as the operator writes it."""
        entries = [
            {"modelName": name, "modelSpec": {"storageUri": uri, "framework": "sklearn", "memory": "64Mi"}}
            for name, uri in models.items()
        ]
        self.write({"models.json": json.dumps(entries)})


def write_iris_models(root: Path) -> None:
    """`root/iris/model.joblib` (a logistic regression) and `root/constant/model.joblib` (always 0)."""
    features, labels = load_iris(return_X_y=True)
    (root / "iris").mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), root / "iris" / "model.joblib")
    (root / "constant").mkdir()
    constant = DummyClassifier(strategy="constant", constant=0).fit(features, labels)
    joblib.dump(constant, root / "constant" / "model.joblib")


class AgentProcess:
    """`modelplane agent ARGS` until `stop()`, its output in `log_path`."""

    def __init__(self, *args: str, log_path: Path, env: dict | None = None) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelplane", "agent", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


def eventually(check, what: str, timeout: float = 120):
    """Waits for `check()` to return something true, and returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
