"""What a workload's pods say about its model, as KServe's `PropagateModelStatus` reads them: a
storage initializer that failed (a fetch that did not work), a runtime container in a crash loop (a
model that does not load, a server that exits), an image that cannot be pulled, a pod that no node
can take. Pods are looked at newest first; the first problem found is the one reported."""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelplane.api import conditions as c
from modelplane.api.constants import PREDICTOR_CONTAINER
from modelplane.control.observed import Failure, Termination

STORAGE_INITIALIZER = "storage-initializer"
IMAGE_PROBLEMS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
START_PROBLEMS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class PodsState:
    ready: int = 0  # pods whose Ready condition is True
    failed: int = 0  # pods with a problem below
    failure: Failure | None = None  # the newest pod's problem
    restarts: int = 0
    last_termination: Termination | None = None
    unschedulable: str | None = None
    started: bool = False  # any pod is there (initializing, starting, running)


def pods_state(pods: list[dict]) -> PodsState:
    failure = None
    failed = ready = restarts = 0
    last: Termination | None = None
    unschedulable = None
    for pod in sorted(pods, key=_created, reverse=True):
        status = pod.get("status") or {}
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if _condition(status, "Ready") == "True":
            ready += 1
        problem = pod_failure(pod)
        if problem is not None:
            failed += 1
            failure = failure or problem
        for container in status.get("containerStatuses") or []:
            restarts += int(container.get("restartCount") or 0)
            ended = _termination(container, _name(pod))
            if ended is not None and (last is None or ended.finished_at > last.finished_at):
                last = ended
        if unschedulable is None:
            unschedulable = _unschedulable(status)
    return PodsState(ready, failed, failure, restarts, last, unschedulable, started=bool(pods))


def pod_failure(pod: dict) -> Failure | None:
    """Why a pod does not serve its model, if it cannot; its `location` is the pod."""
    found = _pod_failure(pod)
    return replace(found, location=_name(pod)) if found is not None else None


def _pod_failure(pod: dict) -> Failure | None:
    status = pod.get("status") or {}
    for container in status.get("initContainerStatuses") or []:
        if container.get("name") != STORAGE_INITIALIZER:
            continue
        ended = _failed_run(container)
        if ended is not None:
            message = (
                ended.get("message") or f"exited with code {ended.get('exitCode')} ({ended.get('reason')})"
            )
            return Failure(
                c.MODEL_LOAD_FAILED,
                f"the storage initializer failed to fetch the model: {message.strip()}",
                exit_code=ended.get("exitCode"),
                time=ended.get("finishedAt"),
            )
    containers = sorted(
        status.get("containerStatuses") or [], key=lambda s: s.get("name") != PREDICTOR_CONTAINER
    )
    for container in [*(status.get("initContainerStatuses") or []), *containers]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        name = container.get("name")
        if reason in IMAGE_PROBLEMS:
            message = f'container "{name}" cannot pull its image {container.get("image")!r}: {reason}'
            if waiting.get("message"):
                message += f": {waiting['message']}"
            return Failure(c.RUNTIME_UNHEALTHY, message)
        if reason in START_PROBLEMS:
            return Failure(
                c.RUNTIME_UNHEALTHY,
                f'container "{name}" cannot start: {reason}: {waiting.get("message", "")}'.rstrip(": "),
            )
    for container in containers:
        ended = _failed_run(container)
        if ended is not None:
            name = container.get("name")
            message = f'container "{name}" exited with code {ended.get("exitCode")} ({ended.get("reason")})'
            if ended.get("message"):
                message += f": {ended['message'].strip()}"
            return Failure(
                c.MODEL_LOAD_FAILED, message, exit_code=ended.get("exitCode"), time=ended.get("finishedAt")
            )
    return None


def _failed_run(container: dict) -> dict | None:
    """The run that ended a container in error: terminated with a non-zero code now, or before the
    back-off of a crash loop."""
    state = container.get("state") or {}
    terminated = state.get("terminated")
    if terminated and int(terminated.get("exitCode") or 0) != 0:
        return terminated
    if (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff":
        return ((container.get("lastState") or {}).get("terminated")) or {"reason": "CrashLoopBackOff"}
    return None


def _termination(container: dict, pod: str | None) -> Termination | None:
    ended = (container.get("lastState") or {}).get("terminated")
    if not ended:
        return None
    return Termination(
        ended.get("reason") or "Error",
        int(ended.get("exitCode") or 0),
        ended.get("finishedAt") or "",
        ended.get("message"),
        pod,
    )


def _name(pod: dict) -> str | None:
    return (pod.get("metadata") or {}).get("name")


def _unschedulable(status: dict) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return condition.get("message") or "no node can take the pod"
    return None


def _condition(status: dict, kind: str) -> str | None:
    return next((x.get("status") for x in status.get("conditions") or [] if x.get("type") == kind), None)


def _created(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""
