"""Stopping replicas that left the routes once the gateway has no request in flight on them, as
Knative's queue-proxy holds a pod's SIGTERM until its requests are answered: a revision retired (a
rollout, a deleted service, a graph's router replaced or deleted) or a replica scaled down. The wait
ends after the platform's stop grace at most; the replica then gets its stop signal and its own grace
period. The services' reconciler and the graphs' share one `Draining`."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.replicas.supervisor import RevisionReplicas

StatsSource = Callable[[], Mapping[str, RevisionStats]]


@dataclass(frozen=True)
class Draining:
    stats: StatsSource  # the gateway's counters per revision (`Gateway.revision_stats`)
    limit: float  # the longest wait for the requests in flight (the platform's stop grace)

    async def stop_revision(self, runner: RevisionReplicas) -> None:
        """Stops a revision the routes no longer name, once the requests it holds are done."""
        await self._drained(runner.revision.name, lambda stats: stats.in_flight == 0 and stats.queued == 0)
        await runner.stop()
        await runner.remove_model_folders()

    def stop_removed(self, runner: RevisionReplicas) -> None:
        """Stops, in the background, the replicas of `runner` that scaling down took out of the routes,
        each once the requests it holds are done."""
        runner.stop_removed(functools.partial(self._replica_drained, runner.revision.name))

    async def _replica_drained(self, revision: str, address: str) -> None:
        await self._drained(revision, lambda stats: address not in stats.busy_replicas)

    async def _drained(self, revision: str, idle: Callable[[RevisionStats], bool]) -> None:
        """Returns once the gateway's counts of `revision` are `idle` (or it has none), or after `limit`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limit
        while loop.time() < deadline:
            stats = self.stats().get(revision)
            if stats is None or idle(stats):
                return
            await asyncio.sleep(0.1)
