"""Graph validation: the pure function, and the router refusing to start on a graph it cannot run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
from conftest import Process

from modelplane.api.errors import ValidationError
from modelplane.control.admission import admit_with_platform_checks
from modelplane.graph.graph_warnings import condition_warnings, graph_warnings
from modelplane.graph.spec import GraphSpecError, RouterTimeouts, load_graph_file, parse_graph_spec
from modelplane.graph.validation import refusals, validate_graph_spec


def node(router_type: str, *steps: dict) -> dict:
    return {"routerType": router_type, "steps": list(steps)}


URL = {"serviceUrl": "http://127.0.0.1:1/v1/models/m:predict"}


def test_a_valid_graph_has_no_errors():
    spec = {
        "nodes": {
            "root": node(
                "Sequence", {"nodeName": "pick"}, {**URL, "condition": "predictions", "data": "$response"}
            ),
            "pick": node("Switch", {**URL, "condition": "[@this].#(decision_picker==ERROR)"}),
            "split": node("Splitter", {**URL, "weight": 100, "condition": "ignored by a Splitter (("}),
            "all": node("Ensemble"),
        },
        "routerTimeouts": {"serviceClient": 5},
    }
    assert validate_graph_spec(spec) == []


def test_cycles_are_rejected_once_each():
    spec = {
        "nodes": {
            "root": node("Sequence", {"nodeName": "a"}),
            "a": node("Sequence", {"nodeName": "b"}),
            "b": node("Ensemble", {"nodeName": "a"}, {"nodeName": "b"}),
        }
    }
    assert validate_graph_spec(spec) == [
        "the nodes form a cycle: a -> b -> a",
        "the nodes form a cycle: b -> b",
    ]


def test_a_node_name_that_names_no_node_is_rejected():
    spec = {"nodes": {"root": node("Sequence", {"name": "first", "nodeName": "missing"})}}
    assert validate_graph_spec(spec) == [
        'step 0 ("first") of node "root" has nodeName "missing", which names no node of the graph'
    ]


def test_conditions_go_can_never_match_are_rejected():
    spec = {"nodes": {"root": node("Switch", {**URL, "name": "s", "condition": "instances.#(intval==~yes)"})}}
    assert validate_graph_spec(spec) == [
        'step 0 ("s") of node "root" has a condition modelplane refuses: \'instances.#(intval==~yes)\': '
        "unknown '~' value (use ~true, ~false, ~null or ~*) at position 21"
    ]


def test_conditions_go_evaluates_are_accepted_with_a_warning():
    doubtful = {**URL, "condition": "instances.#(intval>=5"}
    spec = {"nodes": {"root": node("Sequence", URL, doubtful), "pick": node("Switch", doubtful)}}
    assert validate_graph_spec(spec) == []
    resource = {"kind": "InferenceGraph", "spec": spec}
    assert [str(warning) for warning in condition_warnings(resource)] == [
        f"spec.nodes.{name}.steps[{index}].condition: 'instances.#(intval>=5' is evaluated as Go's gjson "
        "evaluates it, but looks like a mistake: '(' is never closed at position 12"
        for name, index in (("root", 1), ("pick", 0))
    ]


def test_fields_a_node_type_ignores_are_accepted_with_a_warning():
    spec = {
        "nodes": {
            "root": node(
                "Ensemble",
                {**URL, "name": "a", "weight": 50, "condition": "x", "mapPredictionsToInstances": True},
                {"nodeName": "pick", "data": "$response", "dependency": "Hard"},
                {"nodeName": "split", "dependency": "Soft"},
            ),
            "pick": node("Switch", {**URL, "condition": "x", "dependency": "Hard"}),
            "split": node("Splitter", {**URL, "weight": 100, "condition": "x"}),
        }
    }
    assert validate_graph_spec(spec) == []
    warnings = [str(w) for w in graph_warnings({"kind": "InferenceGraph", "spec": spec})]
    assert warnings == [
        "spec.nodes.root.steps[0].mapPredictionsToInstances: ignored in an Ensemble node: only a Sequence "
        "maps predictions to instances",
        "spec.nodes.root.steps[0].weight: ignored in an Ensemble node: only a Splitter picks a step by weight",
        "spec.nodes.root.steps[0].condition: ignored in an Ensemble node: an Ensemble runs every step",
        "spec.nodes.root.steps[1].data: ignored in an Ensemble node: only a Sequence sends a step anything "
        "but the node's input",
        "spec.nodes.pick.steps[0].dependency: ignored in a Switch node: a Hard step of a Switch or Splitter "
        "changes nothing: the node answers what the step answered; put dependency: Hard on the step that "
        "names this node",
        "spec.nodes.split.steps[0].condition: ignored in a Splitter node: a Splitter picks a step by weight "
        "alone",
    ]


def test_sequence_inputs_that_do_not_mean_what_they_look_like_are_warned():
    spec = {
        "nodes": {
            "root": node(
                "Sequence",
                {**URL, "data": "$response", "condition": "predictions"},
                {**URL, "data": "$response.predictions", "weight": 1},
                {**URL, "data": "$request"},
            ),
            "orphan": node("Sequence", URL),
        }
    }
    assert validate_graph_spec(spec) == []
    warnings = [str(w) for w in graph_warnings({"kind": "InferenceGraph", "spec": spec})]
    assert warnings == [
        "spec.nodes.root.steps[0].data: the first step of a Sequence has no previous response: $response "
        "sends it the node's input",
        "spec.nodes.root.steps[0].condition: the first step of a Sequence has no previous response for its "
        "condition to test: every request that reaches this node is answered 500 (invalid response)",
        "spec.nodes.root.steps[1].weight: ignored in a Sequence node: only a Splitter picks a step by weight",
        "spec.nodes.root.steps[1].data: '$response.predictions' sends the node's input, as $request does: "
        "only $response exactly sends the previous step's response, whole",
        "spec.nodes.orphan: no step leads to this node from root: it never runs",
    ]


def test_a_switch_step_without_a_condition_is_rejected():
    spec = {"nodes": {"root": node("Switch", URL)}}
    assert validate_graph_spec(spec) == [
        'step 0 ("") of node "root" has no condition, so the Switch can never select it'
    ]


def test_structure_errors_are_all_reported():
    spec = {
        "nodes": {
            "start": node("Pipeline", {**URL, "dependency": "Strong"}),
            "empty": node("Sequence"),
        }
    }
    assert validate_graph_spec(spec) == [
        "the graph has no node named 'root', where every request starts",
        'node "start" has routerType "Pipeline"; expected one of Sequence, Splitter, Ensemble, Switch',
        'step 0 ("") of node "start" has dependency "Strong"; expected Soft or Hard',
        'node "empty" is a Sequence with no steps',
    ]


def test_fields_of_the_wrong_type_are_rejected():
    assert validate_graph_spec({"nodes": []}) == ["spec.nodes must be an object"]
    assert validate_graph_spec({"nodes": {"root": node("Splitter", {**URL, "weight": "50"})}}) == [
        "spec.nodes.root.steps[0].weight must be an integer"
    ]
    assert validate_graph_spec(
        {"nodes": {"root": node("Sequence", URL)}, "routerTimeouts": {"serverRead": "1s"}}
    ) == ["spec.routerTimeouts.serverRead must be a number of seconds"]


def test_a_timeout_of_zero_or_less_is_no_limit():
    """Go's net/http: a Client.Timeout, ReadTimeout or WriteTimeout of zero or less is no limit; an
    IdleTimeout of zero is ReadTimeout's, and one below zero is no limit."""

    def timeouts(**fields: float) -> RouterTimeouts:
        return parse_graph_spec({"nodes": {}, "routerTimeouts": fields}).router_timeouts

    assert timeouts() == RouterTimeouts(server_read=60, server_write=60, server_idle=180, service_client=None)
    assert timeouts(serviceClient=0, serverRead=0, serverWrite=0, serverIdle=0) == RouterTimeouts(
        server_read=None, server_write=None, server_idle=None, service_client=None
    )
    assert timeouts(serviceClient=-1, serverRead=-1, serverWrite=-2, serverIdle=-3) == RouterTimeouts(
        server_read=None, server_write=None, server_idle=None, service_client=None
    )
    assert timeouts(serverIdle=0).server_idle == 60
    assert timeouts(serverIdle=0, serverRead=5).server_idle == 5
    assert timeouts(serverIdle=-1, serverRead=5).server_idle is None
    spec = {
        "nodes": {"root": node("Sequence", URL)},
        "routerTimeouts": {"serverRead": -1, "serviceClient": 0},
    }
    assert refusals(spec) == []


def _start(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelplane", "router", *args, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_router_refuses_an_invalid_graph_with_one_line(tmp_path):
    spec = {"nodes": {"root": node("Sequence", {"nodeName": "root"})}}
    result = _start("--graph-json", json.dumps(spec))
    assert result.returncode == 2
    assert result.stderr == "modelplane router: invalid graph: the nodes form a cycle: root -> root\n"

    result = _start("--graph-json", "{nodes:")
    assert result.returncode == 2
    assert result.stderr.startswith("modelplane router: invalid graph: the graph is not valid JSON")
    assert result.stderr.count("\n") == 1

    bad_file = tmp_path / "graph.yaml"
    bad_file.write_text("nodes: [unclosed")
    result = _start("--graph-file", str(bad_file))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "modelplane router: invalid graph: the graph file is neither JSON nor YAML"
    )
    assert result.stderr.count("\n") == 1


def test_the_router_reads_an_inference_graph_resource_from_a_yaml_file(stub, tmp_path):
    """Among other resources too, as a file for `kubectl apply -f` holds them, `---` after the last."""
    resource = tmp_path / "graph.yaml"
    resource.write_text(
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata: {name: echo}\n"
        "spec: {predictor: {sklearn: {storageUri: 'pvc://models/echo'}}}\n"
        "---\n"
        "apiVersion: serving.kserve.io/v1alpha1\n"
        "kind: InferenceGraph\n"
        "metadata: {name: echo}\n"
        "spec:\n"
        "  nodes:\n"
        "    root:\n"
        "      routerType: Sequence\n"
        "      steps:\n"
        f"      - serviceUrl: {stub.at('/echo')}\n"
        "---\n"
    )
    router = Process(
        [sys.executable, "-m", "modelplane", "router", "--graph-file", str(resource), "--host", "127.0.0.1",
         "--port", "0", "--drain-seconds", "0"]
    )  # fmt: skip
    try:
        assert httpx.post(router.url, content=b'{"a":1}').json() == {"a": 1}
    finally:
        router.stop()


def test_a_graph_file_without_one_inference_graph_is_refused_with_what_it_holds():
    service = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: a}\n"
    graph = "kind: InferenceGraph\nspec: {nodes: {}}\n"
    for text, message in (
        (service, "the graph file holds kind InferenceService, not an InferenceGraph"),
        (f"{service}---\n{service}", "the graph file holds 2 YAML documents, none an InferenceGraph"),
        (f"{graph}---\n{graph}", "the graph file holds 2 InferenceGraphs; the router runs one"),
        ("", "the graph file must hold an InferenceGraph spec (an object with `nodes`)"),
    ):
        with pytest.raises(GraphSpecError) as error:
            load_graph_file(text)
        assert str(error.value) == message


def test_the_router_prints_the_warnings_apply_gives_and_runs_the_graph(stub):
    spec = {"nodes": {"root": node("Sequence", {"serviceUrl": stub.at("/echo"), "weight": 30})}}
    router = Process(
        [sys.executable, "-m", "modelplane", "router", "--graph-json", json.dumps(spec), "--host", "127.0.0.1",
         "--port", "0", "--drain-seconds", "0"]
    )  # fmt: skip
    try:
        assert httpx.post(router.url, content=b'{"a":1}').json() == {"a": 1}
        router.proc.send_signal(signal.SIGTERM)
        _, stderr = router.proc.communicate(timeout=15)
    finally:
        router.stop()
    assert (
        "Warning: spec.nodes.root.steps[0].weight: ignored in a Sequence node: only a Splitter picks a step "
        "by weight\n"
    ) in stderr


# Graphs `apply` refuses for KServe's webhook rules or the CRD schema, not for their structure.
REFUSED_BY_ADMISSION = {
    "weights that do not sum to 100": {
        "nodes": {"root": node("Splitter", {**URL, "weight": 60}, {"serviceName": "b", "weight": 30})}
    },
    "a Splitter step without a weight": {"nodes": {"root": node("Splitter", {**URL, "weight": 100}, URL)}},
    "a step with two targets": {"nodes": {"root": node("Sequence", {**URL, "nodeName": "root"})}},
    "a step without a target": {"nodes": {"root": node("Sequence", {"name": "nothing"})}},
    "two steps of one name": {
        "nodes": {"root": node("Ensemble", {**URL, "name": "a"}, {**URL, "name": "a"})}
    },
    "a timeout that is not a number": {
        "nodes": {"root": node("Sequence", URL)},
        "routerTimeouts": {"serverRead": "1s"},
    },
}


def _apply_refusals(spec: dict) -> list[str]:
    resource = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "graph", "namespace": "default"},
        "spec": spec,
    }
    try:
        admit_with_platform_checks(resource)
    except ValidationError as exc:
        return [str(error) for error in exc.errors]
    return []


def test_min_replicas_above_max_replicas_is_refused_as_for_a_service():
    nodes = {"root": node("Sequence", URL)}
    assert _apply_refusals({"nodes": nodes, "minReplicas": 3, "maxReplicas": 2}) == [
        "spec.minReplicas: 'MinReplicas' cannot be greater than MaxReplicas"
    ]
    for fine in (
        {"minReplicas": 2, "maxReplicas": 2},
        {"minReplicas": 3, "maxReplicas": 0},
        {"minReplicas": 3},
    ):
        assert _apply_refusals({"nodes": nodes, **fine}) == []


def test_a_negative_timeout_is_refused_as_for_a_service():
    nodes = {"root": node("Sequence", URL)}
    assert _apply_refusals({"nodes": nodes, "timeout": -5}) == [
        "spec.timeout: timeout must be 0 or more seconds, not -5"
    ]
    assert _apply_refusals({"nodes": nodes, "timeout": 0}) == []
    assert _apply_refusals({"nodes": nodes, "timeout": 30}) == []


@pytest.mark.parametrize("spec", REFUSED_BY_ADMISSION.values(), ids=REFUSED_BY_ADMISSION.keys())
def test_the_router_refuses_what_apply_refuses_with_the_same_words(spec):
    expected = _apply_refusals(spec)
    assert expected, "apply accepts this graph"
    assert refusals(spec) == expected
    result = _start("--graph-json", json.dumps(spec))
    assert result.returncode == 2
    assert result.stderr == f"modelplane router: invalid graph: {'; '.join(expected)}\n"


def test_the_router_accepts_a_service_the_platform_resolved_to_its_url(stub):
    """A platform passes a `serviceName` step with its `serviceUrl` filled in, as KServe's controller does."""
    resolved = {"serviceName": "echo", "serviceUrl": stub.at("/echo"), "weight": 100}
    spec = {"nodes": {"root": node("Splitter", resolved)}}
    assert refusals(spec) == []
    router = Process(
        [sys.executable, "-m", "modelplane", "router", "--graph-json", json.dumps(spec), "--host", "127.0.0.1",
         "--port", "0", "--drain-seconds", "0"]
    )  # fmt: skip
    try:
        assert httpx.post(router.url, content=b'{"a":1}').json() == {"a": 1}
    finally:
        router.stop()


def test_a_service_url_the_router_can_never_call_is_rejected():
    """KServe's router answers 500 at every request that reaches such a step (`TestMalformedURL`)."""
    spec = {
        "nodes": {
            "root": node(
                "Sequence",
                {"name": "templated", "serviceUrl": "http://single-1.default.{$your-domain}/switch"},
                {"name": "ftp", "serviceUrl": "ftp://models.example.com/m"},
                {"name": "relative", "serviceUrl": "/v1/models/m:predict"},
                URL,
            )
        }
    }
    assert validate_graph_spec(spec) == [
        'step 0 ("templated") of node "root" has a serviceUrl the router can never call: '
        "invalid host in URL 'http://single-1.default.{$your-domain}/switch'",
        'step 1 ("ftp") of node "root" has a serviceUrl the router can never call: '
        "unsupported protocol scheme 'ftp' in URL 'ftp://models.example.com/m'",
        'step 2 ("relative") of node "root" has a serviceUrl the router can never call: '
        "unsupported protocol scheme '' in URL '/v1/models/m:predict'",
    ]
    assert _apply_refusals(spec) == [f"spec.nodes: {message}" for message in validate_graph_spec(spec)]


def test_ensemble_steps_answering_under_one_key_are_warned():
    """A step's key is its name, else its index: a name may be another step's index, and the merged
    answer then keeps only the later step's (as KServe's map does)."""
    spec = {
        "nodes": {
            "root": node("Ensemble", {**URL, "name": "1"}, URL, {**URL, "name": "0"}, {**URL, "name": "b"}),
        }
    }
    assert validate_graph_spec(spec) == []
    warnings = [str(w) for w in graph_warnings({"kind": "InferenceGraph", "spec": spec})]
    assert warnings == [
        'spec.nodes.root.steps[1]: answers under the key "1", as steps[0] does: the Ensemble\'s answer '
        "keeps only this step's; name the steps apart",
    ]
