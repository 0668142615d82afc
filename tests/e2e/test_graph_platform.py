"""End to end: InferenceGraphs applied to `modelplane up` with the CLI, answering through the gateway."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, kill_leftovers

sys.path.insert(0, str(REPO_ROOT / "examples"))
from build_models import build_all  # noqa: E402

EXAMPLES = REPO_ROOT / "examples"
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


def graph(name: str, nodes: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodes": nodes},
    }


def step(name: str, **fields) -> dict:
    return {"name": name, **fields}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-home")
    build_all(home / "pvc" / "examples")
    platform = PlatformProcess(home).start()
    try:
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def iris_chain() -> dict:
    """sklearn -> xgboost -> sklearn, each step given the request, as in KServe's e2e tests."""
    return graph(
        "iris-chain",
        {
            "root": {
                "routerType": "Sequence",
                "steps": [
                    step("first", serviceName="sklearn-iris", data="$request"),
                    step("second", serviceName="xgboost-iris", data="$request"),
                    step("third", serviceName="sklearn-iris", data="$request"),
                ],
            }
        },
    )


def router_processes(platform: PlatformProcess) -> list[int]:
    """The router processes of this platform (their graphs name its gateway's port)."""
    gateway = f"localhost:{platform.gateway_url.rsplit(':', 1)[1]}/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # (A replica forked warm has its command line as one string, words apart by spaces.)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b" router " in cmdline and gateway.encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_until(check, what: str, platform: PlatformProcess, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n--- up.log:\n{platform.log()[-6000:]}")


def apply(platform: PlatformProcess, resource: dict, tmp_path) -> tuple[int, str]:
    path = tmp_path / f"{resource['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(resource, sort_keys=False))
    result = platform.cli("apply", "-f", str(path), check=False)
    return result.returncode, result.stderr


def test_apply_refuses_a_graph_whose_nodes_form_a_cycle(platform, tmp_path):
    cyclic = graph(
        "loop",
        {
            "root": {"routerType": "Sequence", "steps": [step("a", nodeName="other")]},
            "other": {"routerType": "Sequence", "steps": [step("b", nodeName="root")]},
        },
    )
    code, stderr = apply(platform, cyclic, tmp_path)
    assert code != 0
    assert 'InferenceGraph.serving.kserve.io "loop" is invalid' in stderr
    assert "the nodes form a cycle: root -> other -> root" in stderr


def test_apply_refuses_a_node_name_that_names_no_node_and_a_condition_that_does_not_parse(platform, tmp_path):
    broken = graph(
        "broken",
        {
            "root": {
                "routerType": "Sequence",
                "steps": [
                    step("first", nodeName="nowhere"),
                    step("second", serviceName="svc", condition="predictions.#(=="),
                ],
            }
        },
    )
    code, stderr = apply(platform, broken, tmp_path)
    assert code != 0
    assert 'nodeName "nowhere", which names no node of the graph' in stderr
    assert "has a condition that does not parse" in stderr
    assert platform.cli("get", "ig", check=False).stdout.count("broken") == 0


def test_a_sequence_of_services_answers_at_the_graph_host(platform, tmp_path):
    for example in ("sklearn-iris.yaml", "xgboost-iris.yaml"):
        platform.cli("apply", "-f", str(EXAMPLES / example))
    code, stderr = apply(platform, iris_chain(), tmp_path)
    assert code == 0, stderr
    platform.cli("wait", "--for=condition=Ready", "ig/iris-chain", "--timeout=300s")

    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [1, 1]}

    status = json.loads(platform.cli("get", "ig", "iris-chain", "-o", "json").stdout)["status"]
    gateway_port = platform.gateway_url.rsplit(":", 1)[1]
    assert status["url"] == f"http://iris-chain.default.localhost:{gateway_port}"
    assert "iris-chain" in platform.cli("get", "ig").stdout
    assert "Ready" in platform.cli("describe", "ig", "iris-chain").stdout
    assert "modelplane router listening on" in platform.cli("logs", "iris-chain", "-c", "router").stdout


def test_a_graph_follows_its_services(platform):
    """(After the test above.) A service that goes away makes the graph wait; back, it serves again."""
    platform.cli("delete", "isvc", "sklearn-iris")
    platform.cli("wait", "--for=condition=Ready=False", "ig/iris-chain", "--timeout=300s")
    status = json.loads(platform.cli("get", "ig", "iris-chain", "-o", "json").stdout)["status"]
    assert status["conditions"][0]["message"] == "Failed to find graph service sklearn-iris"

    platform.cli("apply", "-f", str(EXAMPLES / "sklearn-iris.yaml"))
    platform.cli("wait", "--for=condition=Ready", "ig/iris-chain", "--timeout=300s")
    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.json() == {"predictions": [1, 1]}


def test_the_stop_annotation_stops_the_router(platform, tmp_path):
    """(After the tests above.)"""
    stopped = iris_chain()
    stopped["metadata"]["annotations"] = {"serving.kserve.io/stop": "true"}
    assert apply(platform, stopped, tmp_path)[0] == 0
    platform.cli("wait", "--for=condition=Stopped", "ig/iris-chain", "--timeout=300s")
    status = json.loads(platform.cli("get", "ig", "iris-chain", "-o", "json").stdout)["status"]
    assert "url" not in status
    assert [c for c in status["conditions"] if c["type"] == "Ready"][0]["reason"] == "Stopped"
    wait_until(lambda: not router_processes(platform), "the router to stop", platform)
    assert platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS).status_code == 404

    assert apply(platform, iris_chain(), tmp_path)[0] == 0
    platform.cli("wait", "--for=condition=Ready", "ig/iris-chain", "--timeout=300s")
    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.json() == {"predictions": [1, 1]}


def test_delete_stops_the_router_and_frees_the_host(platform):
    """(After the tests above.)"""
    assert router_processes(platform)
    platform.cli("delete", "ig", "iris-chain")

    def gone():
        response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
        return response if response.status_code == 404 else None

    response = wait_until(gone, "the graph's host to go", platform)
    assert "no InferenceService or InferenceGraph serves host" in response.json()["error"]
    wait_until(lambda: not router_processes(platform), "the router to stop", platform)
