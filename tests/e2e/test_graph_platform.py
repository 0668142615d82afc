"""End to end: InferenceGraphs applied to `modelplane up` with the CLI, answering through the gateway.

Every scenario of KServe's e2e graph tests runs here against real InferenceServices: the sklearn and
xgboost iris models, and custom predictors (`graph_predictor.py`) standing for KServe's `success-200-isvc`
and `error-404-isvc`. One platform serves the whole module; the services and the scenario graphs are
applied once. The tests at the end change the platform (a service deleted and back, a graph stopped,
changed, deleted, a restart of `modelplane up`), so they run in file order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml

from modelplane.api.kinds import INFERENCE_GRAPH
from modelplane.local.api.client import ControlPlaneClient
from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, kill_leftovers, wait_until

EXAMPLES = REPO_ROOT / "examples"
PREDICTOR = Path(__file__).with_name("graph_predictor.py")
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
IRIS_V2 = {
    "inputs": [
        {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}
    ]
}
SUCCESS = {"predictions": [{"message": "SUCCESS"}]}
ERROR = {"detail": "Intentional 404 code"}
NO_MATCH = {
    "error": "Failed to process request",
    "cause": "None of the routes matched with the switch condition",
}
PROPAGATE_HEADERS = "Authorization,X-Trace-Id,Test-Header-.*"


def graph(name: str, nodes: dict, **spec) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodes": nodes, **spec},
    }


def step(name: str, **fields) -> dict:
    return {"name": name, **fields}


def picker(decision: str) -> dict:
    return {"decision_picker": decision, "key1": {"name": "abc"}}


def service(name: str, predictor: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"predictor": predictor},
    }


def custom_predictor(name: str, behaviour: str) -> dict:
    """KServe's e2e graph models: a custom container run with `--model_name <service name>`."""
    container = {
        "name": "kserve-container",
        "image": "modelplane:latest",
        "command": ["python", "/mnt/models/graph_predictor.py"],
        "args": ["--model_name", name, "--behaviour", behaviour],
        "env": [{"name": "STORAGE_URI", "value": "pvc://graph-predictor"}],
    }
    return service(name, {"containers": [container]})


def services() -> list[dict]:
    sklearn = {"storageUri": "pvc://examples/sklearn-iris"}
    return [
        yaml.safe_load((EXAMPLES / "sklearn-iris.yaml").read_text()),
        yaml.safe_load((EXAMPLES / "xgboost-iris.yaml").read_text()),
        # As in KServe's model-chainer: the model name comes from `--model_name`, in either form.
        service("isvc-sklearn-graph-1", {"sklearn": {**sklearn, "args": ["--model_name=sklearn"]}}),
        service("isvc-sklearn-graph-2", {"sklearn": {**sklearn, "args": ["--model_name", "iris"]}}),
        # Not in KServe's tests: a V2 service, which a graph calls at /v2/models/<name>/infer.
        service(
            "xgboost-iris-v2",
            {
                "model": {
                    "modelFormat": {"name": "xgboost"},
                    "protocolVersion": "v2",
                    "storageUri": "pvc://examples/xgboost-iris",
                }
            },
        ),
        custom_predictor("success-200-isvc", "success"),
        custom_predictor("error-404-isvc", "error"),
        custom_predictor("headers-isvc", "headers"),
    ]


def write(folder: Path, resources: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for resource in resources:
        path = folder / f"{resource['kind'].lower()}-{resource['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(resource, sort_keys=False))
    return folder


def wait_ready(platform: PlatformProcess, kind: str, names: list[str]) -> None:
    platform.cli("wait", "--for=condition=Ready", kind, *names, "--timeout=300s", timeout=330)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-home")
    example_models(home / "pvc" / "examples")
    (home / "pvc" / "graph-predictor").mkdir(parents=True)
    shutil.copy(PREDICTOR, home / "pvc" / "graph-predictor" / PREDICTOR.name)
    # The routers are replicas of `modelplane up`, whose environment they get, as KServe's routers get
    # `router.headers.propagate` from its config map.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROPAGATE_HEADERS", PROPAGATE_HEADERS)
        platform = PlatformProcess(home).start()
    try:
        platform.cli("apply", "-f", str(write(home / "services", services())))
        wait_ready(platform, "isvc", [s["metadata"]["name"] for s in services()])
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def scenario_graphs(gateway_port: str) -> list[dict]:
    """The graphs of KServe's `test/e2e/graph/test_inference_graph.py` (`model-chainer`, `scenarioN`,
    `raw-chainer*`), and a few of our own."""
    success = {"serviceName": "success-200-isvc"}
    success_url = (
        f"http://success-200-isvc.default.localhost:{gateway_port}/v1/models/success-200-isvc:predict"
    )
    error = {"serviceName": "error-404-isvc"}
    on_error = "[@this].#(decision_picker==ERROR)"
    on_success = "[@this].#(decision_picker==SUCCESS)"

    def node_under_sequence(router_type: str, root_dependency: str, **node_step) -> dict:
        """root: a Sequence of node1 (`root_dependency`) and the success service; node1 calls the error one."""
        return {
            "root": {
                "routerType": "Sequence",
                "steps": [
                    step("rootStep1", nodeName="node1", dependency=root_dependency),
                    step("rootStep2", **success),
                ],
            },
            "node1": {
                "routerType": router_type,
                "steps": [step("node1Step1", **error, condition=on_error, **node_step)],
            },
        }

    def sklearn_then_xgboost(name: str, **spec) -> dict:
        """KServe's raw-mode graph: the deploymentMode annotation on a Sequence sklearn -> xgboost."""
        resource = graph(
            name,
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [
                        step("sklearn", serviceName="sklearn-iris"),
                        step("xgboost", serviceName="xgboost-iris", data="$request"),
                    ],
                }
            },
            **spec,
        )
        resource["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "Standard"}
        return resource

    return [
        graph(
            "model-chainer",
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [
                        step("sklearn", serviceName="isvc-sklearn-graph-1", dependency="Hard"),
                        step("xgboost", serviceName="xgboost-iris", data="$request", dependency="Hard"),
                        step(
                            "sklearn2", serviceName="isvc-sklearn-graph-2", data="$request", dependency="Hard"
                        ),
                    ],
                }
            },
        ),
        graph(
            "scenario1",
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [step("rootStep1", **success), step("rootStep2", **error, data="$request")],
                }
            },
        ),
        graph(
            "scenario2",
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [step("rootStep1", **error), step("rootStep2", **success, data="$request")],
                }
            },
        ),
        graph(
            "scenario3",
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [
                        step("rootStep1", **error, dependency="Hard"),
                        step("rootStep2", **success, dependency="Soft"),
                    ],
                }
            },
        ),
        graph(
            "scenario4",
            {
                "root": {
                    "routerType": "Switch",
                    "steps": [
                        step("rootStep1", **error, condition=on_error, dependency="Soft"),
                        step("rootStep2", **success, condition=on_success, dependency="Soft"),
                    ],
                }
            },
        ),
        graph("scenario5", node_under_sequence("Switch", "Soft", dependency="Soft")),
        graph("scenario6", node_under_sequence("Switch", "Hard", dependency="Hard")),
        graph(
            "scenario7",
            {
                "root": {
                    "routerType": "Ensemble",
                    "steps": [step("rootStep1", **success), step("rootStep2", **error)],
                }
            },
        ),
        graph(
            "scenario8",
            {
                "root": {
                    "routerType": "Ensemble",
                    "steps": [
                        step("rootStep1", **error, dependency="Hard"),
                        step("rootStep2", **success),
                        step("rootStep3", **success),
                    ],
                }
            },
        ),
        # The condition of a Splitter step is ignored, as in KServe.
        graph("scenario9", node_under_sequence("Splitter", "Soft", weight=100)),
        graph("scenario10", node_under_sequence("Splitter", "Hard", weight=100)),
        sklearn_then_xgboost("raw-chainer"),
        # `test_inference_graph_raw_mode_with_hpa`: replica settings; two routers share the host.
        sklearn_then_xgboost(
            "raw-chainer-hpa", minReplicas=2, maxReplicas=3, scaleMetric="cpu", scaleTarget=50
        ),
        # Not in KServe's tests: a V2 service, PROPAGATE_HEADERS, a `serviceUrl` step on the gateway, and
        # a step that answers too late.
        graph(
            "v2-ensemble",
            {
                "root": {
                    "routerType": "Ensemble",
                    "steps": [
                        step("v2", serviceName="xgboost-iris-v2"),
                        step("same", serviceName="xgboost-iris-v2"),
                    ],
                }
            },
        ),
        graph(
            "headers",
            {"root": {"routerType": "Sequence", "steps": [step("echo", serviceName="headers-isvc")]}},
        ),
        graph(
            "slow-step",
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [
                        step("quick", serviceUrl=f"{success_url}"),
                        step("late", serviceUrl=f"{success_url}?delay_ms=5000", dependency="Hard"),
                    ],
                }
            },
            routerTimeouts={"serviceClient": 1},
        ),
    ]


@pytest.fixture(scope="module")
def scenarios(platform):
    """Every scenario graph, applied at once and Ready."""
    graphs = scenario_graphs(platform.gateway_url.rsplit(":", 1)[1])
    platform.cli("apply", "-f", str(write(platform.home / "scenarios", graphs)))
    wait_ready(platform, "ig", [g["metadata"]["name"] for g in graphs])
    return platform


def post(platform: PlatformProcess, graph_name: str, body: object):
    """What KServe's `predict_ig` does: POST the input to the graph's URL, as it is."""
    return platform.request("POST", f"{graph_name}.default.localhost", "/", json=body)


def received(platform: PlatformProcess, service_name: str) -> list:
    """The inputs a custom predictor got since the last call."""
    response = platform.request("GET", f"{service_name}.default.localhost", "/requests?clear=1")
    assert response.status_code == 200, response.text
    return response.json()


def answer(response) -> tuple[int, object]:
    return response.status_code, response.json()


def iris_chain() -> dict:
    """examples/iris-chain.yaml: sklearn -> xgboost -> sklearn, each step given the graph's input."""
    return yaml.safe_load((EXAMPLES / "iris-chain.yaml").read_text())


def router_processes(platform: PlatformProcess, graph_name: str) -> list[int]:
    """The router processes of one graph: those writing to its router log folder."""
    folder = str(platform.home / "logs" / "default" / graph_name / "router") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # (A replica forked warm has its command line as one string, words apart by spaces.)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            stdout = os.readlink(entry / "fd" / "1")
        except OSError:
            continue
        if b" router " in cmdline and stdout.startswith(folder):
            found.append(int(entry.name))
    return found


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
                    step(
                        "second", serviceName="svc", condition="predictions.#(a==~yes)"
                    ),  # Go never matches it
                ],
            }
        },
    )
    code, stderr = apply(platform, broken, tmp_path)
    assert code != 0
    assert 'nodeName "nowhere", which names no node of the graph' in stderr
    assert "'predictions.#(a==~yes)': unknown '~' value" in stderr
    assert platform.cli("get", "ig", check=False).stdout.count("broken") == 0


# ---- KServe's e2e scenarios (test/e2e/graph/test_inference_graph.py), against real services ----


def test_inference_graph_model_chainer_answers_1_1(scenarios):
    """`test_inference_graph`: three Hard steps; the sklearn services name their model with `--model_name`."""
    assert answer(post(scenarios, "model-chainer", IRIS)) == (200, {"predictions": [1, 1]})


@pytest.fixture
def clean(scenarios):
    """The platform, with the custom predictors' request records emptied."""
    for name in ("success-200-isvc", "error-404-isvc"):
        received(scenarios, name)
    return scenarios


SIMPLE_SCENARIOS = {
    # KServe's test: (graph, input, status, body, the inputs the success service got; None: not checked)
    "test_ig_scenario1": ("scenario1", IRIS, 404, ERROR, [IRIS]),
    "test_ig_scenario2": ("scenario2", IRIS, 200, SUCCESS, [IRIS]),
    "test_ig_scenario3": ("scenario3", IRIS, 404, ERROR, []),  # the Hard error stops the Sequence
    # A Soft failure of a child node is passed over; rootStep2 has no `data`: it gets the graph's input.
    "test_ig_scenario5": ("scenario5", picker("ERROR"), 200, SUCCESS, [picker("ERROR")]),
    "test_ig_scenario6": ("scenario6", picker("ERROR"), 404, ERROR, []),
    "test_ig_scenario8": ("scenario8", picker("SUCCESS"), 404, ERROR, None),  # a Hard failure decides
    "test_ig_scenario9": ("scenario9", IRIS, 200, SUCCESS, [IRIS]),
    "test_ig_scenario10": ("scenario10", IRIS, 404, ERROR, []),
}


@pytest.mark.parametrize("kserve_test", SIMPLE_SCENARIOS)
def test_kserve_scenario(clean, kserve_test):
    name, body, status, expected, success_inputs = SIMPLE_SCENARIOS[kserve_test]
    assert answer(post(clean, name, body)) == (status, expected)
    assert received(clean, "error-404-isvc") == [body]
    if success_inputs is not None:
        assert received(clean, "success-200-isvc") == success_inputs


def test_ig_scenario4_a_switch_picks_by_condition_and_answers_404_when_nothing_matches(clean):
    assert answer(post(clean, "scenario4", picker("ERROR"))) == (404, ERROR)
    assert answer(post(clean, "scenario4", picker("SUCCESS"))) == (200, SUCCESS)
    no_match = post(clean, "scenario4", picker("NO_MATCH"))
    assert answer(no_match) == (404, NO_MATCH)
    assert no_match.headers["content-type"] == "application/json"
    assert received(clean, "error-404-isvc") == [picker("ERROR")]
    assert received(clean, "success-200-isvc") == [picker("SUCCESS")]


def test_ig_scenario7_an_ensemble_includes_soft_failures(clean):
    response = post(clean, "scenario7", picker("SUCCESS"))
    assert answer(response) == (200, {"rootStep1": SUCCESS, "rootStep2": ERROR})


def test_inference_graph_raw_mode_is_ready_and_answers(scenarios):
    """`test_inference_graph_raw_mode`: the deploymentMode annotation changes nothing on this platform."""
    status = json.loads(scenarios.cli("get", "ig", "raw-chainer", "-o", "json").stdout)["status"]
    assert [c["status"] for c in status["conditions"] if c["type"] == "Ready"] == ["True"]
    assert status["url"].startswith("http://raw-chainer.default.localhost:")
    # KServe's test calls nothing; here the graph answers: the xgboost step's class probabilities.
    response = post(scenarios, "raw-chainer", IRIS)
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert [row.index(max(row)) for row in rows] == [1, 1]


def test_inference_graph_raw_mode_with_hpa_runs_min_replicas_routers(scenarios):
    """`test_inference_graph_raw_mode_with_hpa`: minReplicas 2 (the scaling fields are accepted)."""
    assert len(router_processes(scenarios, "raw-chainer-hpa")) == 2
    for _ in range(4):
        response = post(scenarios, "raw-chainer-hpa", IRIS)
        assert response.status_code == 200, response.text
        assert [row.index(max(row)) for row in response.json()["predictions"]] == [1, 1]


def test_a_v2_service_is_called_at_its_v2_path(scenarios):
    response = post(scenarios, "v2-ensemble", IRIS_V2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body) == ["same", "v2"]
    assert body["v2"]["model_name"] == "xgboost-iris-v2"
    assert body["v2"]["outputs"] == body["same"]["outputs"]


def test_headers_named_by_propagate_headers_reach_the_services(scenarios):
    sent = {"Authorization": "Bearer t0k3n", "X-Trace-Id": "trace-1", "Test-Header-One": "1", "X-Other": "no"}
    headers = {"host": "headers.default.localhost", **sent}
    response = httpx.post(scenarios.gateway_url + "/", json=IRIS, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    got = response.json()["headers"]
    assert {k: got.get(k.lower()) for k in sent} == {**sent, "X-Other": None}
    assert got["content-type"] == "application/json"


def test_a_step_that_answers_too_late_is_a_504_naming_it(clean):
    response = post(clean, "slow-step", IRIS)
    assert response.status_code == 504
    body = response.json()
    assert body["error"] == "Failed to process request"
    assert '("late")' in body["cause"] and "serviceClient" in body["cause"]


# ---- the platform's handling of graphs ----


def test_a_sequence_of_services_answers_at_the_graph_host(platform, tmp_path):
    code, stderr = apply(platform, iris_chain(), tmp_path)
    assert code == 0, stderr
    platform.cli("wait", "--for=condition=Ready", "ig/iris-chain", "--timeout=300s")

    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [1, 1]}

    status = json.loads(platform.cli("get", "ig", "iris-chain", "-o", "json").stdout)["status"]
    gateway_port = platform.gateway_url.rsplit(":", 1)[1]
    assert status["url"] == f"http://iris-chain.default.localhost:{gateway_port}"
    # As KServe's Knative mode reports it: the Knative Service's conditions, then Stopped.
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("ConfigurationsReady", "True"),
        ("Ready", "True"),
        ("RoutesReady", "True"),
        ("Stopped", "False"),
    ]
    assert "iris-chain" in platform.cli("get", "ig").stdout
    assert "Ready" in platform.cli("describe", "ig", "iris-chain").stdout
    assert "modelplane router listening on" in platform.cli("logs", "iris-chain", "-c", "router").stdout


def test_a_graph_follows_its_services(platform):
    """(After the test above.) A service that goes away makes the graph wait; back, it serves again."""
    platform.cli("delete", "isvc", "sklearn-iris")
    platform.cli("wait", "--for=condition=Ready=False", "ig/iris-chain", "--timeout=300s")
    status = json.loads(platform.cli("get", "ig", "iris-chain", "-o", "json").stdout)["status"]
    ready = [c for c in status["conditions"] if c["type"] == "Ready"][0]
    assert ready["message"] == "Failed to find graph service sklearn-iris"

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
    wait_until(lambda: not router_processes(platform, "iris-chain"), "the router to stop", platform)
    answer = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert answer.status_code == 503, answer.text  # the graph exists: why it does not answer, not 404
    assert "stopped" in answer.json()["error"].lower()

    assert apply(platform, iris_chain(), tmp_path)[0] == 0
    platform.cli("wait", "--for=condition=Ready", "ig/iris-chain", "--timeout=300s")
    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.json() == {"predictions": [1, 1]}


def test_a_spec_change_is_ready_once_its_new_router_serves(platform, tmp_path):
    """(After the tests above.) While the new router revision starts, the one before it keeps the host,
    and the graph is not Ready (as KServe's Knative mode says of a revision rolling out); once the new one
    serves, it is, and the router before it stops."""
    changed = iris_chain()
    del changed["spec"]["nodes"]["root"]["steps"][2]  # sklearn -> xgboost: class probabilities
    with ControlPlaneClient(platform.api_url) as client:
        version = client.get(INFERENCE_GRAPH, "default", "iris-chain")["metadata"]["resourceVersion"]
        assert apply(platform, changed, tmp_path)[0] == 0
        seen = []
        for event in client.watch(
            INFERENCE_GRAPH, "default", name="iris-chain", resource_version=version, timeout=240
        ):
            graph_now = event["object"]
            status = graph_now.get("status") or {}
            if status.get("observedGeneration") != graph_now["metadata"]["generation"]:
                continue
            by_type = {c["type"]: c for c in status["conditions"]}
            ready = by_type["Ready"]
            seen.append(
                (ready["status"], ready.get("reason"), "url" in status, by_type["RoutesReady"]["status"])
            )
            if ready["status"] == "True":
                break
    # The router before keeps the host meanwhile: RoutesReady stays True, as Knative's does.
    assert seen[0] == ("False", "RouterNotReady", False, "True"), seen
    assert seen[-1] == ("True", None, True, "True"), seen
    response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
    assert response.status_code == 200, response.text
    assert [row.index(max(row)) for row in response.json()["predictions"]] == [1, 1]
    assert router_revisions(platform, "iris-chain") == ["iris-chain-router-00001", "iris-chain-router-00002"]
    wait_until(lambda: len(router_processes(platform, "iris-chain")) == 1, "the old router to stop", platform)


def test_delete_stops_the_router_and_frees_the_host(platform):
    """(After the tests above.)"""
    assert router_processes(platform, "iris-chain")
    platform.cli("delete", "ig", "iris-chain")

    def gone():
        response = platform.request("POST", "iris-chain.default.localhost", "/", json=IRIS)
        return response if response.status_code == 404 else None

    response = wait_until(gone, "the graph's host to go", platform)
    assert "no InferenceService or InferenceGraph serves host" in response.json()["error"]
    wait_until(lambda: not router_processes(platform, "iris-chain"), "the router to stop", platform)


def router_revisions(platform: PlatformProcess, graph_name: str) -> list[str]:
    """The router revisions a graph ran, by their log files (`<revision>-<replica>.log`)."""
    folder = platform.home / "logs" / "default" / graph_name / "router"
    return sorted({path.stem.rpartition("-")[0] for path in folder.glob("*.log")})


def test_a_restart_in_place_keeps_every_router_serving(scenarios):
    """SIGHUP: the control plane runs again, the graphs' routers (and the services behind them) serve on."""
    routers = router_processes(scenarios, "model-chainer")
    assert routers
    scenarios.process.send_signal(signal.SIGHUP)
    assert answer(post(scenarios, "model-chainer", IRIS)) == (200, {"predictions": [1, 1]})
    assert scenarios.process.stdout.readline().startswith("modelplane is up: ")
    scenarios.cli("wait", "--for=condition=Ready", "ig/model-chainer", "--timeout=120s")
    assert answer(post(scenarios, "model-chainer", IRIS)) == (200, {"predictions": [1, 1]})
    assert router_processes(scenarios, "model-chainer") == routers


def test_a_restart_numbers_new_router_revisions_after_the_stored_ones(scenarios):
    """(After the tests above.) The gateway's port changes, so the command of each router whose graph names
    services does: such a graph gets a new revision, numbered after those it had. `slow-step` names its
    URLs itself, so its command is the same and it runs the same revision again. Every graph comes back
    Ready."""
    names = [g["metadata"]["name"] for g in scenario_graphs("0")]
    before = {name: router_revisions(scenarios, name) for name in names}
    assert all(before.values()), before
    assert scenarios.stop() == 0
    scenarios.start()
    port = scenarios.gateway_url.rsplit(":", 1)[1]

    def routed():
        """Once its router starts (RouterNotReady) the graph has its host: requests wait for the router."""
        status = json.loads(scenarios.cli("get", "ig", "model-chainer", "-o", "json").stdout)["status"]
        ready = [c for c in status["conditions"] if c["type"] == "Ready"][0]
        return ready.get("reason") == "RouterNotReady" or status.get("url", "").endswith(f":{port}")

    wait_until(routed, "the graph's router to start", scenarios)
    assert answer(post(scenarios, "model-chainer", IRIS)) == (200, {"predictions": [1, 1]})

    def statuses():
        listed = json.loads(scenarios.cli("get", "ig", "-o", "json").stdout)["items"]
        found = {item["metadata"]["name"]: item.get("status") or {} for item in listed}
        ready = all(found[name].get("url", "").endswith(f":{port}") for name in names)
        return found if ready else None

    found = wait_until(statuses, "every graph to be Ready on the new port", scenarios)
    for name in names:
        ready = [c["status"] for c in found[name]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], (name, found[name])
        after = router_revisions(scenarios, name)
        if name == "slow-step":
            assert after == before[name] == ["slow-step-router-00001"]
            continue
        newest_before = before[name][-1]
        assert after[: len(before[name])] == before[name]
        new = after[len(before[name]) :]
        assert new and all(revision > newest_before for revision in new), (before[name], after)
    assert answer(post(scenarios, "scenario4", picker("NO_MATCH"))) == (404, NO_MATCH)
    assert answer(post(scenarios, "scenario7", picker("SUCCESS"))) == (
        200,
        {"rootStep1": SUCCESS, "rootStep2": ERROR},
    )
    newest = router_revisions(scenarios, "scenario7")[-1]
    assert f"{newest}: starting" in scenarios.cli("logs", "scenario7", "-c", "router").stdout


def test_a_graph_named_as_a_service_leaves_it_its_host(platform, tmp_path):
    wait_ready(platform, "isvc", ["success-200-isvc"])
    taker = graph(
        "success-200-isvc",
        {"root": {"routerType": "Sequence", "steps": [step("a", serviceName="error-404-isvc")]}},
    )
    code, stderr = apply(platform, taker, tmp_path)
    assert code == 0, stderr
    try:
        deadline = time.monotonic() + 120
        while True:
            status = json.loads(platform.cli("get", "ig", "success-200-isvc", "-o", "json").stdout)["status"]
            ready = [c for c in status["conditions"] if c["type"] == "Ready"][0]
            if ready.get("reason") == "HostConflict" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert ready["reason"] == "HostConflict", ready
        assert 'InferenceService "success-200-isvc" serves at the host' in ready["message"]
        assert router_processes(platform, "success-200-isvc") == []
        path = "/v1/models/success-200-isvc:predict"
        response = platform.request("POST", "success-200-isvc.default.localhost", path, json=IRIS)
        assert response.status_code == 200, response.text
    finally:
        platform.cli("delete", "ig", "success-200-isvc", check=False)
