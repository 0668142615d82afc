"""A cluster for the operator's tests, and operator processes on it.

By default the cluster is the test API server (`tests/kube/cluster`), started as a process of its
own; where `KUBECONFIG` names a reachable cluster, the tests run against that one instead (with
KServe's CRDs installed: `kubectl apply -k deploy/ `, the operator's Deployment scaled to 0), and the
tests that play kubelet's part (writing pod and Deployment statuses) or register a webhook on
127.0.0.1 are skipped there.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig

REPO = Path(__file__).resolve().parents[2]
REAL_CLUSTER = bool(os.environ.get("KUBECONFIG"))


class LoggedProcess:
    """A process whose output goes to a file, with its stdout lines kept to wait on."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None) -> None:
        self.log_path = log
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            cwd=REPO,
            env={**os.environ, **(env or {})},
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_line(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.process.args} exited with {self.process.returncode}:\n{self.log()}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"no {prefix!r} line after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class KubeCluster:
    """The test API server (or the cluster of $KUBECONFIG), a kubeconfig for it and a lightkube client."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server: LoggedProcess | None = None
        if REAL_CLUSTER:
            self.kubeconfig = Path(os.environ["KUBECONFIG"])
            self.namespace = f"modelplane-e2e-{uuid.uuid4().hex[:6]}"
        else:
            self.server = LoggedProcess(
                [sys.executable, "-m", "tests.kube.cluster", "--port", "0"], workdir / "apiserver.log"
            )
            url = self.server.wait_line("listening on ").split()[-1]
            self.kubeconfig = workdir / "kubeconfig"
            self.kubeconfig.write_text(yaml.safe_dump(_kubeconfig(url)))
            self.namespace = "default"
        self.client = Client(
            config=KubeConfig.from_file(self.kubeconfig), namespace=self.namespace, field_manager="test"
        )
        if REAL_CLUSTER:
            from lightkube.resources.core_v1 import Namespace

            self.client.create(Namespace(metadata={"name": self.namespace}))

    def close(self) -> None:
        if REAL_CLUSTER:
            from lightkube.resources.core_v1 import Namespace

            self.client.delete(Namespace, self.namespace)
        self.client.close()
        if self.server is not None:
            self.server.stop()


def _kubeconfig(url: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": url}}],
        "users": [{"name": "test", "user": {}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}
        ],
        "current-context": "test",
    }


class Operator(LoggedProcess):
    """`modelplane operator` on the test cluster, with a short Lease so that failover is quick."""

    def __init__(self, cluster: KubeCluster, identity: str, *args: str, certs: Path | None = None) -> None:
        command = [
            sys.executable, "-m", "modelplane", "operator",
            "--kubeconfig", str(cluster.kubeconfig),
            "--identity", identity,
            "--lease-namespace", cluster.namespace,
            "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.25",
            *(["--webhook-port", "0", "--webhook-host", "127.0.0.1", "--cert-dir", str(certs)] if certs else ["--no-webhook"]),
            *args,
        ]  # fmt: skip
        super().__init__(command, cluster.workdir / f"operator-{identity}.log", {"PYTHONUNBUFFERED": "1"})
        self.identity = identity
        self.webhook_url = (
            self.wait_line("webhook listening on ").split()[-1] + "/validate" if certs else None
        )


def wait_for(what: Callable[[], object], timeout: float = 60, message: str = "") -> object:
    """Polls `what` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = what()
            if found:
                return found
        except Exception as error:  # noqa: BLE001 - the condition may not hold yet in any way
            last_error = error
        time.sleep(0.1)
    raise TimeoutError(f"{message or what} did not happen within {timeout}s (last error: {last_error})")


def webhook_certificates(folder: Path) -> str:
    """A CA and a certificate for 127.0.0.1 signed by it (`tls.crt`, `tls.key` in `folder`); returns
    the CA as a base64 caBundle."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelplane test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelplane-webhook")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return base64.b64encode(ca.public_bytes(serialization.Encoding.PEM)).decode()
