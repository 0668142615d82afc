"""The InferenceGraph spec as the router reads it: nodes, steps and router timeouts.

The input is the `spec` of an InferenceGraph resource (what KServe's controller passes as `--graph-json`).
Parsing is lenient about absent fields, as KServe's is; `modelplane.graph.validation` says what is wrong
with a spec before the router uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

ROOT_NODE = "root"
ROUTER_TYPES = ("Sequence", "Splitter", "Ensemble", "Switch")
DEPENDENCIES = ("Soft", "Hard")

# KServe's defaults (seconds) for the router's HTTP server; serviceClient has none.
DEFAULT_SERVER_READ = 60
DEFAULT_SERVER_WRITE = 60
DEFAULT_SERVER_IDLE = 180


class GraphSpecError(ValueError):
    """The graph JSON does not parse, or a field has the wrong type."""


@dataclass(frozen=True)
class StepSpec:
    index: int
    name: str = ""
    node_name: str = ""
    service_name: str = ""
    service_url: str = ""
    data: str = ""
    map_predictions_to_instances: bool = False
    weight: int | None = None
    condition: str = ""
    dependency: str = ""

    @property
    def key(self) -> str:
        """The step's name, or its index when unnamed (the Ensemble output key)."""
        return self.name or str(self.index)

    @property
    def hard(self) -> bool:
        return self.dependency == "Hard"

    def describe(self, node: str) -> str:
        """How messages name this step: `step 1 ("rootStep2") of node "root"`."""
        return f'step {self.index} ("{self.name}") of node "{node}"'


@dataclass(frozen=True)
class NodeSpec:
    name: str
    router_type: str
    steps: tuple[StepSpec, ...] = ()


@dataclass(frozen=True)
class RouterTimeouts:
    """Seconds; None is no limit."""

    server_read: float | None = DEFAULT_SERVER_READ
    server_write: float | None = DEFAULT_SERVER_WRITE
    server_idle: float | None = DEFAULT_SERVER_IDLE
    service_client: float | None = None


@dataclass(frozen=True)
class GraphSpec:
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    router_timeouts: RouterTimeouts = RouterTimeouts()


def load_graph_json(text: str | bytes) -> Mapping[str, Any]:
    """Parse `--graph-json` text into the spec mapping."""
    try:
        spec = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise GraphSpecError(f"the graph is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise GraphSpecError("the graph must be a JSON object (an InferenceGraph spec)")
    return spec


def load_graph_file(text: str | bytes) -> Mapping[str, Any]:
    """Parse `--graph-file`: the spec in JSON or YAML, or a whole InferenceGraph resource (its `spec`),
    alone or among other resources in a multi-document YAML file (as `kubectl apply -f` takes them)."""
    try:
        documents = [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as exc:
        raise GraphSpecError(f"the graph file is neither JSON nor YAML: {exc}".replace("\n", " ")) from None
    graphs = [d for d in documents if isinstance(d, dict) and d.get("kind") == "InferenceGraph"]
    if len(graphs) > 1:
        raise GraphSpecError(f"the graph file holds {len(graphs)} InferenceGraphs; the router runs one")
    if graphs:
        document = graphs[0].get("spec")
    elif len(documents) > 1:
        raise GraphSpecError(f"the graph file holds {len(documents)} YAML documents, none an InferenceGraph")
    else:
        document = documents[0] if documents else None
        if isinstance(document, dict) and isinstance(document.get("kind"), str):
            raise GraphSpecError(f"the graph file holds kind {document['kind']}, not an InferenceGraph")
    if not isinstance(document, dict):
        raise GraphSpecError("the graph file must hold an InferenceGraph spec (an object with `nodes`)")
    return document


def parse_graph_spec(spec: Mapping[str, Any]) -> GraphSpec:
    """Turn a spec mapping into a `GraphSpec`; raises `GraphSpecError` on a field of the wrong type."""
    nodes_raw = _typed(_or(spec.get("nodes"), {}), dict, "spec.nodes")
    nodes = {name: _parse_node(name, raw) for name, raw in nodes_raw.items()}
    return GraphSpec(nodes=nodes, router_timeouts=_parse_timeouts(_or(spec.get("routerTimeouts"), {})))


def _parse_node(name: str, raw: Any) -> NodeSpec:
    where = f"spec.nodes.{name}"
    raw = _typed(raw, dict, where)
    steps_raw = _typed(_or(raw.get("steps"), []), list, f"{where}.steps")
    steps = tuple(_parse_step(i, s, f"{where}.steps[{i}]") for i, s in enumerate(steps_raw))
    return NodeSpec(name=name, router_type=_text(raw, "routerType", where), steps=steps)


def _parse_step(index: int, raw: Any, where: str) -> StepSpec:
    raw = _typed(raw, dict, where)
    weight = raw.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int)):
        raise GraphSpecError(f"{where}.weight must be an integer")
    mapping = _or(raw.get("mapPredictionsToInstances"), False)
    if not isinstance(mapping, bool):
        raise GraphSpecError(f"{where}.mapPredictionsToInstances must be true or false")
    return StepSpec(
        index=index,
        name=_text(raw, "name", where),
        node_name=_text(raw, "nodeName", where),
        service_name=_text(raw, "serviceName", where),
        service_url=_text(raw, "serviceUrl", where),
        data=_text(raw, "data", where),
        map_predictions_to_instances=mapping,
        weight=weight,
        condition=_text(raw, "condition", where),
        dependency=_text(raw, "dependency", where),
    )


def _parse_timeouts(raw: Any) -> RouterTimeouts:
    """KServe passes these to Go's http.Client and http.Server, where zero or less is no limit, except
    that an IdleTimeout of zero is the ReadTimeout."""
    raw = _typed(raw, dict, "spec.routerTimeouts")

    def seconds(key: str, default: float | None) -> float | None:
        value = raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GraphSpecError(f"spec.routerTimeouts.{key} must be a number of seconds")
        return value

    server_read = seconds("serverRead", DEFAULT_SERVER_READ)
    server_idle = seconds("serverIdle", DEFAULT_SERVER_IDLE)
    if server_idle == 0:
        server_idle = server_read
    return RouterTimeouts(
        server_read=_limit(server_read),
        server_write=_limit(seconds("serverWrite", DEFAULT_SERVER_WRITE)),
        server_idle=_limit(server_idle),
        service_client=_limit(seconds("serviceClient", None)),
    )


def _limit(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        expected = {dict: "an object", list: "a list"}[kind]
        raise GraphSpecError(f"{where} must be {expected}")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GraphSpecError(f"{where}.{key} must be a string")
    return value
