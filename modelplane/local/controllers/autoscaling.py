"""The autoscaler of `modelplane up`: replica counts that follow each revision's requests.

Every revision that scales on its requests (concurrency or rps) gets a `RevisionAutoscaler`. Each
tick, it is fed the gateway's counters for the revision and its decision sets the revision's replica
count. A request for a revision at zero replicas does not wait for the tick: the gateway's
`on_demand` hands the revision's name over to the platform's loop, where it wakes the revision up.

    autoscaling = Autoscaling(AutoscalerConfig(), tick=2.0)
    gateway = GatewayThread(config, on_demand=autoscaling.wake_from_any_thread).start()
    autoscaling.start(gateway.revision_stats)
    count = autoscaling.track("iris-predictor-00001", settings, replicas, on_scale=reconcile)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from modelplane.control.autoscaler import RevisionAutoscaler
from modelplane.control.autoscaling_settings import (
    AutoscalerConfig,
    AutoscalerSettings,
    AutoscalingError,
    fixed_replicas,
    revision_scaling,
)
from modelplane.control.revisions import Revision
from modelplane.local.gateway.revisions import RevisionStats

logger = logging.getLogger("modelplane.autoscaler")

DEFAULT_TICK = 2.0  # seconds, as Knative's autoscaler ticks


class Scalable(Protocol):
    """What the autoscaler scales: a revision's replicas (`RevisionReplicas`)."""

    desired: int

    @property
    def revision(self) -> Revision: ...

    def scale(self, count: int) -> None: ...


@dataclass
class _Tracked:
    autoscaler: RevisionAutoscaler
    replicas: Scalable
    on_scale: Callable[[], None]
    settings: AutoscalerSettings  # as the revision asked, before any lowering (`lower_minimum`)


class Autoscaling:
    """The autoscalers of every tracked revision; runs on the platform's event loop."""

    def __init__(self, config: AutoscalerConfig | None = None, tick: float = DEFAULT_TICK) -> None:
        self.config = config or AutoscalerConfig()
        self.tick = tick
        self._tracked: dict[str, _Tracked] = {}
        self._stats: Callable[[], dict[str, RevisionStats]] = dict
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._waking: set[str] = set()

    def start(self, stats: Callable[[], dict[str, RevisionStats]]) -> None:
        """Begins ticking; `stats` gives the gateway's counters per revision (`Gateway.revision_stats`)."""
        self._stats = stats
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="autoscaler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._tracked.clear()

    def start_scaling(self, replicas: Scalable, on_scale: Callable[[], None]) -> None:
        """Gives a new revision's replicas their first count: the autoscaler's, when the revision scales
        on its requests (it is tracked from then on), else its minReplicas."""
        template = replicas.revision.template
        try:
            settings = revision_scaling(template, self.config)
        except AutoscalingError as exc:  # stored before the platform checked it
            logger.warning("%s: %s; keeping a fixed replica count", replicas.revision.name, exc)
            settings = None
        if settings is None:
            replicas.scale(fixed_replicas(template))
        else:
            replicas.scale(self.track(replicas.revision.name, settings, replicas, on_scale))

    def track(
        self, revision: str, settings: AutoscalerSettings, replicas: Scalable, on_scale: Callable[[], None]
    ) -> int:
        """Scales `replicas` from now on; returns the count the revision starts with (its initial
        scale within minReplicas and maxReplicas). `on_scale` is called after every change of count."""
        autoscaler = RevisionAutoscaler(revision, settings)  # on time.monotonic, as the gateway's counters
        self._tracked[revision] = _Tracked(autoscaler, replicas, on_scale, settings)
        return autoscaler.decide().desired_replicas

    def lower_minimum(self, replicas: Scalable, by: int) -> None:
        """Standard-mode canaries: a stable revision gives up `by` of its minReplicas (one always stays)
        to its ready canaries, as KServe lowers the stable Deployment; `by` 0 gives them back."""
        tracked = self._tracked.get(replicas.revision.name)
        if tracked is None:  # a fixed count
            count = max(1, fixed_replicas(replicas.revision.template) - by)
            if replicas.desired != count:
                replicas.scale(count)
            return
        asked = tracked.settings
        if asked.min_replicas < 1:
            return  # it scales to zero: there is no minimum to share
        lowered = replace(asked, min_replicas=max(1, asked.min_replicas - by))
        if tracked.autoscaler.settings != lowered:
            tracked.autoscaler.settings = lowered

    def forget(self, revision: str) -> None:
        self._tracked.pop(revision, None)

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
            self._apply(tracked, tracked.autoscaler.wake().desired_replicas)

    def scale_all(self) -> None:
        """One tick: every tracked revision observes its counters and gets its decision."""
        stats = self._stats()
        for revision, tracked in list(self._tracked.items()):
            snapshot = stats.get(revision)
            if snapshot is not None:
                tracked.autoscaler.observe(snapshot)
            self._apply(tracked, tracked.autoscaler.decide().desired_replicas)

    def _apply(self, tracked: _Tracked, count: int) -> None:
        if count != tracked.replicas.desired:
            tracked.replicas.scale(count)
            tracked.on_scale()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                self.scale_all()
            except Exception:
                logger.exception("an autoscaler tick failed; ticking on")
