"""A custom container that does not listen where `modelplane up` reaches it: it is not ready, and its
status and log say where it listens instead."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from modelplane.local.ports import free_loopback_port
from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until
from tests.e2e.test_container_env import condition, isvc

# A server that listens where it would in a pod (8080 there; here a port of the test's choosing, so
# that tests never collide), whatever it is told.
HARD_CODED = """
import os, http.server as s
s.HTTPServer(("127.0.0.1", int(os.environ["POD_PORT"])), s.SimpleHTTPRequestHandler).serve_forever()
"""
# A server on its port, at IPv6's loopback address only.
IPV6_ONLY = """
import os, socket, http.server as s
class Server(s.HTTPServer):
    address_family = socket.AF_INET6
Server(("::1", int(os.environ["PORT"])), s.SimpleHTTPRequestHandler).serve_forever()
"""


def custom_service(name: str, program: str, env: dict[str, str] | None = None) -> dict:
    container = {
        "name": "kserve-container",
        "image": "custom-server:latest",
        "command": ["python", "-c", program],
        "args": ["--http_port", "$(PORT)"],
        "env": [{"name": key, "value": value} for key, value in (env or {}).items()],
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"containers": [container]}},
    }


def not_ready_message(platform: PlatformProcess, name: str, says: str) -> str:
    def message() -> str | None:
        predictor = condition(isvc(platform, name), "PredictorReady")
        assert predictor.get("status") != "True", predictor
        return predictor["message"] if says in predictor.get("message", "") else None

    return wait_until(message, f"{name}'s PredictorReady to say {says!r}", platform, timeout=120)


def replica_log(platform: PlatformProcess, name: str) -> str:
    return (platform.home / f"logs/default/{name}/predictor/{name}-predictor-00001-0.log").read_text()


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    with running_platform(tmp_path_factory.mktemp("mp-port")) as running:
        yield running


def test_a_program_that_ignores_its_port_is_not_ready_and_says_where_it_listens(platform):
    pod_port = free_loopback_port()
    platform.apply(custom_service("hard-coded", HARD_CODED, {"POD_PORT": str(pod_port)}))
    message = not_ready_message(platform, "hard-coded", f"listens on 127.0.0.1:{pod_port}, not on its port")
    assert message.startswith(
        'Revision "hard-coded-predictor-00001" is not ready yet: the program listens on'
    )
    assert "(given in $PORT and --http_port)" in message
    assert "the platform probes it and sends it requests at 127.0.0.1:" in message
    assert f"not ready: the program listens on 127.0.0.1:{pod_port}" in replica_log(platform, "hard-coded")
    ready = condition(isvc(platform, "hard-coded"), "Ready")
    assert ready["status"] != "True" and "listens on 127.0.0.1" in ready["message"]


def test_a_program_on_its_port_at_ipv6_s_loopback_only_is_told_it_is_probed_at_127_0_0_1(platform):
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback address")
    platform.apply(custom_service("ipv6-only", IPV6_ONLY))
    message = not_ready_message(platform, "ipv6-only", "at [::1] only, not at 127.0.0.1")
    assert "the program listens on its port" in message
    assert "at [::1] only, not at 127.0.0.1" in replica_log(platform, "ipv6-only")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
