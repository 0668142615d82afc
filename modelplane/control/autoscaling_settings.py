"""The autoscaling settings of one revision, read as KServe and Knative read them.

An InferenceService component sets `minReplicas`, `maxReplicas`, `scaleMetric`, `scaleTarget` and
`containerConcurrency`; its annotations may tune Knative's autoscaler (`autoscaling.knative.dev/window`,
`target-utilization-percentage`, ...). Whatever neither sets comes from the platform-wide
`AutoscalerConfig`, whose defaults are Knative's `config-autoscaler`.

    settings = autoscaler_settings(component_spec, annotations)   # raises AutoscalingError
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from modelplane.api.constants import AUTOSCALER_CLASS_ANNOTATION, DEFAULT_MIN_REPLICAS, KPA_METRICS

PREFIX = "autoscaling.knative.dev/"
TARGET = PREFIX + "target"
METRIC = PREFIX + "metric"
TARGET_UTILIZATION = PREFIX + "target-utilization-percentage"
WINDOW = PREFIX + "window"
PANIC_WINDOW_PERCENTAGE = PREFIX + "panic-window-percentage"
PANIC_THRESHOLD_PERCENTAGE = PREFIX + "panic-threshold-percentage"
SCALE_DOWN_DELAY = PREFIX + "scale-down-delay"
POD_RETENTION_PERIOD = PREFIX + "scale-to-zero-pod-retention-period"
INITIAL_SCALE = PREFIX + "initial-scale"
ACTIVATION_SCALE = PREFIX + "activation-scale"
# The annotations the autoscaler of a revision reads (with the class, autoscaling.knative.dev/class).
ANNOTATIONS = (
    TARGET,
    METRIC,
    TARGET_UTILIZATION,
    WINDOW,
    PANIC_WINDOW_PERCENTAGE,
    PANIC_THRESHOLD_PERCENTAGE,
    SCALE_DOWN_DELAY,
    POD_RETENTION_PERIOD,
    INITIAL_SCALE,
    ACTIVATION_SCALE,
)

TARGET_MIN = 0.01  # Knative's floor for a per-replica target
HOUR = 3600.0


class AutoscalingError(ValueError):
    """A setting the user got wrong; the message names it and says what is allowed. `key` is the
    annotation (or the field) it names, so that a refusal can be placed where that value was set."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class AutoscalerConfig:
    """Platform-wide defaults, as Knative's `config-autoscaler` ConfigMap holds them (times in seconds).

    `max_scale` is the maxReplicas of a revision that sets none (0: no bound). Knative's default is 0;
    on one machine, modelplane's is 4, so that load (or requests held open) cannot start replicas until
    the machine runs out of memory.
    """

    container_concurrency_target_default: float = 100.0
    requests_per_second_target_default: float = 200.0
    target_utilization_percentage: float = 70.0
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_down_delay: float = 0.0
    scale_to_zero_grace_period: float = 30.0
    scale_to_zero_pod_retention_period: float = 0.0
    enable_scale_to_zero: bool = True
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    max_scale: int = 4


_PLATFORM = AutoscalerConfig()  # the defaults of a revision's settings


@dataclass(frozen=True)
class AutoscalerSettings:
    """Everything the autoscaler of one revision needs (times in seconds).

    `target` is the per-replica value of `metric` to aim at, before `target_utilization_percentage` is
    applied; `max_replicas` 0 means no upper bound; `container_concurrency` 0 means no hard limit.
    """

    metric: str = "concurrency"
    target: float = _PLATFORM.container_concurrency_target_default
    target_utilization_percentage: float = _PLATFORM.target_utilization_percentage
    container_concurrency: int = 0
    min_replicas: int = DEFAULT_MIN_REPLICAS
    max_replicas: int = 0
    initial_scale: int = _PLATFORM.initial_scale
    activation_scale: int = 1  # the least a revision runs whenever it runs at all
    stable_window: float = _PLATFORM.stable_window
    panic_window_percentage: float = _PLATFORM.panic_window_percentage
    panic_threshold_percentage: float = _PLATFORM.panic_threshold_percentage
    max_scale_up_rate: float = _PLATFORM.max_scale_up_rate
    max_scale_down_rate: float = _PLATFORM.max_scale_down_rate
    scale_down_delay: float = _PLATFORM.scale_down_delay
    scale_to_zero_grace_period: float = _PLATFORM.scale_to_zero_grace_period
    scale_to_zero_pod_retention_period: float = _PLATFORM.scale_to_zero_pod_retention_period
    enable_scale_to_zero: bool = _PLATFORM.enable_scale_to_zero

    @property
    def target_per_replica(self) -> float:
        """What one replica should carry: the target times the utilisation (never below 0.01)."""
        return max(TARGET_MIN, self.target * self.target_utilization_percentage / 100)

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_percentage / 100

    @property
    def panic_threshold(self) -> float:
        """The panic threshold as a ratio of desired to ready replicas (2.0 for 200%)."""
        return self.panic_threshold_percentage / 100

    @property
    def scale_to_zero_wait(self) -> float:
        """How long an idle revision keeps its last replica before going to zero."""
        return max(self.scale_to_zero_grace_period, self.scale_to_zero_pod_retention_period)


FIXED_SCALE_CLASSES = ("external", "none")


def revision_scaling(template: dict, config: AutoscalerConfig | None = None) -> AutoscalerSettings | None:
    """The autoscaler settings of a revision from its template (the component's scaling fields and
    `scalingAnnotations`), or None when the revision keeps a fixed count: an autoscaler class that
    scales it from outside (`external`, `none`), or a CPU or memory metric, which the embedded
    platform does not measure."""
    annotations = template.get("scalingAnnotations") or {}
    if annotations.get(AUTOSCALER_CLASS_ANNOTATION) in FIXED_SCALE_CLASSES:
        return None
    metric = template.get("scaleMetric") or annotations.get(METRIC) or "concurrency"
    if metric not in KPA_METRICS:
        return None
    return autoscaler_settings(template, annotations, config)


def fixed_replicas(template: dict) -> int:
    """The count of a revision that is not autoscaled: minReplicas, at least one."""
    return max(1, int(template.get("minReplicas") or 1))


def autoscaler_settings(
    component_spec: dict, annotations: dict, config: AutoscalerConfig | None = None
) -> AutoscalerSettings:
    """The settings of a component's revisions. The spec's fields win over the annotations, as KServe
    writes `scaleMetric` and `scaleTarget` over Knative's `metric` and `target` annotations."""
    config = config or AutoscalerConfig()
    metric = component_spec.get("scaleMetric") or annotations.get(METRIC) or "concurrency"
    if metric not in KPA_METRICS:
        raise AutoscalingError(
            f"scale metric [{metric}] is not supported; use concurrency or rps",
            "scaleMetric" if component_spec.get("scaleMetric") else METRIC,
        )
    container_concurrency = int(component_spec.get("containerConcurrency") or 0)
    min_replicas = _replicas(component_spec, "minReplicas", DEFAULT_MIN_REPLICAS)
    stable_window = _duration(annotations, WINDOW, config.stable_window, low=6.0, high=HOUR)
    return AutoscalerSettings(
        metric=metric,
        target=_target(metric, component_spec, annotations, container_concurrency, config),
        target_utilization_percentage=_number(
            annotations, TARGET_UTILIZATION, config.target_utilization_percentage, low=1.0, high=100.0
        ),
        container_concurrency=container_concurrency,
        min_replicas=min_replicas,
        max_replicas=_max_replicas(component_spec, min_replicas, config),
        initial_scale=_initial_scale(annotations, config),
        activation_scale=_activation_scale(annotations),
        stable_window=stable_window,
        panic_window_percentage=_number(
            annotations, PANIC_WINDOW_PERCENTAGE, config.panic_window_percentage, low=1.0, high=100.0
        ),
        panic_threshold_percentage=_number(
            annotations, PANIC_THRESHOLD_PERCENTAGE, config.panic_threshold_percentage, low=110.0, high=1000.0
        ),
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        scale_down_delay=_duration(
            annotations, SCALE_DOWN_DELAY, config.scale_down_delay, low=0.0, high=HOUR
        ),
        scale_to_zero_grace_period=config.scale_to_zero_grace_period,
        scale_to_zero_pod_retention_period=_duration(
            annotations, POD_RETENTION_PERIOD, config.scale_to_zero_pod_retention_period, low=0.0, high=HOUR
        ),
        enable_scale_to_zero=config.enable_scale_to_zero,
    )


def _target(
    metric: str, component_spec: dict, annotations: dict, container_concurrency: int, config: AutoscalerConfig
) -> float:
    """Knative's rule: a soft target (scaleTarget, else the annotation) is capped by containerConcurrency;
    without one, containerConcurrency is the target, else the platform's default for the metric."""
    source, key = "the scale target", "scaleTarget"
    if component_spec.get("scaleTarget") is not None:
        soft = as_number("scaleTarget", component_spec["scaleTarget"])
    elif TARGET in annotations:
        soft = as_number(TARGET, annotations[TARGET])
        source = key = TARGET
    else:
        soft = None
    if soft is not None and soft < TARGET_MIN:
        raise AutoscalingError(f"{source} must be at least {TARGET_MIN}, not {soft:g}", key)
    if metric == "rps":
        return soft if soft is not None else config.requests_per_second_target_default
    if soft is None:
        return float(container_concurrency) or config.container_concurrency_target_default
    return min(soft, container_concurrency) if container_concurrency else soft


def _replicas(component_spec: dict, field: str, default: int) -> int:
    value = component_spec.get(field)
    if value is None:
        return default
    if not isinstance(value, int) or value < 0:
        raise AutoscalingError(f"{field} must be a whole number, 0 or more, not {value!r}", field)
    return value


def _max_replicas(component_spec: dict, min_replicas: int, config: AutoscalerConfig) -> int:
    """maxReplicas, or when it is unset (or 0, which KServe does not tell from unset) the platform's
    `max_scale`, as Knative applies its `max-scale` default; never below minReplicas."""
    asked = _replicas(component_spec, "maxReplicas", 0)
    if asked or not config.max_scale:
        return asked
    return max(config.max_scale, min_replicas)


def _initial_scale(annotations: dict, config: AutoscalerConfig) -> int:
    """KServe drops an `initial-scale` that is not an integer, and 0 unless zero initial scale is allowed."""
    value = annotations.get(INITIAL_SCALE)
    scale = None if value is None else annotated_initial_scale(value)
    if scale is None:
        return config.initial_scale
    if scale < 0:
        raise AutoscalingError(f"{INITIAL_SCALE} must be 0 or more, not {value}", INITIAL_SCALE)
    if scale == 0 and not config.allow_zero_initial_scale:
        return config.initial_scale
    return scale


_INTEGER = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi, which KServe reads it with, takes


def annotated_initial_scale(value: object) -> int | None:
    """An `initial-scale` annotation's value as KServe reads it, or None where it is not an integer
    (KServe leaves such a value out of the revision, as Knative would refuse it)."""
    text = str(value)
    return int(text) if _INTEGER.fullmatch(text) else None


def ignored_initial_scale(value: object, config: AutoscalerConfig = _PLATFORM) -> str | None:
    """Why an `initial-scale` annotation's value is dropped, as KServe drops it, or None if it is not."""
    scale = annotated_initial_scale(value)
    starts = (
        f"a new revision starts with {config.initial_scale} replica{'s' if config.initial_scale != 1 else ''}"
    )
    if scale is None:
        return f"not an integer: KServe leaves it out of the revision, and {starts}"
    if scale == 0 and not config.allow_zero_initial_scale:
        return (
            f"0 needs Knative's allow-zero-initial-scale, which is false: KServe leaves it out, and {starts}"
        )
    return None


def _activation_scale(annotations: dict) -> int:
    value = annotations.get(ACTIVATION_SCALE)
    if value is None:
        return 1
    scale = as_number(ACTIVATION_SCALE, value)
    if scale < 1 or scale != int(scale):
        raise AutoscalingError(
            f"{ACTIVATION_SCALE} must be a whole number, 1 or more, not {value}", ACTIVATION_SCALE
        )
    return int(scale)


def _number(annotations: dict, key: str, default: float, low: float, high: float) -> float:
    if key not in annotations:
        return default
    value = as_number(key, annotations[key])
    if not low <= value <= high:
        raise AutoscalingError(f"{key} must be between {low:g} and {high:g}, not {annotations[key]}", key)
    return value


def as_number(key: str, value: object) -> float:
    try:
        number = float(str(value))
    except ValueError:
        raise AutoscalingError(f"{key} must be a number, not {value!r}", key) from None
    if not math.isfinite(number):
        raise AutoscalingError(f"{key} must be a number, not {value!r}", key)
    return number


def _duration(annotations: dict, key: str, default: float, low: float, high: float) -> float:
    if key not in annotations:
        return default
    seconds = parse_duration(str(annotations[key]))
    if seconds is None:
        raise AutoscalingError(f"{key} must be a duration such as 90s or 2m, not {annotations[key]!r}", key)
    if not low <= seconds <= high:
        raise AutoscalingError(
            f"{key} must be between {format_seconds(low)} and {format_seconds(high)}, not {annotations[key]}",
            key,
        )
    return seconds


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration ("60s", "1m30s", "1.5h", "0"), or None if it is not one."""
    if text == "0":
        return 0.0
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def format_seconds(seconds: float) -> str:
    """A duration as people write it: 45s, 2m, 1m30s, 1h."""
    if seconds >= 60 and seconds == int(seconds):
        hours, rest = divmod(int(seconds), 3600)
        minutes, secs = divmod(rest, 60)
        text = (
            (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
        )
        return text
    return f"{format_number(seconds)}s"


def format_number(value: float) -> str:
    """At most two decimals, no trailing zeros: 12.3, 7, 0.05."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
