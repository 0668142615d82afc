"""An InferenceGraph on the embedded platform: the router's graph, and the status KServe reports.

KServe's controller turns each step's `serviceName` into the URL of that InferenceService's
predictor endpoint: the service's address and the path for its protocol and model name
(`/v1/models/<model>:predict` or `/v2/models/<model>/infer`). Here a service is reached through the
gateway at `http://<name>.<namespace>.<domain>:<port>`, which is where those URLs point. A
`serviceUrl` written for a cluster (`http://<name>.<namespace>.svc.cluster.local/...`, or the
platform's `http://<name>.<namespace>.<domain>/...` without a port) is pointed at the gateway too.
The spec itself is not changed: the router's graph holds both `serviceName` and the resolved
`serviceUrl`.

plan = graph_plan(ig, services, domain="localhost", port=8080)  # services: of the graph's namespace
status = inference_graph_status(ig, plan, router_ready=..., domain=..., port=..., now=...)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass

from modelplane.api.conditions import FIELDS_HONORED, UNSCHEDULABLE
from modelplane.control.status import unhonored_condition
from modelplane.control.urls import host_url, service_host, through_gateway

PROTOCOL_V1, PROTOCOL_V2 = "v1", "v2"
_MODEL_NAME_FLAG = re.compile(r"^--model[_-]name(?:=(.*))?$")


@dataclass(frozen=True)
class GraphPlan:
    """What the router runs (`graph`, the spec with every `serviceUrl` resolved), and why it cannot
    run yet: `waiting` holds one message per InferenceService that is missing or not ready, and
    `conflict` says which InferenceService's host the graph's name would take."""

    graph: dict
    waiting: tuple[str, ...]
    conflict: str | None = None

    @property
    def services_ready(self) -> bool:
        return not self.waiting

    @property
    def runnable(self) -> bool:
        return not self.waiting and self.conflict is None


def graph_plan(
    ig: dict,
    services: Mapping[str, dict],
    *,
    domain: str | None = None,
    port: int | None = None,
    runtimes: Mapping[str, dict] | None = None,
) -> GraphPlan:
    """The router's graph for `ig`; `services` maps the name of each InferenceService of the graph's
    namespace to the stored resource (with its status), `runtimes` the name of each runtime there (its
    ServingRuntimes before the ClusterServingRuntimes) to its spec. With the gateway's `domain` and
    `port`, a `serviceUrl` that names a service of the platform or the cluster without a port goes to
    the gateway."""
    graph = copy.deepcopy(ig.get("spec") or {})
    waiting: list[str] = []
    for node in (graph.get("nodes") or {}).values():
        for step in (node or {}).get("steps") or []:
            url = step.get("serviceUrl")
            if url and isinstance(url, str) and domain is not None and port is not None:
                step["serviceUrl"] = through_gateway(url, domain, port)
            name = step.get("serviceName")
            if not name or step.get("serviceUrl"):
                continue
            isvc = services.get(name)
            if isvc is None:
                waiting.append(f"Failed to find graph service {name}")
            elif not is_ready(isvc) or not (isvc.get("status") or {}).get("url"):
                waiting.append(f"service {name} is not ready")
            else:
                # Through the gateway's port for the replicas when known (the status URL may be TLS).
                base = (
                    host_url(service_host(name, isvc_namespace(isvc), domain), port)
                    if port and domain
                    else None
                )
                try:
                    step["serviceUrl"] = predictor_endpoint(isvc, base, runtimes)
                except NoGraphProtocol as exc:
                    waiting.append(str(exc))
    name = (ig.get("metadata") or {}).get("name") or ""
    return GraphPlan(graph, tuple(dict.fromkeys(waiting)), host_conflict(name, services))


def host_conflict(graph_name: str, services: Mapping[str, dict]) -> str | None:
    """Why a graph of this name cannot have its host: an InferenceService of its namespace serves
    there (under its own name, or a component's: `<name>-predictor`). The service keeps it."""
    for name, isvc in services.items():
        spec = isvc.get("spec") or {}
        components = [c for c in ("predictor", "transformer", "explainer") if isinstance(spec.get(c), dict)]
        if graph_name in (name, *(f"{name}-{component}" for component in components)):
            return f'InferenceService "{name}" serves at the host this graph\'s name would take'
    return None


class NoGraphProtocol(Exception):
    """A service whose runtime speaks neither protocol a graph's router calls."""


def predictor_endpoint(
    isvc: dict, base: str | None = None, runtimes: Mapping[str, dict] | None = None
) -> str:
    """The service's URL (or `base`) and the path for its protocol and model name."""
    url = (base or isvc["status"]["url"]).rstrip("/")
    model = model_name(isvc)
    if protocol(isvc, runtimes) == PROTOCOL_V2:
        return f"{url}/v2/models/{model}/infer"
    return f"{url}/v1/models/{model}:predict"


def protocol(isvc: dict, runtimes: Mapping[str, dict] | None = None) -> str:
    """The protocol of the transformer if there is one, else of the predictor: the one it names, else
    the first of v1 and v2 its named runtime lists (KServe's rule; NoGraphProtocol when it lists
    neither), else V1."""
    spec = isvc.get("spec") or {}
    component = (
        spec.get("transformer") if isinstance(spec.get("transformer"), dict) else spec.get("predictor")
    )
    component = component or {}
    model = component.get("model") if isinstance(component.get("model"), dict) else {}
    version = model.get("protocolVersion") or component.get("protocolVersion")
    runtime = (runtimes or {}).get(str(model.get("runtime") or ""))
    if not version and runtime is not None and runtime.get("protocolVersions"):
        versions = [str(v).lower() for v in runtime["protocolVersions"]]
        version = next((v for v in versions if v in (PROTOCOL_V1, PROTOCOL_V2)), None)
        if version is None:
            raise NoGraphProtocol(
                f"service {isvc['metadata']['name']}: its runtime {model['runtime']} speaks "
                f"{', '.join(versions)}, none of which (v1, v2) a graph's router calls"
            )
    return PROTOCOL_V2 if str(version or PROTOCOL_V1).lower() in ("v2", "grpc-v2") else PROTOCOL_V1


def model_name(isvc: dict) -> str:
    """The name a step calls the service's model by, as KServe finds it: the transformer's first
    container's `--model_name`, else the predictor model's `MLSERVER_MODEL_NAME`, else its (or its
    first container's) `--model_name`, else the service's name. Of several `--model_name`s the last
    counts, as for the servers that read them."""
    spec = isvc.get("spec") or {}
    transformer = spec.get("transformer") if isinstance(spec.get("transformer"), dict) else None
    predictor = spec.get("predictor") if isinstance(spec.get("predictor"), dict) else {}
    if transformer is not None:
        found = _model_name_argument(_first_container(transformer).get("args") or [])
        if found:
            return found
    model = predictor.get("model") if isinstance(predictor.get("model"), dict) else None
    if model is not None:
        for variable in model.get("env") or []:
            if (
                isinstance(variable, dict)
                and variable.get("name") == "MLSERVER_MODEL_NAME"
                and variable.get("value")
            ):
                return str(variable["value"])
    found = _model_name_argument(
        (model if model is not None else _first_container(predictor)).get("args") or []
    )
    return found or isvc["metadata"]["name"]


def _first_container(component: dict) -> dict:
    containers = [c for c in component.get("containers") or [] if isinstance(c, dict)]
    return containers[0] if containers else {}


def _model_name_argument(args: list) -> str | None:
    found = None
    for index, arg in enumerate(args):
        match = _MODEL_NAME_FLAG.match(str(arg))
        if match is None:
            continue
        if match.group(1) is not None:
            found = match.group(1) or found
        elif index + 1 < len(args):
            found = str(args[index + 1])
    return found


def is_ready(resource: dict) -> bool:
    conditions = (resource.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict)
    )


def graph_host(ig: dict, domain: str) -> str:
    metadata = ig["metadata"]
    return service_host(metadata["name"], metadata.get("namespace") or "default", domain)


def inference_graph_status(
    ig: dict,
    plan: GraphPlan,
    *,
    router_ready: bool,
    router_failure: str | None = None,
    router_unschedulable: str | None = None,
    domain: str,
    port: int,
    now: str,
    previous: dict | None = None,
    unhonored: tuple[str, ...] = (),
    scheme: str = "http",
    routed: bool | None = None,
    knative: Mapping[str, dict] | None = None,
) -> dict:
    """KServe's status of a graph: `url` and `Ready=True` once its services are ready and its router
    serves; until then `Ready=False`, with the services it waits for, why the router failed (as Knative
    says of a revision that failed), why it cannot start (`router_unschedulable`: the GPUs its
    resources ask for), or the router that is starting. Fields accepted but not acted on
    (`unhonored`) are a FieldsHonored=False condition, as on an InferenceService.

    `routed` (whether a router revision has the graph's host) is given where the graph runs as in
    KServe's Knative mode: its status then has the Knative Service's conditions that KServe copies,
    ConfigurationsReady (the newest router revision) and RoutesReady (the host), around Ready. On a
    cluster, `knative` holds the conditions its Knative Service reports, by type: those two are copied
    from it, as KServe copies them, where Knative has written them."""
    previous = previous or {}
    status: dict = {"observedGeneration": (ig.get("metadata") or {}).get("generation", 1)}
    if plan.conflict:
        ready = {"status": "False", "reason": "HostConflict", "message": plan.conflict}
    elif plan.waiting:
        ready = {"status": "False", "reason": "ServiceNotReady", "message": "; ".join(plan.waiting)}
    elif router_ready:
        ready = {"status": "True"}
        status["url"] = host_url(graph_host(ig, domain), port, scheme)
    elif router_failure:
        ready = {"status": "False", "reason": "RevisionFailed", "message": router_failure}
    elif router_unschedulable:
        ready = {"status": "False", "reason": UNSCHEDULABLE, "message": router_unschedulable}
    else:
        ready = {"status": "False", "reason": "RouterNotReady", "message": "the router is starting"}
    before = _conditions_by_type(previous)
    status["conditions"] = [_condition(before, "Ready", ready, now)]
    if routed is not None:
        reported = knative or {}
        configuration = _reported(reported.get("ConfigurationsReady")) or _configuration_condition(
            router_ready, router_failure, router_unschedulable
        )
        routes = _reported(reported.get("RoutesReady")) or _routes_condition(routed)
        status["conditions"] = [
            _condition(before, "ConfigurationsReady", configuration, now),
            *status["conditions"],
            _condition(before, "RoutesReady", routes, now),
        ]
    # Stopped goes last, as KServe appends it while the graph is not stopped.
    status["conditions"].append(_condition(before, "Stopped", {"status": "False"}, now))
    if unhonored:
        status["conditions"].append(_condition(before, FIELDS_HONORED, unhonored_condition(unhonored), now))
    return status


def _configuration_condition(ready: bool, failure: str | None, unschedulable: str | None) -> dict:
    """Knative's ConfigurationsReady: the newest router revision is ready, failed, or not yet."""
    if ready:
        return {"status": "True"}
    if failure:
        return {"status": "False", "reason": "RevisionFailed", "message": failure}
    if unschedulable:
        return {"status": "False", "reason": UNSCHEDULABLE, "message": unschedulable}
    return {"status": "Unknown", "reason": "RevisionMissing", "message": "the router is starting"}


def _reported(condition: dict | None) -> dict | None:
    """A condition Knative reported, as the graph carries it (its time is the graph's own), or None."""
    if not condition or not condition.get("status"):
        return None
    return {key: condition[key] for key in ("status", "reason", "message") if condition.get(key)}


def _routes_condition(routed: bool) -> dict:
    """Knative's RoutesReady: a router revision has the host (the one before a new one, meanwhile)."""
    if routed:
        return {"status": "True"}
    return {
        "status": "Unknown",
        "reason": "RevisionMissing",
        "message": "no router revision serves the host yet",
    }


def stopped_graph_status(ig: dict, *, now: str, previous: dict | None = None) -> dict:
    """`serving.kserve.io/stop: "true"`: no router, no URL; Stopped=True and Ready=False."""
    before = _conditions_by_type(previous or {})
    conditions = [
        _condition(before, "Ready", {"status": "False", "reason": "Stopped"}, now),
        _condition(before, "Stopped", {"status": "True"}, now),
    ]
    return {"observedGeneration": (ig.get("metadata") or {}).get("generation", 1), "conditions": conditions}


def _conditions_by_type(status: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def _condition(before: dict[str, dict], kind: str, condition: dict, now: str) -> dict:
    """A condition of `kind`, its lastTransitionTime kept from `before` while its status is the same."""
    old = before.get(kind)
    same = old is not None and old.get("status") == condition["status"]
    return {
        "type": kind,
        **condition,
        "lastTransitionTime": old.get("lastTransitionTime", now) if same else now,
    }


def isvc_namespace(isvc: dict) -> str:
    return (isvc.get("metadata") or {}).get("namespace") or "default"
