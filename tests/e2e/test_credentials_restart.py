"""A restart in place (SIGHUP) reads `--auth-token-file`, `--tls-cert` and `--tls-key` again, and the API
and every gateway worker take what they hold (a TLS connection open across it keeps the certificate it
negotiated); a restart these files would not survive is not begun."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import time

import httpx

from tests.e2e.platform_process import PlatformProcess
from tests.local.api.test_handover import answer_on
from tests.local.certificates import write_certificates

OLD_TOKEN = "the-first-token-of-the-day"
NEW_TOKEN = "the-second-token-of-the-day"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


def test_a_restart_in_place_takes_the_token_and_certificate_files_again(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    first_ca, first_cert, first_key = write_certificates(first)
    second_ca, second_cert, second_key = write_certificates(second)
    cert, key, token = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "token"
    shutil.copy(first_cert, cert)
    shutil.copy(first_key, key)
    token.write_text(OLD_TOKEN + "\n")
    home = tmp_path / "home"
    home.mkdir()
    options = [
        "--auth-token-file",
        str(token),
        "--gateway-auth",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    ]
    platform = PlatformProcess(home, *options, "--gateway-workers", "2").start()
    kept = None
    try:
        # A connection kept alive across the restart goes on with the certificate it negotiated.
        host, port = platform.api_url.removeprefix("https://").rsplit(":", 1)
        kept = ssl.create_default_context(cafile=first_ca).wrap_socket(
            socket.create_connection((host, int(port)), timeout=30), server_hostname="localhost"
        )
        assert _answer(kept, OLD_TOKEN).startswith(b"HTTP/1.1 200")
        token.write_text(NEW_TOKEN + "\n")
        shutil.copy(second_cert, cert)
        shutil.copy(second_key, key)
        platform.process.send_signal(signal.SIGHUP)
        assert platform.process.stdout.readline().startswith("modelplane is up: ")
        assert _answer(kept, NEW_TOKEN).startswith(b"HTTP/1.1 200")
        assert _answer(kept, OLD_TOKEN).startswith(b"HTTP/1.1 401")

        trusted = ssl.create_default_context(cafile=second_ca)  # only the new certificate passes
        for url in (platform.api_url + ISVCS, platform.gateway_url + "/"):
            for _ in range(8):  # a connection each: the kernel hands them to either gateway worker
                old = httpx.get(url, verify=trusted, headers={"authorization": f"Bearer {OLD_TOKEN}"})
                assert old.status_code == 401, url
                new = httpx.get(url, verify=trusted, headers={"authorization": f"Bearer {NEW_TOKEN}"})
                assert new.status_code != 401, url

        token.write_text("")  # being rewritten, say
        platform.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "not restarting in place" not in platform.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"not restarting in place (SIGHUP): the token in {token} is shorter than 16" in platform.log()
        assert platform.process.poll() is None
        answer = httpx.get(
            platform.api_url + ISVCS, verify=trusted, headers={"authorization": f"Bearer {NEW_TOKEN}"}
        )
        assert answer.status_code == 200
    finally:
        if kept is not None:
            kept.close()
        platform.stop()


def _answer(connection: ssl.SSLSocket, token: str) -> bytes:
    """The head of the answer to one request on `connection` (its body read too)."""
    connection.sendall(
        f"GET {ISVCS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    return answer_on(connection)


def test_the_clis_token_in_the_environment_of_up_does_not_reach_the_replicas(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text(OLD_TOKEN)
    monkeypatch.setenv("MODELPLANE_TOKEN", OLD_TOKEN)  # exported for the CLI in the shell that runs up
    home = tmp_path / "home"
    home.mkdir()
    platform = PlatformProcess(home, "--auth-token-file", str(token)).start()
    try:
        platform.apply(
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "env", "namespace": "default"},
                "spec": {
                    "predictor": {
                        "containers": [
                            {
                                "name": "kserve-container",
                                "image": "x",
                                "command": ["sh", "-c", "env; sleep 60"],
                            }
                        ]
                    }
                },
            }
        )
        logs = home / "logs" / "default" / "env" / "predictor"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "MODELPLANE_HOME=" not in _text(logs):
            time.sleep(0.2)
        assert "MODELPLANE_HOME=" in _text(logs), platform.log()
        assert OLD_TOKEN not in _text(logs)
    finally:
        platform.stop()


def _text(folder) -> str:
    return (
        "".join(path.read_text(errors="replace") for path in folder.glob("*.log")) if folder.exists() else ""
    )
