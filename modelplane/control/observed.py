"""What the platform observes about an InferenceService's revisions: the input of `status`.

A revision's phase uses the modelStatus state names: `Pending` (nothing started yet), `Loading`
(fetching the model or waiting for the replica to be ready), `Loaded` (a replica is ready) and
`FailedToLoad` (the model could not be fetched or loaded, or the replica keeps crashing). A revision
whose replicas wait for resources the machine cannot give yet stays `Pending` and says why
(`unschedulable`); one whose replicas run but are not reached where they listen stays `Loading` and
says why (`not_ready`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from modelplane.api.conditions import FAILED_TO_LOAD, LOADED, LOADING, PENDING
from modelplane.control.traffic import TrafficTarget

PHASES = (PENDING, LOADING, LOADED, FAILED_TO_LOAD)


@dataclass(frozen=True)
class Failure:
    """Why a model is not served: a modelStatus.lastFailureInfo."""

    reason: str
    message: str
    exit_code: int | None = None
    time: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Termination:
    """How a replica's process last ended, as Kubernetes reports a container's `lastState.terminated`:
    reason `OOMKilled` (over its memory limit), `Error` (a non-zero exit) or `Completed`."""

    reason: str
    exit_code: int
    finished_at: str
    message: str | None = None
    location: str | None = None  # the replica (a pod, on a cluster) whose process ended


@dataclass(frozen=True)
class RevisionState:
    name: str
    phase: str = PENDING
    ready_replicas: int = 0
    failed_replicas: int = 0
    failure: Failure | None = None
    desired_replicas: int | None = None  # None: not known (the revision is not scaled by count)
    restarts: int = 0  # of all its replicas
    last_termination: Termination | None = None  # the latest of its replicas' ends
    unschedulable: str | None = None  # why its replicas cannot start (the GPUs they need are not free)
    not_ready: str | None = None  # why its replicas are not ready yet, where the platform can tell

    @property
    def ready(self) -> bool:
        return self.phase == LOADED

    @property
    def gave_up(self) -> bool:
        """Every replica it wants failed to start: a request waiting for it would only wait."""
        return (
            self.failure is not None
            and not self.ready
            and self.failed_replicas >= (self.desired_replicas or 1)
        )


def as_reported(state: RevisionState, keeps_traffic: bool) -> RevisionState:
    """The state the status reports of a revision. One that keeps its traffic (the control plane has seen
    it ready, and it has not failed since) while it starts its replicas again, woken from zero, stays
    Loaded with no ready replica, as it was at zero: Knative leaves whether a revision is active out of its
    Ready condition. A replica that exited is a crash, not a start: reported as it is."""
    if keeps_traffic and not state.ready and state.last_termination is None:
        return replace(state, phase=LOADED)
    return state


@dataclass(frozen=True)
class ComponentState:
    """One component: its newest revision, its newest ready one (None: none yet), how its traffic is
    split, and the revisions that last had all of it (`latestRolledoutRevision` and the one before)."""

    latest: RevisionState
    serving: RevisionState | None = None
    traffic: tuple[TrafficTarget, ...] = ()
    rolled_out: str | None = None
    previous_rolled_out: str | None = None


@dataclass(frozen=True)
class CanaryState:
    """One Standard-mode canary: its share, whether a replica of it is ready, and why not if it failed."""

    name: str
    percent: int
    ready: bool
    problem: str | None = None


@dataclass(frozen=True)
class ServiceState:
    """Everything `inference_service_status` needs besides the resource itself.

    `invalid` is set when the spec cannot run at all (no runtime, nothing to run): the components
    then keep whatever revisions they had. `routed` tells whether the gateway has the service's hosts.
    `running` lists every revision with replicas (or scaled to zero), per component; `canaries` the
    Standard-mode canaries of `spec.canary`.
    """

    components: Mapping[str, ComponentState] = field(default_factory=dict)
    invalid: Failure | None = None
    runtime: Mapping[str, str] | None = None
    routed: bool = False
    running: Mapping[str, tuple[RevisionState, ...]] = field(default_factory=dict)
    canaries: tuple[CanaryState, ...] = ()
    # Fields of the spec (or its runtime) the platform accepts but cannot act on, as `path: why`.
    unhonored: tuple[str, ...] = ()
