"""InferenceGraph webhook rules, with KServe's messages."""

from __future__ import annotations

import pytest

from modelplane.api import FieldError, admit, inference_graph_errors

from .helpers import messages, rejection, sample


def graph(nodes: dict, name: str = "my-graph") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodes": nodes},
    }


def sequence(*steps: dict) -> dict:
    return {"routerType": "Sequence", "steps": list(steps)}


ROOT = {"root": sequence({"serviceName": "a"})}


@pytest.mark.parametrize("name", ["Abc-123", "4abc-3", "-abc-3", "abc-3-", "abc.123", "abc 123"])
def test_name_format(name):
    assert rejection(graph(ROOT, name)).errors[0] == FieldError(
        "metadata.name",
        f'The InferenceGraph "{name}" is invalid: a InferenceGraph name must consist of lower case alphanumeric '
        'characters or \'-\', and must start with alphabetical character. (e.g. "my-name" or "abc-123", regex '
        "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    )


def test_root_node_is_required():
    assert rejection(graph({"start": sequence({"serviceName": "a"})})).errors[0] == FieldError(
        "spec.nodes",
        "root node not found, InferenceGraph needs a node with name 'root' as the root node of the graph",
    )


def test_step_names_are_unique_per_node():
    nodes = {"root": sequence({"name": "s", "serviceName": "a"}, {"name": "s", "serviceName": "b"})}
    assert rejection(graph(nodes)).errors[0] == FieldError(
        "spec.nodes.root.steps[1].name",
        'Node "root" of InferenceGraph "my-graph" contains more than one step with name "s"',
    )


def test_unnamed_steps_may_repeat():
    admit(graph({"root": sequence({"serviceName": "a"}, {"serviceName": "a"})}))


def test_step_without_a_target():
    nodes = {"root": sequence({"serviceName": "a"}, {"name": "empty"})}
    assert rejection(graph(nodes)).errors[0] == FieldError(
        "spec.nodes.root.steps[1]",
        'Step 1 ("empty") in node "root" of InferenceGraph "my-graph" does not specify an inference target',
    )


def test_step_with_two_targets():
    nodes = {"root": sequence({"serviceName": "a", "serviceUrl": "http://b"})}
    assert messages(graph(nodes)) == [
        'Step 0 ("") in node "root" of InferenceGraph "my-graph" specifies more than one of nodeName, serviceName, '
        "serviceUrl"
    ]


def test_splitter_steps_need_a_weight():
    nodes = {
        "root": {"routerType": "Splitter", "steps": [{"serviceName": "a", "weight": 100}, {"nodeName": "n"}]}
    }
    # KServe names the step by its serviceName, empty here.
    assert messages(graph(nodes)) == ["InferenceGraph[my-graph] Node[root] Route[] missing the 'Weight'"]


def test_splitter_weights_sum_to_100():
    nodes = {
        "root": {
            "routerType": "Splitter",
            "steps": [{"serviceName": "a", "weight": 60}, {"serviceName": "b", "weight": 30}],
        }
    }
    assert rejection(graph(nodes)).errors[0] == FieldError(
        "spec.nodes.root.steps",
        "InferenceGraph[my-graph] Node[root] splitter node: the sum of traffic weights for all routing targets "
        "should be 100",
    )


def test_router_type_is_checked_by_the_schema():
    error = rejection(graph({"root": {"routerType": "Loop"}})).errors[0]
    assert error.path == "spec.nodes.root.routerType"
    assert error.message.startswith('Unsupported value: "Loop": supported values: "Sequence", "Splitter"')


def test_nodes_are_required():
    resource = graph({})
    del resource["spec"]["nodes"]
    assert rejection(resource).errors[0] == FieldError("spec.nodes", "Required value")


def test_errors_come_in_document_order():
    nodes = {
        "root": sequence({"serviceName": "a", "nodeName": "b"}),
        "second": sequence({}),
    }
    assert [e.path for e in rejection(graph(nodes)).errors] == [
        "spec.nodes.root.steps[0]",
        "spec.nodes.second.steps[0]",
    ]


def test_the_rules_are_callable_alone_for_composition():
    assert inference_graph_errors(sample("graph.yaml")) == []
    assert [e.path for e in inference_graph_errors(graph({}))] == ["spec.nodes"]
