"""The autoscaler of `modelplane up`: replica counts that follow each revision's requests, or its
replicas' cpu and memory.

Every revision that scales on its requests (concurrency or rps) gets a `RevisionAutoscaler`. Each
tick, it is fed the gateway's counters for the revision and its decision sets the revision's replica
count. A request for a revision at zero replicas does not wait for the tick: the gateway's
`on_demand` hands the revision's name over to the platform's loop, where it wakes the revision up.

A revision an HPA would scale (a cpu or memory metric) gets a `ResourceAutoscaler` instead: every
sync period (15 s) its ready replicas' processes are measured from /proc (the cores they used over
the period, the memory they hold) and its decision sets the count.

    autoscaling = Autoscaling(AutoscalerConfig(), tick=2.0)
    gateway = GatewayThread(config, on_demand=autoscaling.wake_from_any_thread).start()
    autoscaling.start(gateway.revision_stats)
    count = autoscaling.track("iris-predictor-00001", settings, replicas, on_scale=reconcile)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Protocol

from modelplane.control.autoscaler import RevisionAutoscaler, ScaleDecision
from modelplane.control.autoscaling_settings import (
    AutoscalerConfig,
    AutoscalerSettings,
    AutoscalingError,
    fixed_replicas,
    revision_scaling,
)
from modelplane.control.hpa_settings import ResourceScaling, resource_scaling
from modelplane.control.resource_autoscaler import ReplicaUsage, ResourceAutoscaler
from modelplane.control.revisions import Revision
from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.replicas.cpu_time import tree_cpu_seconds
from modelplane.local.replicas.memory_watch import tree_memory
from modelplane.local.replicas.resources import resource_requests

logger = logging.getLogger("modelplane.autoscaler")

DEFAULT_TICK = 2.0  # seconds, as Knative's autoscaler ticks
HPA_SYNC_PERIOD = 15.0  # seconds, as the HPA controller's --horizontal-pod-autoscaler-sync-period


class Scalable(Protocol):
    """What the autoscaler scales: a revision's replicas (`RevisionReplicas`)."""

    desired: int

    @property
    def revision(self) -> Revision: ...

    def scale(self, count: int, busy: Collection[str] = ()) -> None: ...


class Measurable(Scalable, Protocol):
    """What the resource autoscaler also reads: the replicas, and the processes of the ready ones."""

    replicas: list

    def ready_pids(self) -> list[int]: ...


@dataclass
class _Tracked:
    autoscaler: RevisionAutoscaler
    replicas: Scalable
    on_scale: Callable[[], None]
    settings: AutoscalerSettings  # as the revision asked, before any lowering (`lower_minimum`)
    wanted: int = 0  # its last decision, before any cap (`cap`)


@dataclass
class _ResourceTracked:
    autoscaler: ResourceAutoscaler
    replicas: Measurable
    on_scale: Callable[[], None]
    settings: ResourceScaling  # as the revision asked, before any lowering (`lower_minimum`)
    wanted: int = 0  # its last decision, before any cap (`cap`)
    cpu_seconds: dict[int, tuple[float, float]] = field(default_factory=dict)  # pid: (taken at, total)


class Autoscaling:
    """The autoscalers of every tracked revision; runs on the platform's event loop."""

    def __init__(
        self,
        config: AutoscalerConfig | None = None,
        tick: float = DEFAULT_TICK,
        sync_period: float = HPA_SYNC_PERIOD,
    ) -> None:
        self.config = config or AutoscalerConfig()
        self.tick = tick
        self.sync_period = sync_period
        self._tracked: dict[str, _Tracked] = {}
        self._by_resources: dict[str, _ResourceTracked] = {}
        self._stats: Callable[[], dict[str, RevisionStats]] = dict
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._waking: set[str] = set()
        self._caps: dict[str, int] = {}  # revision: the most replicas it may have now (a rolling update)
        self._fixed: dict[str, int] = {}  # revision: the count of one that is not scaled, before any cap
        self._lent: dict[str, int] = {}  # revision: what its minReplicas gives up (`lower_minimum`)
        # Told of every change of count: (revision, replicas before, after, the decision's reason).
        self.on_rescale: Callable[[str, int, int, str], None] | None = None

    def start(self, stats: Callable[[], dict[str, RevisionStats]]) -> None:
        """Begins ticking; `stats` gives the gateway's counters per revision (`Gateway.revision_stats`)."""
        self._stats = stats
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._every(self.tick, self.scale_all), name="autoscaler"),
            asyncio.create_task(self._every(self.sync_period, self.scale_on_resources), name="hpa"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tracked.clear()
        self._by_resources.clear()

    def start_scaling(
        self,
        replicas: Measurable,
        on_scale: Callable[[], None],
        initial_scale: int | None = None,
        *,
        at_zero: bool = False,
    ) -> None:
        """Gives a new revision's replicas their first count: the autoscaler's, when the revision scales
        on its requests or on its cpu and memory (it is tracked from then on), else its minReplicas;
        within its cap, if it has one. `initial_scale` raises the count it starts with (the replicas of
        the revision a rolling update replaces), within maxReplicas. `at_zero`: the revision was at zero
        before a restart in place, and starts there if it scales on its requests and may be at zero."""
        template = replicas.revision.template
        name = replicas.revision.name
        try:
            on_resources = resource_scaling(template, self.config.max_scale)
            settings = None if on_resources else revision_scaling(template, self.config)
        except AutoscalingError as exc:  # stored before the platform checked it
            logger.warning("%s: %s; keeping a fixed replica count", name, exc)
            on_resources = settings = None
        lent = self._lent.get(name, 0)
        if on_resources is not None:
            if initial_scale is not None:
                raised = min(max(on_resources.min_replicas, initial_scale), on_resources.max_replicas)
                on_resources = replace(on_resources, min_replicas=raised)
            count = self.track_resources(replicas, on_resources, on_scale, lent)
        elif settings is None:
            count = self._fixed[name] = _lowered(fixed_replicas(template), lent)
        else:
            if initial_scale is not None:  # `track` keeps it within minReplicas and maxReplicas
                settings = replace(settings, initial_scale=max(settings.initial_scale, initial_scale))
            elif at_zero and settings.min_replicas == 0:
                settings = replace(settings, initial_scale=0)
            count = self.track(name, settings, replicas, on_scale, lent)
        replicas.scale(self._capped(name, count))

    def at_zero(self) -> list[str]:
        """The revisions scaled to zero on their requests."""
        return [name for name, tracked in self._tracked.items() if tracked.wanted == 0]

    def cap(self, replicas: Scalable, limit: int | None) -> None:
        """At most `limit` replicas for the revision from now on, whatever it decides (a rolling
        update's step); None lifts the cap. Its count changes at once."""
        name = replicas.revision.name
        if limit is None:
            if self._caps.pop(name, None) is None:
                return
        else:
            self._caps[name] = limit
        wanted = self._wanted(name)
        if wanted is None:
            return  # not scaled yet: `start_scaling` keeps to the cap
        count = self._capped(name, wanted)
        if replicas.desired != count:
            self._scale(name, replicas, count)

    def _wanted(self, revision: str) -> int | None:
        """The count the revision's autoscaler (or its fixed count) asks for, before any cap."""
        tracked = self._tracked.get(revision) or self._by_resources.get(revision)
        return tracked.wanted if tracked is not None else self._fixed.get(revision)

    def _capped(self, revision: str, count: int) -> int:
        limit = self._caps.get(revision)
        return count if limit is None else min(count, limit)

    def track(
        self,
        revision: str,
        settings: AutoscalerSettings,
        replicas: Scalable,
        on_scale: Callable[[], None],
        lent: int = 0,
    ) -> int:
        """Scales `replicas` from now on; returns the count the revision starts with (its initial
        scale within minReplicas and maxReplicas, less what it `lent`). `on_scale` is called after
        every change of count."""
        # On time.monotonic, as the gateway's counters.
        autoscaler = RevisionAutoscaler(revision, _with_lower_minimum(settings, lent))
        wanted = autoscaler.decide().desired_replicas
        self._tracked[revision] = _Tracked(autoscaler, replicas, on_scale, settings, wanted)
        return wanted

    def track_resources(
        self, replicas: Measurable, settings: ResourceScaling, on_scale: Callable[[], None], lent: int = 0
    ) -> int:
        """Scales `replicas` on their cpu and memory from now on; returns the count they start with
        (minReplicas less what they `lent`, at least one)."""
        revision = replicas.revision
        logger.info(
            "autoscaler %s: scales on %s, %d to %d replicas",
            revision.name,
            settings.describe(),
            settings.min_replicas,
            settings.max_replicas,
        )
        lowered = replace(settings, min_replicas=_lowered(settings.min_replicas, lent))
        autoscaler = ResourceAutoscaler(revision.name, lowered, resource_requests(revision.template))
        self._by_resources[revision.name] = _ResourceTracked(
            autoscaler, replicas, on_scale, settings, lowered.min_replicas
        )
        return lowered.min_replicas

    def lower_minimum(self, replicas: Scalable, by: int) -> None:
        """Standard-mode canaries: a stable revision gives up `by` of its minReplicas (one always stays)
        to its ready canaries, as KServe lowers the stable Deployment; `by` 0 gives them back. Told
        before the revision starts scaling (a restart in place), it starts lowered."""
        name = replicas.revision.name
        self._lent[name] = by
        on_resources = self._by_resources.get(name)
        tracked = self._tracked.get(name)
        if on_resources is not None:
            lowered = _lowered(on_resources.settings.min_replicas, by)
            on_resources.autoscaler.settings = replace(on_resources.settings, min_replicas=lowered)
        elif tracked is not None:
            lowered = _with_lower_minimum(tracked.settings, by)
            if tracked.autoscaler.settings != lowered:
                tracked.autoscaler.settings = lowered
        elif name in self._fixed:
            self._fixed[name] = _lowered(fixed_replicas(replicas.revision.template), by)
            count = self._capped(name, self._fixed[name])
            if replicas.desired != count:
                self._scale(name, replicas, count)

    def forget(self, revision: str) -> None:
        self._tracked.pop(revision, None)
        self._by_resources.pop(revision, None)
        self._caps.pop(revision, None)
        self._fixed.pop(revision, None)
        self._lent.pop(revision, None)

    def wake_from_any_thread(self, revision: str) -> None:
        """The gateway's `on_demand`: a request waits for a revision with no replica."""
        loop = self._loop
        if loop is None or revision in self._waking:
            return
        self._waking.add(revision)
        with contextlib.suppress(RuntimeError):  # the platform's loop is closing
            loop.call_soon_threadsafe(self.wake, revision)

    def wake(self, revision: str) -> None:
        self._waking.discard(revision)
        tracked = self._tracked.get(revision)
        if tracked is not None:
            self._apply(tracked, tracked.autoscaler.wake())

    def scale_all(self) -> None:
        """One tick: every tracked revision observes its counters and gets its decision."""
        stats = self._stats()
        for revision, tracked in list(self._tracked.items()):
            snapshot = stats.get(revision)
            if snapshot is not None:
                tracked.autoscaler.observe(snapshot)
            self._apply(tracked, tracked.autoscaler.decide())

    def scale_on_resources(self) -> None:
        """One sync period: every revision scaled on its cpu or memory is measured and gets its decision."""
        for tracked in list(self._by_resources.values()):
            usage = self._measure(tracked)
            decision = tracked.autoscaler.decide(tracked.replicas.desired, usage)
            self._apply(tracked, decision)

    def _measure(self, tracked: _ResourceTracked) -> list[ReplicaUsage]:
        """Each replica's cores over the time since its last measurement, and the memory it holds; a
        replica measured for the first time has no cpu yet, one not ready is not measured."""
        now = time.monotonic()
        before, tracked.cpu_seconds = tracked.cpu_seconds, {}
        usage = []
        for pid in tracked.replicas.ready_pids():
            total = tree_cpu_seconds(pid)
            if total is None:  # it ended since
                usage.append(ReplicaUsage(ready=False))
                continue
            tracked.cpu_seconds[pid] = (now, total)
            taken_at, previous = before.get(pid, (now, total))
            cores = max(0.0, total - previous) / (now - taken_at) if now > taken_at else None
            memory = tree_memory(pid)
            usage.append(ReplicaUsage(True, cores, float(memory) if memory is not None else None))
        unready = len(tracked.replicas.replicas) - len(usage)
        return usage + [ReplicaUsage(ready=False)] * max(0, unready)

    def _apply(self, tracked: _Tracked | _ResourceTracked, decision: ScaleDecision) -> None:
        tracked.wanted = decision.desired_replicas
        before, name = tracked.replicas.desired, tracked.autoscaler.revision
        count = self._capped(name, decision.desired_replicas)
        if count != before:
            self._scale(name, tracked.replicas, count)
            tracked.on_scale()
            if self.on_rescale is not None:
                reason = decision.reason
                if count != decision.desired_replicas:
                    reason += f"; {count} while a rolling update holds it to {self._caps[name]}"
                self.on_rescale(name, before, count, reason)

    def _scale(self, revision: str, replicas: Scalable, count: int) -> None:
        """Sets the revision's count. Scaling down takes away the replicas the gateway has no request
        in flight on before busy ones (which would only be drained): a busy replica is spared."""
        busy: Collection[str] = ()
        if count < replicas.desired:
            stats = self._stats().get(revision)
            busy = stats.busy_replicas if stats is not None else ()
        replicas.scale(count, busy)

    async def _every(self, period: float, decide: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                decide()
            except Exception:
                logger.exception("an autoscaler tick failed; ticking on")


def _lowered(min_replicas: int, lent: int) -> int:
    """A minimum less the replicas lent to canaries; one always stays."""
    return max(1, min_replicas - lent) if lent else min_replicas


def _with_lower_minimum(settings: AutoscalerSettings, lent: int) -> AutoscalerSettings:
    if settings.min_replicas < 1:
        return settings  # it scales to zero: there is no minimum to share
    return replace(settings, min_replicas=_lowered(settings.min_replicas, lent))
