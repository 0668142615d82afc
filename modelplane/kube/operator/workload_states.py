"""From the objects the cluster reports on (Deployments, Knative Services, HTTPRoutes) and their pods
to the revision and component states `modelplane.control.status` writes a status from.

Standard mode has no revisions: a component's one "revision" is its Deployment, ready as KServe's
`PropagateRawStatus` reads the Deployment's conditions (Available, or Progressing with
NewReplicaSetAvailable; failed when Progressing is False or a ReplicaFailure is reported), and failed
when its pods say so (`pod_states`). Knative mode has Knative's revisions, traffic and URLs, copied
from the Knative Service's status as KServe copies them.
"""

from __future__ import annotations

from modelplane.api import conditions as c
from modelplane.control.observed import ComponentState, Failure, RevisionState
from modelplane.control.traffic import TrafficTarget, rolled_out_after
from modelplane.kube.operator.pod_states import PodsState, pods_state

TRUE, FALSE = "True", "False"


def conditions_of(obj: dict | None) -> dict[str, dict]:
    return {x.get("type"): x for x in ((obj or {}).get("status") or {}).get("conditions") or []}


def deployment_revision(deployment: dict, pods: list[dict]) -> RevisionState:
    """A Deployment as a revision: Loaded when available, FailedToLoad when its pods or its conditions
    say it cannot be, Loading while pods start, Pending before."""
    name = deployment["metadata"]["name"]
    status = deployment.get("status") or {}
    conditions = conditions_of(deployment)
    seen = pods_state(pods)
    available = int(status.get("availableReplicas") or 0)
    desired = (deployment.get("spec") or {}).get("replicas")
    ready = _condition_is(conditions, "Available", TRUE) or (
        _condition_is(conditions, "Progressing", TRUE)
        and conditions["Progressing"].get("reason") == "NewReplicaSetAvailable"
    )
    failure = seen.failure or _deployment_failure(conditions)
    if ready and available > 0:
        phase = c.LOADED
    elif failure is not None:
        phase = c.FAILED_TO_LOAD
    elif seen.started and not seen.unschedulable:
        phase = c.LOADING
    else:
        phase = c.PENDING
    return _revision(name, phase, available, seen, failure, desired)


def standard_component(deployment: dict | None, pods: list[dict]) -> ComponentState | None:
    """A Standard-mode component: its Deployment, which takes all its traffic once available."""
    if deployment is None:
        return None
    revision = deployment_revision(deployment, pods)
    if not revision.ready:
        return ComponentState(revision)
    return ComponentState(revision, revision, (TrafficTarget(revision.name, 100, True),))


def knative_component(
    ksvc: dict | None, pods: list[dict], before: dict, serving_pods: list[dict] | None = None
) -> ComponentState | None:
    """A Knative-mode component from its Knative Service's status; `pods` are its newest revision's,
    `serving_pods` those of its newest ready one when that is another; `before` is the component's
    status as last written (which revision was rolled out)."""
    if ksvc is None:
        return None
    status = ksvc.get("status") or {}
    latest_name = status.get("latestCreatedRevisionName")
    if not latest_name:
        return None
    ready_name = status.get("latestReadyRevisionName")
    conditions = conditions_of(ksvc)
    seen = pods_state(pods)
    failure = seen.failure
    configuration = conditions.get("ConfigurationsReady") or {}
    if failure is None and configuration.get("status") == FALSE:
        failure = Failure(
            c.MODEL_LOAD_FAILED, configuration.get("message") or configuration.get("reason") or "it failed"
        )
    if ready_name == latest_name:
        phase = c.LOADED
    elif failure is not None:
        phase = c.FAILED_TO_LOAD
    else:
        phase = c.LOADING if seen.started else c.PENDING
    latest = _revision(latest_name, phase, seen.ready, seen, failure, None)
    serving = None
    if ready_name:
        if ready_name == latest_name:
            serving = latest
        else:
            ready = pods_state(serving_pods or [])
            serving = _revision(ready_name, c.LOADED, ready.ready, ready, None, None)
    targets = tuple(
        TrafficTarget(
            t.get("revisionName") or "",
            int(t.get("percent") or 0),
            bool(t.get("latestRevision")),
            t.get("tag"),
        )
        for t in status.get("traffic") or []
    )
    rolled_out = before.get("latestRolledoutRevision")
    now_rolled_out = rolled_out_after(targets, ready_name == latest_name, rolled_out)
    previous = before.get("previousRolledoutRevision")
    if now_rolled_out != rolled_out and rolled_out:
        previous = rolled_out
    return ComponentState(latest, serving, targets, now_rolled_out, previous)


def route_accepted(route: dict) -> bool:
    """Whether an HTTPRoute's gateway took it (every parent reports Accepted)."""
    parents = (route.get("status") or {}).get("parents") or []
    return bool(parents) and all(
        any(x.get("type") == "Accepted" and x.get("status") == TRUE for x in p.get("conditions") or [])
        for p in parents
    )


def _revision(
    name: str, phase: str, ready: int, seen: PodsState, failure: Failure | None, desired: int | None
) -> RevisionState:
    return RevisionState(
        name,
        phase,
        ready_replicas=ready,
        failed_replicas=seen.failed,
        failure=failure if phase == c.FAILED_TO_LOAD else None,
        desired_replicas=desired,
        restarts=seen.restarts,
        last_termination=seen.last_termination,
        unschedulable=seen.unschedulable,
    )


def _condition_is(conditions: dict[str, dict], kind: str, status: str) -> bool:
    return (conditions.get(kind) or {}).get("status") == status


def _deployment_failure(conditions: dict[str, dict]) -> Failure | None:
    progressing = conditions.get("Progressing") or {}
    if progressing.get("status") == FALSE:
        return Failure(c.MODEL_LOAD_FAILED, progressing.get("message") or progressing.get("reason") or "")
    replica_failure = conditions.get("ReplicaFailure") or {}
    if replica_failure.get("status") == TRUE:
        return Failure(c.MODEL_LOAD_FAILED, replica_failure.get("message") or "the pods cannot be created")
    return None
