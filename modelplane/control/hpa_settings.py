"""The settings of a revision scaled on its cpu or memory, read as Kubernetes' HPA reads its spec.

A revision template's `hpa` entry (control/hpa_metrics.py) holds the autoscaler's class, its metrics
(autoscaling/v2 `MetricSpec`s) and its `behavior`; the template's `minReplicas` and `maxReplicas` bound
it as KServe bounds the HPA it makes: at least one replica (an HPA does not scale to zero) and at most
`max(maxReplicas, min)`, so a component that sets no `maxReplicas` keeps its minimum, as on a cluster.
Under Knative's HPA class an unset maxReplicas is the platform's default, as for Knative's own
autoscaler.

    settings = resource_scaling(template, default_max=4)   # None: the revision is not scaled this way
"""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.api.constants import KNATIVE_HPA_CLASS
from modelplane.api.quantity import parse_quantity
from modelplane.control.autoscaling_settings import AutoscalingError
from modelplane.control.hpa_metrics import DEFAULT_CPU_UTILIZATION

UTILIZATION, AVERAGE_VALUE, VALUE = "Utilization", "AverageValue", "Value"
PODS, PERCENT = "Pods", "Percent"
MAX, MIN, DISABLED = "Max", "Min", "Disabled"
DEFAULT_TOLERANCE = 0.1  # the HPA controller's --horizontal-pod-autoscaler-tolerance
DEFAULT_SCALE_DOWN_WINDOW = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization


@dataclass(frozen=True)
class ResourceTarget:
    """One metric: `resource` (cpu or memory) held at `value`, a percentage of each replica's request
    (Utilization) or an amount per replica, in cores or bytes (AverageValue; Value means the same for a
    resource metric)."""

    resource: str
    kind: str
    value: float

    def describe(self) -> str:
        if self.kind == UTILIZATION:
            return f"{self.resource} {self.value:g}% of the request"
        return f"{self.resource} {format_amount(self.resource, self.value)} per replica"


@dataclass(frozen=True)
class ScalingPolicy:
    """At most `value` replicas (Pods) or `value`% of them (Percent) added or taken away per `period`."""

    kind: str
    value: int
    period: float


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's `behavior`."""

    stabilization_window: float
    policies: tuple[ScalingPolicy, ...]
    select: str = MAX
    tolerance: float = DEFAULT_TOLERANCE


# Kubernetes' defaults when `behavior` does not say.
SCALE_UP = ScalingRules(0.0, (ScalingPolicy(PODS, 4, 15.0), ScalingPolicy(PERCENT, 100, 15.0)))
SCALE_DOWN = ScalingRules(DEFAULT_SCALE_DOWN_WINDOW, (ScalingPolicy(PERCENT, 100, 15.0),))


@dataclass(frozen=True)
class ResourceScaling:
    targets: tuple[ResourceTarget, ...]
    min_replicas: int
    max_replicas: int
    scale_up: ScalingRules = SCALE_UP
    scale_down: ScalingRules = SCALE_DOWN

    def describe(self) -> str:
        return ", ".join(target.describe() for target in self.targets)


def resource_scaling(template: dict, default_max: int = 0) -> ResourceScaling | None:
    """The settings of a revision its `hpa` entry scales on cpu or memory; None for any other.
    Raises AutoscalingError for a value Kubernetes would refuse."""
    spec = template.get("hpa")
    if not isinstance(spec, dict):
        return None
    low = max(1, _whole(template, "minReplicas", 1))
    asked_max = _whole(template, "maxReplicas", 0)
    if spec.get("class") == KNATIVE_HPA_CLASS and not asked_max and default_max:
        asked_max = default_max
    behavior = spec.get("behavior") or {}
    return ResourceScaling(
        targets=tuple(_target(metric) for metric in spec.get("metrics") or ())
        or (ResourceTarget("cpu", UTILIZATION, DEFAULT_CPU_UTILIZATION),),
        min_replicas=low,
        max_replicas=max(asked_max, low),
        scale_up=_rules(behavior.get("scaleUp"), SCALE_UP, "scaleUp"),
        scale_down=_rules(behavior.get("scaleDown"), SCALE_DOWN, "scaleDown"),
    )


def format_amount(resource: str, amount: float) -> str:
    if resource == "cpu":
        return f"{amount * 1000:.0f}m"
    return f"{amount / 2**20:.0f}Mi"


def _target(metric: dict) -> ResourceTarget:
    resource = metric.get("resource") or {}
    name = resource.get("name")
    if name not in ("cpu", "memory"):
        raise AutoscalingError(f"resource type {name} is not supported; use cpu or memory")
    target = resource.get("target") or {}
    kind = target.get("type") or UTILIZATION
    if kind == UTILIZATION:
        value = target.get("averageUtilization")
        if not isinstance(value, int) or value < 1:
            raise AutoscalingError(f"the {name} averageUtilization must be a whole number above 0")
        return ResourceTarget(name, UTILIZATION, float(value))
    if kind not in (AVERAGE_VALUE, VALUE):
        raise AutoscalingError(f"the {name} target type must be Utilization or AverageValue, not {kind}")
    amount = parse_quantity(target.get("averageValue", target.get("value")))
    if amount is None or amount <= 0:
        raise AutoscalingError(f"the {name} target needs a quantity above 0 (500m, 1Gi)")
    return ResourceTarget(name, AVERAGE_VALUE, float(amount))


def _rules(given: object, default: ScalingRules, where: str) -> ScalingRules:
    if not isinstance(given, dict):
        return default
    window = given.get("stabilizationWindowSeconds")
    if window is not None and (not isinstance(window, int) or not 0 <= window <= 3600):
        raise AutoscalingError(f"behavior.{where}.stabilizationWindowSeconds must be 0 to 3600")
    select = given.get("selectPolicy") or MAX
    if select not in (MAX, MIN, DISABLED):
        raise AutoscalingError(f"behavior.{where}.selectPolicy must be Max, Min or Disabled, not {select}")
    tolerance = default.tolerance
    if given.get("tolerance") is not None:
        amount = parse_quantity(given["tolerance"])
        if amount is None or amount < 0:
            raise AutoscalingError(f"behavior.{where}.tolerance must be a quantity, 0 or more")
        tolerance = float(amount)
    policies = default.policies
    if given.get("policies"):
        policies = tuple(_policy(policy, where) for policy in given["policies"])
    return ScalingRules(
        stabilization_window=default.stabilization_window if window is None else float(window),
        policies=policies,
        select=select,
        tolerance=tolerance,
    )


def _policy(policy: object, where: str) -> ScalingPolicy:
    policy = policy if isinstance(policy, dict) else {}
    kind, value, period = policy.get("type"), policy.get("value"), policy.get("periodSeconds")
    if kind not in (PODS, PERCENT):
        raise AutoscalingError(f"behavior.{where}.policies[].type must be Pods or Percent, not {kind}")
    if not isinstance(value, int) or value < 1:
        raise AutoscalingError(f"behavior.{where}.policies[].value must be a whole number above 0")
    if not isinstance(period, int) or not 1 <= period <= 1800:
        raise AutoscalingError(f"behavior.{where}.policies[].periodSeconds must be 1 to 1800")
    return ScalingPolicy(kind, value, float(period))


def _whole(template: dict, field: str, default: int) -> int:
    value = template.get(field)
    return value if isinstance(value, int) and value >= 0 else default
