"""Standard-mode canaries (KServe 0.20's `spec.canary`): what each runs, how many replicas, what traffic.

Each entry is the stable predictor with the canary's `predictor` laid over it (KServe's deep merge, where
a value the canary leaves empty keeps the stable one), with the autoscaling fields dropped: a canary runs
a fixed number of replicas, its `minReplicas` if it sets one, else the stable `minReplicas` (at least 1)
times its share, rounded up. Its revisions are `<isvc>-<canary>-predictor-<n>`, and its own host is
`<isvc>-<canary>-predictor.<namespace>.<domain>`.

A canary takes its `trafficPercent` of the predictor's traffic once it is ready; the stable predictor
keeps the rest, `100 - sum(percent of the ready canaries)`. A canary that is not ready takes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelplane.api import RuntimeSelectionError
from modelplane.api.constants import FRAMEWORK_SHORTHANDS, PROTOCOL_V2, V2_SHORTHANDS
from modelplane.control.revision_templates import revision_templates

# What a canary does not take from the stable predictor: it runs a fixed number of replicas.
_SCALING_FIELDS = (
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "autoScaling",
    "canaryTrafficPercent",
)


@dataclass(frozen=True)
class CanaryPlan:
    name: str
    percent: int
    replicas: int
    template: dict | None  # None when it cannot run (`problem` says why)
    problem: str | None = None

    @property
    def component(self) -> str:
        """The key of its revisions, next to the stable `predictor`."""
        return canary_component(self.name)


def canary_component(name: str) -> str:
    return f"{name}-predictor"


def canary_plans(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> list[CanaryPlan]:
    """One plan per `spec.canary` entry, in order."""
    spec = isvc.get("spec") or {}
    stable = spec.get("predictor") or {}
    plans = []
    for canary in spec.get("canary") or []:
        overlay = canary.get("predictor") or {}
        name = overlay.get("name", "")
        percent = int(canary.get("trafficPercent") or 0)
        replicas = canary_replicas(stable, overlay, percent)
        predictor = canary_predictor(stable, overlay, replicas)
        canary_isvc = {**isvc, "spec": {"predictor": predictor}}
        try:
            template = revision_templates(canary_isvc, namespaced_runtimes, cluster_runtimes)["predictor"]
        except RuntimeSelectionError as exc:  # e.g. no runtime for the canary's model format
            plans.append(CanaryPlan(name, percent, replicas, None, exc.message))
            continue
        plans.append(CanaryPlan(name, percent, replicas, template))
    return plans


def canary_predictor(stable: dict, overlay: dict, replicas: int) -> dict:
    """The predictor a canary runs: `overlay` laid over the stable one, at a fixed replica count. A
    framework shorthand in the overlay (`sklearn: {...}`) is the `model` it stands for, as defaulting
    made the stable one's."""
    predictor = {k: v for k, v in merged(stable, _as_model(overlay)).items() if k not in _SCALING_FIELDS}
    predictor["minReplicas"] = predictor["maxReplicas"] = replicas
    return predictor


def canary_replicas(stable: dict, overlay: dict, percent: int) -> int:
    explicit = overlay.get("minReplicas")
    if explicit:
        return int(explicit)
    stable_min = max(1, int(stable.get("minReplicas") or 1))
    return max(1, math.ceil(stable_min * percent / 100))


def stable_share(ready_percents: Sequence[int]) -> int:
    """The stable predictor's part of the traffic, next to the ready canaries."""
    return max(0, 100 - sum(ready_percents))


def merged(base: dict, overlay: dict) -> dict:
    """`overlay` laid over `base`, as KServe merges a canary's predictor (mergo, WithOverride): maps merge
    key by key, and any other value of `overlay` replaces `base`'s unless it is empty (None, "", 0,
    False, [] or {})."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        elif value not in (None, "", 0, False, [], {}) or key not in out:
            out[key] = value
    return out


def _as_model(predictor: dict) -> dict:
    if "model" in predictor:
        return predictor
    for shorthand, model_format in FRAMEWORK_SHORTHANDS.items():
        spec = predictor.get(shorthand)
        if isinstance(spec, dict):
            model = {"modelFormat": {"name": model_format}, **spec}
            if shorthand in V2_SHORTHANDS:
                model.setdefault("protocolVersion", PROTOCOL_V2)
            return {**{k: v for k, v in predictor.items() if k != shorthand}, "model": model}
    return predictor
