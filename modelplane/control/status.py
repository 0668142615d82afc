"""An InferenceService's status, as KServe reports it, from what the platform observes.

Conditions follow KServe's Knative mode: `<Component>Ready` is the state of the component's newest
revision (Unknown while it loads, False when it failed), `IngressReady` tells whether the gateway
routes the service's host (an explainer that does not serve does not hold it back), and `Ready` is
PredictorReady and IngressReady. While a new revision
loads or after it failed, the rolled-out revision keeps the traffic; `components.<c>.traffic` says how
the traffic is split (see `traffic.py`), and `modelStatus` tells how the newest predictor fared.
A revision whose replicas cannot get the GPUs they ask for is `Unschedulable`, as a pod the scheduler
cannot place; `FieldsHonored` lists the fields the platform accepts but cannot act on.
"""

from __future__ import annotations

from modelplane.api import conditions as c
from modelplane.control.observed import (
    CanaryState,
    ComponentState,
    Failure,
    RevisionState,
    ServiceState,
    Termination,
)
from modelplane.control.traffic import TrafficTarget
from modelplane.control.urls import (
    component_host,
    entry_component,
    grpc_url,
    host_url,
    predictor_name,
    service_host,
)

COMPONENT_CONDITIONS = {
    "predictor": c.PREDICTOR_READY,
    "transformer": c.TRANSFORMER_READY,
    "explainer": c.EXPLAINER_READY,
}
CONFIGURATION_CONDITIONS = {
    "predictor": c.PREDICTOR_CONFIGURATION_READY,
    "transformer": c.TRANSFORMER_CONFIGURATION_READY,
    "explainer": c.EXPLAINER_CONFIGURATION_READY,
}
ROUTE_CONDITIONS = {
    "predictor": c.PREDICTOR_ROUTE_READY,
    "transformer": c.TRANSFORMER_ROUTE_READY,
    "explainer": c.EXPLAINER_ROUTES_READY,
}
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def inference_service_status(
    isvc: dict,
    state: ServiceState,
    *,
    domain: str,
    port: int,
    now: str,
    previous: dict | None = None,
    scheme: str = "http",
) -> dict:
    """The whole `status` of an InferenceService. `previous` is the stored status: conditions that
    did not change keep their lastTransitionTime. `port` and `scheme` are the gateway's, for the URLs."""
    previous = previous or {}
    metadata = isvc.get("metadata") or {}
    name, namespace = metadata["name"], metadata.get("namespace") or "default"
    spec_components = [k for k in COMPONENT_CONDITIONS if isinstance((isvc.get("spec") or {}).get(k), dict)]

    found = {}
    for component in spec_components:
        observed = state.components.get(component)
        found[COMPONENT_CONDITIONS[component]] = _component_condition(component, observed, state.invalid)
        # Knative's view of the same: the newest revision (configuration) and the traffic (route).
        found[CONFIGURATION_CONDITIONS[component]] = found[COMPONENT_CONDITIONS[component]]
        found[ROUTE_CONDITIONS[component]] = _route_condition(component, observed)
    found[c.LATEST_DEPLOYMENT_READY] = _all_of(found, CONFIGURATION_CONDITIONS, spec_components)
    found[c.ROUTES_READY] = _all_of(found, ROUTE_CONDITIONS, spec_components)
    found[c.INGRESS_READY] = _ingress_condition(state, spec_components)
    found[c.READY] = _ready_condition(found[c.PREDICTOR_READY], found[c.INGRESS_READY])
    found[c.STOPPED] = {"status": FALSE, "severity": "Info"}
    if state.canaries:
        found[c.CANARY_PREDICTOR_READY] = _canary_condition(state.canaries)
    if state.unhonored:
        found[c.FIELDS_HONORED] = unhonored_condition(state.unhonored)

    status: dict = {
        "observedGeneration": metadata.get("generation"),
        "conditions": with_transition_times(found, previous.get("conditions") or [], now),
    }
    entry = entry_component(spec_components)
    hosts = {
        component: component_host(name, namespace, component, domain, predictor_name(isvc))
        for component in spec_components
    }
    if state.routed:
        status["url"] = host_url(service_host(name, namespace, domain), port, scheme)
        status["address"] = {"url": host_url(hosts[entry], port, scheme)}
    components = {}
    for component in spec_components:
        observed = state.components.get(component)
        if observed is not None:
            components[component] = _component_status(component, hosts[component], observed, port, scheme)
    if components:
        status["components"] = components
    if state.canaries:
        status["canaryStatuses"] = [
            {"name": canary.name, "ready": canary.ready, "trafficPercent": canary.percent}
            for canary in state.canaries
        ]
    status["modelStatus"] = _model_status(state.components.get("predictor"), state.invalid)
    revisions = _revision_replicas(state)
    if revisions:
        status["revisions"] = revisions
    runtime = state.runtime or {}
    if runtime.get("kind") == "ServingRuntime":
        status["servingRuntimeName"] = runtime["name"]
    elif runtime.get("kind") == "ClusterServingRuntime":
        status["clusterServingRuntimeName"] = runtime["name"]
    return status


def _revision_replicas(state: ServiceState) -> list[dict]:
    """modelplane's addition: the replicas of each running revision, ready and wanted, as Knative
    reports them on its Revisions (`actualReplicas`, `desiredReplicas`)."""
    entries = []
    for component, revisions in state.running.items():
        for revision in revisions:
            entry = {"name": revision.name, "component": component, "actualReplicas": revision.ready_replicas}
            if revision.desired_replicas is not None:
                entry["desiredReplicas"] = revision.desired_replicas
            entry.update(_replica_states(revision))
            entries.append(entry)
    return sorted(entries, key=lambda e: (e["component"], e["name"]))


def _replica_states(revision: RevisionState) -> dict:
    """What Kubernetes reports of a pod's container: why it waits, its restarts and how it last ended."""
    found: dict = {}
    if revision.unschedulable:
        found["state"] = {"waiting": {"reason": c.UNSCHEDULABLE, "message": revision.unschedulable}}
    if revision.restarts:
        found["restartCount"] = revision.restarts
    ended = revision.last_termination
    if ended is not None:
        terminated = {"reason": ended.reason, "exitCode": ended.exit_code, "finishedAt": ended.finished_at}
        if ended.message:
            terminated["message"] = ended.message
        found["lastState"] = {"terminated": terminated}
    return found


def unhonored_condition(unhonored: tuple[str, ...]) -> dict:
    """modelplane's own: fields accepted but not acted on. A warning: it does not gate Ready."""
    return {
        "status": FALSE,
        "severity": "Warning",
        "reason": c.NOT_HONORED_ON_ONE_MACHINE,
        "message": "Accepted but not acted on: " + "; ".join(unhonored) + ".",
    }


def _canary_condition(canaries: tuple[CanaryState, ...]) -> dict:
    waiting = [canary for canary in canaries if not canary.ready]
    if not waiting:
        return _condition(TRUE, c.ALL_CANARIES_READY)
    described = "; ".join(f"{canary.name}: {canary.problem or 'not ready yet'}" for canary in waiting)
    return _condition(FALSE, c.CANARIES_NOT_READY, f"Canaries not ready: {described}")


def stopped_status(isvc: dict, *, now: str, previous: dict | None = None) -> dict:
    """The status of an InferenceService with `serving.kserve.io/stop: "true"`: nothing runs, and every
    readiness condition is False with reason Stopped."""
    spec = isvc.get("spec") or {}
    stopped = _condition(FALSE, c.STOPPED_REASON, "The InferenceService is stopped.")
    found = {COMPONENT_CONDITIONS[k]: stopped for k in COMPONENT_CONDITIONS if isinstance(spec.get(k), dict)}
    found[c.INGRESS_READY] = found[c.READY] = stopped
    if spec.get("canary"):
        found[c.CANARY_PREDICTOR_READY] = _condition(
            FALSE, c.STOPPED_REASON, "The InferenceService is stopped."
        )
    found[c.STOPPED] = {"status": TRUE, "severity": "Info"}
    return {
        "observedGeneration": (isvc.get("metadata") or {}).get("generation"),
        "conditions": with_transition_times(found, (previous or {}).get("conditions") or [], now),
    }


def _component_condition(component: str, observed: ComponentState | None, invalid: Failure | None) -> dict:
    if invalid is not None and (component == "predictor" or observed is None):
        return _condition(FALSE, invalid.reason, invalid.message)
    if observed is None:
        return _condition(UNKNOWN, "RevisionMissing", f"The {component} has no revision yet.")
    latest = observed.latest
    if latest.ready:
        return _condition(TRUE)
    if latest.phase == c.FAILED_TO_LOAD:
        detail = latest.failure.message if latest.failure else "it failed"
        return _condition(FALSE, "RevisionFailed", f'Revision "{latest.name}" failed with message: {detail}.')
    if latest.unschedulable and latest.phase == c.PENDING:
        message = f'Revision "{latest.name}" cannot start: {latest.unschedulable}.'
        return _condition(FALSE, c.UNSCHEDULABLE, message)
    why = f": {latest.not_ready}" if latest.not_ready else ""
    return _condition(UNKNOWN, "RevisionMissing", f'Revision "{latest.name}" is not ready yet{why}.')


def _route_condition(component: str, observed: ComponentState | None) -> dict:
    if observed is not None and observed.traffic:
        return _condition(TRUE)
    return _condition(UNKNOWN, "RevisionMissing", f"The {component} has no revision to send traffic to yet.")


def _all_of(found: dict[str, dict], kinds: dict[str, str], spec_components: list[str]) -> dict:
    """Knative's aggregates: True when each component's condition is, else reason `<condition> not ready`."""
    for component in spec_components:
        condition = found[kinds[component]]
        if condition["status"] != TRUE:
            return _condition(condition["status"], f"{kinds[component]} not ready")
    return _condition(TRUE)


def _ingress_condition(state: ServiceState, spec_components: list[str]) -> dict:
    """True once the service's host is routed: its predictor and transformer serve. The explainer does
    not hold it back (ExplainerReady and ExplainerRoutesReady say how it fares)."""
    waiting = [
        component
        for component in spec_components
        if component != "explainer"
        and ((observed := state.components.get(component)) is None or not observed.traffic)
    ]
    if waiting or not state.routed:
        names = ", ".join(k.capitalize() for k in waiting) or "Predictor"
        return _condition(FALSE, "IngressNotCreated", f"{names} ingress not created")
    return _condition(TRUE)


def _ready_condition(predictor: dict, ingress: dict) -> dict:
    for dependency in (predictor, ingress):
        if dependency["status"] != TRUE:
            return _condition(dependency["status"], dependency.get("reason"), dependency.get("message"))
    return _condition(TRUE)


def _condition(status: str, reason: str | None = None, message: str | None = None) -> dict:
    condition = {"status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def with_transition_times(found: dict[str, dict], previous: list[dict], now: str) -> list[dict]:
    """Conditions sorted by type, each keeping its lastTransitionTime while its status is the same."""
    before = {item.get("type"): item for item in previous if isinstance(item, dict)}
    result = []
    for kind in sorted(found):
        condition = {"type": kind, **found[kind]}
        old = before.get(kind)
        same = old is not None and old.get("status") == condition["status"]
        condition["lastTransitionTime"] = old.get("lastTransitionTime", now) if same else now
        result.append(condition)
    return result


def _component_status(component: str, host: str, observed: ComponentState, port: int, scheme: str) -> dict:
    status: dict = {"latestCreatedRevision": observed.latest.name}
    if observed.serving is not None:
        status["latestReadyRevision"] = observed.serving.name
    if observed.traffic:
        url = host_url(host, port, scheme)
        status["url"] = url
        status["address"] = {"url": url}
        if component == "predictor":  # the V2 gRPC service of the model server, through the gateway
            status["grpcUrl"] = grpc_url(host, port)
        status["traffic"] = [_traffic_entry(target, host, port, scheme) for target in observed.traffic]
    if observed.rolled_out:
        status["latestRolledoutRevision"] = observed.rolled_out
    if observed.previous_rolled_out:
        status["previousRolledoutRevision"] = observed.previous_rolled_out
    return status


def _traffic_entry(target: TrafficTarget, host: str, port: int, scheme: str) -> dict:
    entry: dict = {}
    if target.tag:
        entry["tag"] = target.tag
    entry.update(revisionName=target.revision, latestRevision=target.latest, percent=target.percent)
    if target.tag:
        entry["url"] = host_url(f"{target.tag}-{host}", port, scheme)
    return entry


def _model_status(predictor: ComponentState | None, invalid: Failure | None) -> dict:
    """`modelStatus` as the seeds describe it: `targetModelState` only while the newest revision is not
    the one that serves (`transitionStatus` is not `UpToDate`), `copies` the replicas that hold the
    serving model, `lastFailureInfo` the newest failure (a load that failed, or a replica that exited)."""
    serving = predictor.serving if predictor else None
    active = c.LOADED if serving is not None else ""
    copies = {"failedCopies": 0, "totalCopies": serving.ready_replicas if serving else 0}
    if invalid is not None:
        return {
            "transitionStatus": c.INVALID_SPEC,
            "states": {"activeModelState": active, "targetModelState": c.FAILED_TO_LOAD},
            "lastFailureInfo": failure_info(invalid, None),
            "copies": copies,
        }
    if predictor is None:
        return {
            "transitionStatus": c.IN_PROGRESS,
            "states": {"activeModelState": active, "targetModelState": c.PENDING},
            "copies": copies,
        }
    latest = predictor.latest
    copies["failedCopies"] = latest.failed_replicas
    if latest.phase == c.LOADED:
        transition = c.UP_TO_DATE
    elif latest.phase == c.FAILED_TO_LOAD:
        transition = c.BLOCKED_BY_FAILED_LOAD
    else:
        transition = c.IN_PROGRESS
    states = {"activeModelState": active}
    if transition != c.UP_TO_DATE:
        states["targetModelState"] = latest.phase
    status: dict = {"transitionStatus": transition, "states": states, "copies": copies}
    last_failure = _last_failure(predictor)
    if last_failure is not None:
        status["lastFailureInfo"] = last_failure
    return status


def _last_failure(predictor: ComponentState) -> dict | None:
    """The newest revision's failure to load; else how a replica of the newest or the serving revision
    last exited (it restarts, and the model may serve again, but the process did end)."""
    latest = predictor.latest
    if latest.phase == c.FAILED_TO_LOAD and latest.failure is not None:
        return failure_info(latest.failure, latest.name)
    ends = [
        (revision.last_termination, revision.name)
        for revision in (latest, predictor.serving)
        if revision is not None and revision.last_termination is not None
    ]
    if not ends:
        return None
    ended, revision = max(ends, key=lambda end: end[0].finished_at)
    return failure_info(exit_failure(ended), revision)


def exit_failure(ended: Termination) -> Failure:
    """A replica's process that ended, as a lastFailureInfo: the runtime was unhealthy."""
    who = f"replica {ended.location}" if ended.location else "a replica"
    message = f"{who} exited with code {ended.exit_code} ({ended.reason})"
    if ended.message:
        message += f": {ended.message}"
    return Failure(c.RUNTIME_UNHEALTHY, message, ended.exit_code, ended.finished_at, ended.location)


def failure_info(failure: Failure, revision: str | None) -> dict:
    info: dict = {"reason": failure.reason, "message": failure.message}
    if failure.location:
        info["location"] = failure.location
    if revision:
        info["modelRevisionName"] = revision
    if failure.time:
        info["time"] = failure.time
    if failure.exit_code is not None:
        info["exitCode"] = failure.exit_code
    return info


def not_serving_reason(status: dict, component: str | None = None) -> str:
    """Why a service's host (or one `component`'s host) does not serve, from its status: the message of
    the component's condition, else of the first condition of the predictor or the transformer that is
    not True, else of the Ready condition."""
    conditions = {item.get("type"): item for item in status.get("conditions") or [] if isinstance(item, dict)}
    kinds = (c.PREDICTOR_READY, c.TRANSFORMER_READY, c.READY)
    if component is not None:
        kinds = (COMPONENT_CONDITIONS[component], *kinds)
    for kind in kinds:
        condition = conditions.get(kind)
        if condition is not None and condition.get("status") != TRUE and condition.get("message"):
            return condition["message"]
    return why_not_ready(conditions.get(c.READY))


def why_not_ready(ready: dict | None) -> str:
    """A Ready condition that is not True, in words: its message, else what its reason means."""
    ready = ready or {}
    if ready.get("message"):
        return ready["message"]
    if ready.get("reason") == "Stopped":
        return 'it is stopped (its serving.kserve.io/stop annotation is "true")'
    return f"it is not ready ({ready['reason']})" if ready.get("reason") else "it is not ready"
