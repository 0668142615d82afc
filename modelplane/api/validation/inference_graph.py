"""The rules an InferenceGraph must meet, with KServe's messages (`inference_graph_validation.go`).

Nodes are checked in the order the resource lists them, so the same graph always gives the same errors.
Rules about the shape of the graph (cycles, unknown nodes, conditions) are added by `modelplane.graph`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import paths
from ..errors import FieldError
from .common import dicts, mapping

NAME_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
NAME_RE = re.compile(f"^{NAME_FMT}$")
ROOT_NODE = "root"
TARGETS = ("nodeName", "serviceName", "serviceUrl")


def inference_graph_errors(ig: dict) -> list[FieldError]:
    """Every webhook rule an InferenceGraph breaks."""
    name = mapping(ig.get("metadata")).get("name", "")
    nodes = mapping(mapping(ig.get("spec")).get("nodes"))
    errors = list(_name_errors(name))
    if ROOT_NODE not in nodes:
        errors.append(
            FieldError(
                "spec.nodes",
                "root node not found, InferenceGraph needs a node with name 'root' as the root node of the graph",
            )
        )
    for node_name, node in nodes.items():
        if isinstance(node, dict):
            errors += _step_name_errors(name, node_name, node)
    for node_name, node in nodes.items():
        if isinstance(node, dict):
            errors += _target_errors(name, node_name, node)
    for node_name, node in nodes.items():
        if isinstance(node, dict) and node.get("routerType") == "Splitter":
            errors += _weight_errors(name, node_name, node)
    return errors


def _name_errors(name: str) -> Iterator[FieldError]:
    if not NAME_RE.match(name):
        yield FieldError(
            "metadata.name",
            f'The InferenceGraph "{name}" is invalid: a InferenceGraph name must consist of lower case alphanumeric '
            f'characters or \'-\', and must start with alphabetical character. (e.g. "my-name" or "abc-123", '
            f"regex used for validation is '{NAME_FMT}')",
        )


def _steps_path(node_name: str, *rest: str | int) -> str:
    return paths.join(["spec", "nodes", node_name, "steps", *rest])


def _step_name_errors(graph: str, node_name: str, node: dict) -> Iterator[FieldError]:
    seen: set[str] = set()
    for index, step in enumerate(dicts(node.get("steps"))):
        step_name = step.get("name", "")
        if not step_name:
            continue
        if step_name in seen:
            yield FieldError(
                _steps_path(node_name, index, "name"),
                f'Node "{node_name}" of InferenceGraph "{graph}" contains more than one step with name "{step_name}"',
            )
            return
        seen.add(step_name)


def _target_errors(graph: str, node_name: str, node: dict) -> Iterator[FieldError]:
    for index, step in enumerate(dicts(node.get("steps"))):
        count = sum(1 for target in TARGETS if step.get(target))
        where = f'Step {index} ("{step.get("name", "")}") in node "{node_name}" of InferenceGraph "{graph}"'
        if count == 0:
            yield FieldError(_steps_path(node_name, index), f"{where} does not specify an inference target")
        elif count > 1:
            yield FieldError(
                _steps_path(node_name, index),
                f"{where} specifies more than one of nodeName, serviceName, serviceUrl",
            )


def _weight_errors(graph: str, node_name: str, node: dict) -> Iterator[FieldError]:
    total = 0
    for index, step in enumerate(dicts(node.get("steps"))):
        if step.get("weight") is None:
            # KServe names the step by its serviceName, which is empty for other targets.
            yield FieldError(
                _steps_path(node_name, index, "weight"),
                f"InferenceGraph[{graph}] Node[{node_name}] Route[{step.get('serviceName', '')}] missing the 'Weight'",
            )
            return
        total += step["weight"]
    if total != 100:
        yield FieldError(
            _steps_path(node_name),
            f"InferenceGraph[{graph}] Node[{node_name}] splitter node: the sum of traffic weights for all routing "
            "targets should be 100",
        )
