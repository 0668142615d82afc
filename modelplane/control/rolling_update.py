"""A Standard-mode component's rolling update, as a Deployment's controller rolls one out.

A component whose `deploymentStrategy` gives `rollingUpdate` (`maxSurge`, `maxUnavailable`: a count or a
percentage of the replicas, 25% each by default) moves from its serving revision to its newest one a few
replicas at a time, `total` being the replicas the serving revision had when the rollout began:

- the new revision grows while old and new together stay within `total + maxSurge` (percentages rounded up);
- the old one shrinks, its replicas that are not ready first, while the ready replicas of both stay at least
  `total - maxUnavailable` (percentages rounded down);
- requests go to both, in proportion to their ready replicas, as a Service spreads them over the pods of
  both ReplicaSets.

Both at zero is taken as `maxUnavailable: 1`, as the Deployment controller does, so that a rollout always
moves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from modelplane.api.errors import FieldError
from modelplane.control.traffic import TrafficTarget

DEFAULT = "25%"
_PERCENT = re.compile(r"^[0-9]+%$")
COMPONENTS = ("predictor", "transformer", "explainer")


@dataclass(frozen=True)
class RollingUpdate:
    max_surge: int | str = DEFAULT
    max_unavailable: int | str = DEFAULT

    @classmethod
    def of(cls, component_spec: dict) -> RollingUpdate | None:
        """The component's rolling update, where its `deploymentStrategy` gives one."""
        strategy = component_spec.get("deploymentStrategy") or {}
        declared = strategy.get("rollingUpdate")
        if strategy.get("type", "RollingUpdate") != "RollingUpdate" or not isinstance(declared, dict):
            return None
        return cls(declared.get("maxSurge", DEFAULT), declared.get("maxUnavailable", DEFAULT))

    def bounds(self, total: int) -> tuple[int, int]:
        """(surge, unavailable) in replicas, for `total` replicas."""
        surge = _replicas(self.max_surge, total, round_up=True)
        unavailable = _replicas(self.max_unavailable, total, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable


@dataclass(frozen=True)
class RolloutStep:
    old_replicas: int  # what the old revision may keep
    new_replicas: int  # what the new revision may run
    new_percent: int  # the new revision's share of the requests

    @property
    def done(self) -> bool:
        return self.old_replicas == 0 and self.new_percent == 100


def rollout_step(
    update: RollingUpdate, total: int, old: int, old_ready: int, new: int, new_ready: int
) -> RolloutStep:
    """The next counts of a rollout from `old` replicas (`old_ready` of them ready) to `new` ones."""
    surge, unavailable = update.bounds(total)
    new_allowed = min(total, new + max(0, total + surge - old - new))
    removable = (old - old_ready) + max(0, old_ready + new_ready - (total - unavailable))
    old_allowed = old - min(old, removable)
    ready = old_ready + new_ready
    percent = 100 if old_ready == 0 and new_ready else round(100 * new_ready / ready) if ready else 0
    if old_allowed and percent == 100:
        percent = 99  # the old replicas still there keep a share until they go
    return RolloutStep(old_allowed, new_allowed, percent)


def _replicas(value: int | str, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def rollout_targets(latest: str, old: str, step: RolloutStep) -> tuple[TrafficTarget, ...]:
    """The traffic of a rollout's step: the new revision its share, the old one the rest."""
    if step.done:
        return (TrafficTarget(latest, 100, True),)
    if step.new_percent <= 0:
        return (TrafficTarget(old, 100, False),)
    return (TrafficTarget(latest, step.new_percent, True), TrafficTarget(old, 100 - step.new_percent, False))


def rolling_update_errors(isvc: dict) -> Iterator[FieldError]:
    """What the API server refuses in a Deployment's `rollingUpdate`, for each component's."""
    spec = isvc.get("spec") or {}
    for component in COMPONENTS:
        strategy = (spec.get(component) or {}).get("deploymentStrategy") or {}
        declared = strategy.get("rollingUpdate")
        if not isinstance(declared, dict):
            continue
        here = f"spec.{component}.deploymentStrategy.rollingUpdate"
        if strategy.get("type") == "Recreate":
            yield FieldError(here, "Forbidden: may not be specified when strategy `type` is 'Recreate'")
            continue
        for name in ("maxSurge", "maxUnavailable"):
            value = declared.get(name)
            if isinstance(value, str) and not _PERCENT.match(value):
                yield FieldError(
                    f"{here}.{name}",
                    f'Invalid value: "{value}": a valid percent string must be a numeric string followed '
                    "by an ending '%'",
                )
            elif isinstance(value, int) and value < 0:
                yield FieldError(
                    f"{here}.{name}", f"Invalid value: {value}: must be greater than or equal to 0"
                )
        unavailable = declared.get("maxUnavailable", DEFAULT)
        if isinstance(unavailable, str) and _PERCENT.match(unavailable) and int(unavailable[:-1]) > 100:
            yield FieldError(
                f"{here}.maxUnavailable", f'Invalid value: "{unavailable}": must not be greater than 100%'
            )
        if _is_zero(declared.get("maxSurge", DEFAULT)) and _is_zero(unavailable):
            yield FieldError(f"{here}.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0")


def _is_zero(value: object) -> bool:
    return value == 0 or value == "0%"
