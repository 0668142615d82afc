"""Structural checks of an InferenceGraph spec, with readable messages.

KServe accepts graphs its router cannot run: a cycle of nodes (the router recurses until it dies), a
`nodeName` that names no node or a `serviceUrl` that is not an http(s) URL (500 at request time), a
condition Go's gjson can never match.
modelplane rejects them when the graph is applied and when the router starts; a condition that only
looks like a mistake is evaluated as Go evaluates it, and `graph_warnings` says so at apply.
The webhook's own rules (name format, step-name uniqueness, one target per step, Splitter weights) live
in `modelplane.api`; `refusals` runs both, so the router refuses at start every graph `apply` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.api.admission import admit
from modelplane.api.errors import ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH
from modelplane.graph.gjson import PathSyntaxError, compile_path
from modelplane.graph.spec import (
    DEPENDENCIES,
    ROOT_NODE,
    ROUTER_TYPES,
    GraphSpec,
    GraphSpecError,
    parse_graph_spec,
)
from modelplane.protocol.http_client import parse_target

CONDITIONAL_ROUTERS = ("Sequence", "Switch")


def refusals(spec: Mapping[str, Any], name: str = "graph") -> list[str]:
    """Everything `apply` refuses in an InferenceGraph with this spec, one message per problem: the
    API's admission (the CRD schema, KServe's webhook rules), then what the router cannot run.

    A step with both `serviceName` and `serviceUrl` is taken as the platform wrote it: the service
    resolved to its address (as KServe's controller passes the graph to its router)."""
    resource = {
        "apiVersion": INFERENCE_GRAPH.api_version,
        "kind": INFERENCE_GRAPH.kind,
        "metadata": {"name": name},
        "spec": _unresolved(spec),
    }
    try:
        admit(resource)
    except ValidationError as exc:
        return [str(error) for error in exc.errors]
    return validate_graph_spec(spec)


def _unresolved(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as a user would have written it: without the `serviceUrl` the platform resolved for a
    `serviceName`."""
    nodes = spec.get("nodes")
    if not isinstance(nodes, dict):
        return dict(spec)
    unresolved = {}
    for node_name, node in nodes.items():
        if isinstance(node, dict) and isinstance(node.get("steps"), list):
            steps = [
                {k: v for k, v in step.items() if k != "serviceUrl"}
                if isinstance(step, dict) and step.get("serviceName") and step.get("serviceUrl")
                else step
                for step in node["steps"]
            ]
            node = {**node, "steps": steps}
        unresolved[node_name] = node
    return {**spec, "nodes": unresolved}


def validate_graph_spec(spec: Mapping[str, Any]) -> list[str]:
    """Everything wrong with the graph's structure, one message per problem; empty when it can run."""
    try:
        graph = parse_graph_spec(spec)
    except GraphSpecError as exc:
        return [str(exc)]
    errors: list[str] = []
    if ROOT_NODE not in graph.nodes:
        errors.append(f"the graph has no node named '{ROOT_NODE}', where every request starts")
    errors += _node_errors(graph)
    errors += _cycle_errors(graph)
    return errors


def _node_errors(graph: GraphSpec) -> list[str]:
    errors = []
    for node in graph.nodes.values():
        if node.router_type not in ROUTER_TYPES:
            errors.append(
                f'node "{node.name}" has routerType "{node.router_type}"; '
                f"expected one of {', '.join(ROUTER_TYPES)}"
            )
        if node.router_type == "Sequence" and not node.steps:
            errors.append(f'node "{node.name}" is a Sequence with no steps')
        for step in node.steps:
            where = step.describe(node.name)
            if step.dependency and step.dependency not in DEPENDENCIES:
                errors.append(f'{where} has dependency "{step.dependency}"; expected Soft or Hard')
            if step.node_name and step.node_name not in graph.nodes:
                errors.append(f'{where} has nodeName "{step.node_name}", which names no node of the graph')
            if step.service_url and not step.node_name:
                errors += _service_url_errors(step.service_url, where)
            if node.router_type in CONDITIONAL_ROUTERS:
                errors += _condition_errors(node.router_type, step.condition, where)
    return errors


def _service_url_errors(url: str, where: str) -> list[str]:
    try:
        parse_target(url)
    except ValueError as exc:
        return [f"{where} has a serviceUrl the router can never call: {exc}"]
    return []


def _condition_errors(router_type: str, condition: str, where: str) -> list[str]:
    if not condition:
        if router_type == "Switch":
            return [f"{where} has no condition, so the Switch can never select it"]
        return []
    try:
        compile_path(condition)
    except PathSyntaxError as exc:
        return [f"{where} has a condition modelplane refuses: {condition!r}: {exc}"]
    return []


def _cycle_errors(graph: GraphSpec) -> list[str]:
    """One message per distinct cycle of nodeName references."""
    edges = {
        name: [s.node_name for s in node.steps if s.node_name in graph.nodes]
        for name, node in graph.nodes.items()
    }
    done: set[str] = set()
    seen_cycles: set[frozenset[str]] = set()
    errors = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            members = frozenset(cycle)
            if members not in seen_cycles:
                seen_cycles.add(members)
                errors.append(f"the nodes form a cycle: {' -> '.join(cycle)}")
            return
        if name in done:
            return
        path.append(name)
        for target in edges[name]:
            visit(target, path)
        path.pop()
        done.add(name)

    for name in graph.nodes:
        visit(name, [])
    return errors
