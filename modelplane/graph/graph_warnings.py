"""What an InferenceGraph says that its router will not do as written: warned on `apply`, never refused.

KServe's router reads each step field only in some node types and ignores it silently elsewhere; it
runs nothing for a node no step leads to. modelplane's router does the same, so a graph written for
KServe behaves the same; these warnings say where the graph and its behaviour part ways:

- a condition that Go's gjson evaluates, but that looks like a mistake (`predictions[0]`);
- a step field its node type does not read (`weight` outside a Splitter, `condition` in an Ensemble);
- a `data` that means the node's input though it looks like it means something else
  (`$response.predictions`, `$response` on a Sequence's first step);
- a condition on a Sequence's first step, which has no previous response to test: every request
  that reaches it is answered 500 (`invalid response`);
- two steps of an Ensemble under one key (a step named `"1"` and an unnamed step at index 1): its
  answer keeps only the later one's;
- a node that no step leads to from `root`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.api import paths
from modelplane.api.kinds import INFERENCE_GRAPH
from modelplane.graph.gjson import PathSyntaxError, compile_path
from modelplane.graph.spec import ROOT_NODE, GraphSpec, GraphSpecError, NodeSpec, StepSpec, parse_graph_spec
from modelplane.graph.validation import CONDITIONAL_ROUTERS

REQUEST, RESPONSE = "$request", "$response"

# The step fields each node type reads (beyond its target and name), as KServe's router reads them.
_READS = {
    "Sequence": {"data", "mapPredictionsToInstances", "condition", "dependency"},
    "Switch": {"condition"},
    "Splitter": {"weight"},
    "Ensemble": {"dependency"},
}
_WHY_UNREAD = {
    "data": "only a Sequence sends a step anything but the node's input",
    "mapPredictionsToInstances": "only a Sequence maps predictions to instances",
    "weight": "only a Splitter picks a step by weight",
    "condition": {
        "Splitter": "a Splitter picks a step by weight alone",
        "Ensemble": "an Ensemble runs every step",
    },
    "dependency": "a Hard step of a Switch or Splitter changes nothing: the node answers what the step "
    "answered; put dependency: Hard on the step that names this node",
}


@dataclass(frozen=True)
class GraphWarning:
    """Something the graph says that the router evaluates or ignores as KServe's does, but that looks
    like a mistake."""

    path: str  # spec.nodes.<node>.steps[<index>].condition
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def graph_warnings(resource: Mapping[str, Any]) -> list[GraphWarning]:
    """Every warning about an InferenceGraph (as written, or as stored); none for another kind, nor for
    a spec that does not parse (its refusal says why)."""
    graph = _graph_of(resource)
    if graph is None:
        return []
    found = []
    for node in graph.nodes.values():
        for step in node.steps:
            found += _condition_warnings(node, step)
            found += _unread_field_warnings(node, step)
            found += _sequence_input_warnings(node, step)
        found += _ensemble_key_warnings(node)
    return found + _unreachable_node_warnings(graph)


def condition_warnings(resource: Mapping[str, Any]) -> list[GraphWarning]:
    """The conditions of an InferenceGraph that are probably mistakes, though Go's gjson, and so
    modelplane, evaluates them: `predictions[0]` is a key, `#(a==1)x` the query `#(a==1)`."""
    graph = _graph_of(resource)
    if graph is None:
        return []
    return [
        warning
        for node in graph.nodes.values()
        for step in node.steps
        for warning in _condition_warnings(node, step)
    ]


def _graph_of(resource: Mapping[str, Any]) -> GraphSpec | None:
    if resource.get("kind") != INFERENCE_GRAPH.kind or not isinstance(resource.get("spec"), dict):
        return None
    try:
        return parse_graph_spec(resource["spec"])
    except GraphSpecError:
        return None


def _step_path(node: NodeSpec, step: StepSpec, field: str) -> str:
    return paths.join(["spec", "nodes", node.name, "steps", step.index, field])


def _condition_warnings(node: NodeSpec, step: StepSpec) -> Iterator[GraphWarning]:
    if node.router_type not in CONDITIONAL_ROUTERS or not step.condition:
        return
    try:
        warning = compile_path(step.condition).warning
    except PathSyntaxError:
        return  # refused, by `modelplane.graph.validation`
    if warning:
        yield GraphWarning(
            _step_path(node, step, "condition"),
            f"{step.condition!r} is evaluated as Go's gjson evaluates it, but looks like a mistake: {warning}",
        )


def _unread_field_warnings(node: NodeSpec, step: StepSpec) -> Iterator[GraphWarning]:
    reads = _READS.get(node.router_type)
    if reads is None:
        return  # refused: an unknown routerType
    set_fields = {
        "data": bool(step.data),
        "mapPredictionsToInstances": step.map_predictions_to_instances,
        "weight": step.weight is not None,
        "condition": bool(step.condition),
        "dependency": step.hard,  # Soft is the default, which asks for nothing
    }
    for field, is_set in set_fields.items():
        if is_set and field not in reads:
            why = _WHY_UNREAD[field]
            if isinstance(why, dict):
                why = why[node.router_type]
            yield GraphWarning(
                _step_path(node, step, field),
                f"ignored in {_article(node.router_type)} {node.router_type} node: {why}",
            )


def _sequence_input_warnings(node: NodeSpec, step: StepSpec) -> Iterator[GraphWarning]:
    if node.router_type != "Sequence":
        return
    if step.data not in ("", REQUEST, RESPONSE):
        yield GraphWarning(
            _step_path(node, step, "data"),
            f"{step.data!r} sends the node's input, as {REQUEST} does: only {RESPONSE} exactly sends the "
            "previous step's response, whole",
        )
    if step.index == 0 and step.data == RESPONSE:
        yield GraphWarning(
            _step_path(node, step, "data"),
            f"the first step of a Sequence has no previous response: {RESPONSE} sends it the node's input",
        )
    if step.index == 0 and step.condition:
        yield GraphWarning(
            _step_path(node, step, "condition"),
            "the first step of a Sequence has no previous response for its condition to test: every "
            "request that reaches this node is answered 500 (invalid response)",
        )


def _ensemble_key_warnings(node: NodeSpec) -> Iterator[GraphWarning]:
    """A step's answer goes under its name, else its index; KServe's webhook only checks that names
    differ, so a name can be another step's index, and the later step's answer replaces the earlier's."""
    if node.router_type != "Ensemble":
        return
    first_with_key: dict[str, StepSpec] = {}
    for step in node.steps:
        earlier = first_with_key.setdefault(step.key, step)
        if earlier is not step:
            yield GraphWarning(
                paths.join(["spec", "nodes", node.name, "steps", step.index]),
                f'answers under the key "{step.key}", as steps[{earlier.index}] does: the Ensemble\'s '
                "answer keeps only this step's; name the steps apart",
            )


def _unreachable_node_warnings(graph: GraphSpec) -> list[GraphWarning]:
    if ROOT_NODE not in graph.nodes:
        return []  # refused
    reached, todo = set(), [ROOT_NODE]
    while todo:
        name = todo.pop()
        if name in reached or name not in graph.nodes:
            continue
        reached.add(name)
        todo += [step.node_name for step in graph.nodes[name].steps if step.node_name]
    return [
        GraphWarning(
            paths.join(["spec", "nodes", name]), f"no step leads to this node from {ROOT_NODE}: it never runs"
        )
        for name in graph.nodes
        if name not in reached
    ]


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"
