"""How many replicas a revision should have on its cpu or memory use, decided as Kubernetes'
HorizontalPodAutoscaler decides it.

The platform measures each replica every sync period (15 s, as the HPA controller's) and asks:

    autoscaler = ResourceAutoscaler("iris-predictor-00001", settings, requests={"cpu": 1.0})
    decision = autoscaler.decide(current=2, usage=[ReplicaUsage(ready=True, cpu=0.9, memory=3e8), ...])

A decision goes through the HPA's steps, each explained in its reason:

1. Per metric, the replicas' use against the target: `ceil(replicas x use / target)`, kept as it is
   when the ratio is within the tolerance (10%) of 1. Replicas not ready, or not measured yet, count
   as using nothing when that would scale up and are left out (not ready) or taken at the target
   (not measured) when it would scale down, so that a replica still starting never causes a scale-down
   and a new one never hides a need for more. The largest of the metrics' counts wins.
2. Stabilization: the highest count recommended within the scale-down window (5 min) and the lowest
   within the scale-up window (none) bound the change.
3. The `behavior` policies: by default up to 4 replicas or 100% more per 15 s, and 100% fewer.
4. minReplicas (at least 1) and maxReplicas.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from modelplane.control.autoscaler import ScaleDecision
from modelplane.control.hpa_settings import (
    DISABLED,
    MIN,
    PODS,
    UTILIZATION,
    ResourceScaling,
    ResourceTarget,
    ScalingRules,
    format_amount,
)

logger = logging.getLogger("modelplane.autoscaler")


@dataclass(frozen=True)
class ReplicaUsage:
    """One replica over the last sync period: cpu in cores, memory in bytes; None where not measured."""

    ready: bool
    cpu: float | None = None
    memory: float | None = None

    def used(self, resource: str) -> float | None:
        return self.cpu if resource == "cpu" else self.memory


@dataclass(frozen=True)
class _Proposal:
    replicas: int | None  # None: this metric could not be computed
    reason: str


class ResourceAutoscaler:
    """The scaling state of one revision: its recent recommendations and changes of count."""

    def __init__(
        self,
        revision: str,
        settings: ResourceScaling,
        requests: Mapping[str, float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.revision = revision
        self.settings = settings
        self.requests = dict(requests)  # per replica, what Utilization is a percentage of
        self._clock = clock
        self._recommendations: deque[tuple[float, int]] = deque()
        self._changes: deque[tuple[float, int]] = deque()  # (time, replicas added; negative: removed)
        self._last: int | None = None

    def decide(self, current: int, usage: Sequence[ReplicaUsage]) -> ScaleDecision:
        now = self._clock()
        if self._last is None:  # the count it starts with is a recommendation too, as in the HPA
            self._recommendations.append((now, current))
        settings = self.settings
        if current < settings.min_replicas or current > settings.max_replicas:
            wanted = min(max(current, settings.min_replicas), settings.max_replicas)
            bound = "raised to minReplicas" if wanted > current else "capped at maxReplicas"
            return self._decided(now, current, ScaleDecision(wanted, f"{current} replicas, {bound} {wanted}"))
        proposals = [self._proposal(target, current, usage) for target in settings.targets]
        computed = [p for p in proposals if p.replicas is not None]
        if not computed:
            reason = "; ".join(p.reason for p in proposals) + f": keeping {current}"
            return self._decided(now, current, ScaleDecision(current, reason))
        best = max(computed, key=lambda p: p.replicas or 0)
        assert best.replicas is not None
        wanted, reason = self._stabilized(now, current, best.replicas, best.reason)
        wanted, reason = self._rate_limited(now, current, wanted, reason)
        return self._decided(now, current, ScaleDecision(wanted, reason))

    # ---- step 1: the metrics ----

    def _proposal(self, target: ResourceTarget, current: int, usage: Sequence[ReplicaUsage]) -> _Proposal:
        resource = target.resource
        measured = [u.used(resource) for u in usage if u.ready and u.used(resource) is not None]
        unmeasured = sum(1 for u in usage if u.ready and u.used(resource) is None)
        unready = sum(1 for u in usage if not u.ready)
        if not measured:
            return _Proposal(None, f"no {resource} measured yet")
        request = self.requests.get(resource)
        if target.kind == UTILIZATION and not request:
            return _Proposal(None, f"the replicas have no {resource} request to take a utilization of")
        # What one replica uses at the target.
        at_target = request * target.value / 100 if target.kind == UTILIZATION and request else target.value
        used = sum(v for v in measured if v is not None)
        ratio = used / (at_target * len(measured))
        observed = self._describe(target, used / len(measured), len(measured))
        rules = self.settings.scale_up if ratio > 1 else self.settings.scale_down
        if not unmeasured and not unready:
            if abs(ratio - 1) <= rules.tolerance:
                return _Proposal(
                    current, f"{observed}: within the {rules.tolerance:g} tolerance -> {current}"
                )
            wanted = math.ceil(ratio * len(measured))
            return _Proposal(wanted, f"{observed} -> {wanted}")
        if ratio < 1:  # the unmeasured at their whole request (or the target), the unready left out
            counted = len(measured) + unmeasured
            used += unmeasured * (request if target.kind == UTILIZATION and request else target.value)
        else:  # the unmeasured and the unready at nothing
            counted = len(measured) + unmeasured + unready
        new_ratio = used / (at_target * counted)
        note = f"{observed}, with {unmeasured + unready} replicas not measured"
        if abs(new_ratio - 1) <= rules.tolerance or (ratio < 1) != (new_ratio < 1):
            return _Proposal(current, f"{note}: keeping {current}")
        wanted = math.ceil(new_ratio * counted)
        if (new_ratio < 1 and wanted > current) or (new_ratio > 1 and wanted < current):
            return _Proposal(current, f"{note}: keeping {current}")
        return _Proposal(wanted, f"{note} -> {wanted}")

    def _describe(self, target: ResourceTarget, average: float, replicas: int) -> str:
        where = f"across {replicas} replica{'s' if replicas != 1 else ''}"
        if target.kind == UTILIZATION:
            utilization = 100 * average / self.requests[target.resource]
            return f"{target.resource} {utilization:.0f}% of the request {where} / target {target.value:g}%"
        return (
            f"{target.resource} {format_amount(target.resource, average)} per replica {where} / "
            f"target {format_amount(target.resource, target.value)}"
        )

    # ---- step 2: stabilization ----

    def _stabilized(self, now: float, current: int, wanted: int, reason: str) -> tuple[int, str]:
        up_window = self.settings.scale_up.stabilization_window
        down_window = self.settings.scale_down.stabilization_window
        horizon = now - max(up_window, down_window)
        while self._recommendations and self._recommendations[0][0] <= horizon:
            self._recommendations.popleft()
        up = down = wanted
        for taken_at, recommended in self._recommendations:
            if taken_at > now - up_window:
                up = min(up, recommended)
            if taken_at > now - down_window:
                down = max(down, recommended)
        self._recommendations.append((now, wanted))
        stabilized = min(max(current, up), down)
        if stabilized > wanted:
            reason += f"; keeping {stabilized}, the highest of the last {down_window:g}s (scale-down window)"
        elif stabilized < wanted:
            reason += f"; {stabilized}, the lowest of the last {up_window:g}s (scale-up window)"
        return stabilized, reason

    # ---- steps 3 and 4: the policies and the bounds ----

    def _rate_limited(self, now: float, current: int, wanted: int, reason: str) -> tuple[int, str]:
        settings = self.settings
        if wanted > current:
            limit = max(self._policy_limit(now, current, scaling_up=True), current)
            if limit < settings.max_replicas and wanted > limit:
                return limit, reason + f"; at most {limit} by the scale-up policies"
            if wanted > settings.max_replicas:
                return settings.max_replicas, reason + f"; capped at maxReplicas {settings.max_replicas}"
        elif wanted < current:
            limit = min(self._policy_limit(now, current, scaling_up=False), current)
            if limit > settings.min_replicas and wanted < limit:
                return limit, reason + f"; at least {limit} by the scale-down policies"
            if wanted < settings.min_replicas:
                return settings.min_replicas, reason + f"; raised to minReplicas {settings.min_replicas}"
        return wanted, reason

    def _policy_limit(self, now: float, current: int, *, scaling_up: bool) -> int:
        """The count the direction's policies allow, counting from the replicas there were at the
        start of each policy's period (the current count when the direction is Disabled)."""
        rules = self.settings.scale_up if scaling_up else self.settings.scale_down
        if rules.select == DISABLED:
            return current
        proposals = []
        for policy in rules.policies:
            start = current - self._changed(now, policy.period, added=True)
            start += self._changed(now, policy.period, added=False)
            if policy.kind == PODS:
                proposals.append(start + policy.value if scaling_up else start - policy.value)
            elif scaling_up:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        return _select(rules, proposals, scaling_up=scaling_up)

    def _changed(self, now: float, period: float, *, added: bool) -> int:
        """Replicas added (or removed) within the `period` seconds before now."""
        return sum(
            abs(change)
            for taken_at, change in self._changes
            if taken_at > now - period and (change > 0) == added
        )

    def _decided(self, now: float, current: int, decision: ScaleDecision) -> ScaleDecision:
        if decision.desired_replicas != current:
            self._changes.append((now, decision.desired_replicas - current))
            while self._changes and self._changes[0][0] <= now - 1800:  # the longest policy period
                self._changes.popleft()
        if decision.desired_replicas != current or self._last is None:
            logger.info(
                "autoscaler %s: %d -> %d replicas: %s",
                self.revision,
                current,
                decision.desired_replicas,
                decision.reason,
            )
        else:
            logger.debug("autoscaler %s: %s", self.revision, decision.reason)
        self._last = decision.desired_replicas
        return decision


def _select(rules: ScalingRules, proposals: list[int], *, scaling_up: bool) -> int:
    """The policy that allows the most change (Max), or the least (Min)."""
    most = max if scaling_up else min
    least = min if scaling_up else max
    return (least if rules.select == MIN else most)(proposals)
