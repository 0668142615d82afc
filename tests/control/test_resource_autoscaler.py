"""Kubernetes' HPA rules, one by one, on a revision whose replicas' cpu and memory are given each sync."""

from __future__ import annotations

import pytest

from modelplane.control.autoscaling_settings import AutoscalingError
from modelplane.control.hpa_metrics import resource_scaling_spec
from modelplane.control.hpa_settings import (
    SCALE_DOWN,
    SCALE_UP,
    ResourceScaling,
    ResourceTarget,
    ScalingPolicy,
    ScalingRules,
    resource_scaling,
)
from modelplane.control.resource_autoscaler import ReplicaUsage, ResourceAutoscaler

SYNC = 15.0
CPU_50 = ResourceTarget("cpu", "Utilization", 50.0)
NO_WINDOWS = ScalingRules(0.0, SCALE_DOWN.policies)  # scale down at once


class Revision:
    """A revision's replicas, measured every sync period; its count follows each decision."""

    def __init__(self, *targets: ResourceTarget, replicas: int = 1, requests=None, **settings) -> None:
        self.now = 1000.0
        self.replicas = replicas
        settings = {"min_replicas": 1, "max_replicas": 10, **settings}
        self.autoscaler = ResourceAutoscaler(
            "iris-predictor-00001",
            ResourceScaling(targets or (CPU_50,), **settings),
            {"cpu": 1.0, "memory": 1e9} if requests is None else requests,
            clock=lambda: self.now,
        )

    def sync(self, *usage: ReplicaUsage) -> int:
        self.now += SYNC
        self.replicas = self.autoscaler.decide(self.replicas, list(usage)).desired_replicas
        return self.replicas

    def reason(self, *usage: ReplicaUsage) -> str:
        self.now += SYNC
        decision = self.autoscaler.decide(self.replicas, list(usage))
        self.replicas = decision.desired_replicas
        return decision.reason


def busy(cores: float, memory: float = 1e8) -> ReplicaUsage:
    return ReplicaUsage(ready=True, cpu=cores, memory=memory)


NOT_READY = ReplicaUsage(ready=False)
NOT_MEASURED = ReplicaUsage(ready=True, cpu=None, memory=1e8)


# ---- the metric ----


def test_utilization_over_the_target_gives_the_replicas():
    revision = Revision()
    assert revision.reason(busy(1.7)) == "cpu 170% of the request across 1 replica / target 50% -> 4"
    assert revision.replicas == 4  # ceil(1 x 170 / 50)


def test_a_ratio_within_the_tolerance_keeps_the_count():
    revision = Revision(replicas=2, scale_down=NO_WINDOWS)
    assert revision.sync(busy(0.54), busy(0.54)) == 2  # 54% of a 50% target: within 10%
    assert revision.sync(busy(0.3), busy(0.3)) == 2  # ceil(2 x 30 / 50) = 2
    assert revision.sync(busy(0.1), busy(0.1)) == 1


def test_average_value_targets_are_amounts_per_replica():
    memory = ResourceTarget("memory", "AverageValue", 200 * 2**20)
    revision = Revision(memory, replicas=2)
    reason = revision.reason(busy(0, memory=500 * 2**20), busy(0, memory=300 * 2**20))
    assert reason == "memory 400Mi per replica across 2 replicas / target 200Mi -> 4"


def test_the_metric_that_wants_most_wins():
    memory = ResourceTarget("memory", "Utilization", 80.0)
    revision = Revision(CPU_50, memory)
    assert revision.sync(busy(0.1, memory=2.4e9)) == 3  # memory 240% of 80%; cpu alone would keep 1


def test_utilization_needs_a_request():
    revision = Revision(requests={})
    assert revision.reason(busy(3.0)) == (
        "the replicas have no cpu request to take a utilization of: keeping 1"
    )


def test_nothing_measured_yet_keeps_the_count():
    revision = Revision(replicas=2)
    assert revision.reason(NOT_MEASURED, NOT_READY) == "no cpu measured yet: keeping 2"


def test_replicas_not_ready_count_as_idle_when_scaling_up():
    revision = Revision(replicas=3)
    # 2 busy at 100%: 200% of the target over 2 would want 4; with the third at 0, ceil(3 x 133% / 100%)
    assert revision.sync(busy(1.0), busy(1.0), NOT_READY) == 4


def test_replicas_not_measured_count_at_their_request_when_scaling_down():
    revision = Revision(replicas=3, scale_down=NO_WINDOWS)
    # 2 measured at 10% want 1; the unmeasured one at 100%: (10 + 10 + 100) / 3 = 40% of 50% -> 3
    assert revision.sync(busy(0.1), busy(0.1), NOT_MEASURED) == 3


def test_a_replica_still_starting_is_left_out_when_scaling_down():
    revision = Revision(replicas=3, scale_down=NO_WINDOWS)
    assert revision.sync(busy(0.1), busy(0.1), NOT_READY) == 1


# ---- stabilization and policies ----


def test_scale_down_waits_for_the_highest_recommendation_in_its_window():
    revision = Revision(replicas=4)
    assert revision.sync(busy(0.1), busy(0.1), busy(0.1), busy(0.1)) == 4  # wants 1; 4 in the window
    for _ in range(18):  # 270 s more: the 4 recommended at first is still in the 5 min window
        assert revision.sync(busy(0.1), busy(0.1), busy(0.1), busy(0.1)) == 4
    revision.now += 20
    assert revision.sync(busy(0.1), busy(0.1), busy(0.1), busy(0.1)) == 1


def test_the_count_a_revision_starts_with_holds_through_the_scale_down_window():
    revision = Revision(replicas=3)
    assert revision.sync(NOT_MEASURED, NOT_MEASURED, NOT_MEASURED) == 3  # nothing measured yet
    assert revision.sync(busy(0.0), busy(0.0), busy(0.0)) == 3  # wants 1; it started with 3


def test_scale_up_is_limited_to_four_replicas_or_double_per_period():
    revision = Revision(replicas=1, max_replicas=20)
    assert revision.sync(busy(10.0)) == 5  # wants 20: max(1 + 4, 2 x 1)
    revision.now -= SYNC - 1  # 1 s later: 4 of the period's 4 were added already
    assert revision.sync(*[busy(2.0)] * 5) == 5
    revision.now += SYNC
    assert revision.sync(*[busy(2.0)] * 5) == 10  # a new period: max(5 + 4, 2 x 5)


def test_a_disabled_direction_never_moves():
    never_down = ScalingRules(0.0, SCALE_DOWN.policies, select="Disabled")
    revision = Revision(replicas=3, scale_down=never_down)
    assert revision.sync(busy(0.0), busy(0.0), busy(0.0)) == 3


def test_the_min_policy_allows_the_least_change():
    one_at_a_time = ScalingRules(
        0.0, (ScalingPolicy("Pods", 1, 60.0), ScalingPolicy("Percent", 100, 60.0)), "Min"
    )
    revision = Revision(replicas=2, scale_up=one_at_a_time)
    assert revision.sync(busy(5.0), busy(5.0)) == 3


def test_the_bounds():
    revision = Revision(replicas=1, max_replicas=3)
    assert revision.reason(busy(10.0)).endswith("; capped at maxReplicas 3")
    assert revision.replicas == 3
    revision = Revision(replicas=5, min_replicas=2, max_replicas=3)
    assert revision.sync(busy(1.0)) == 3  # above maxReplicas: brought down at once


# ---- settings ----


def test_standard_mode_metrics_come_from_scale_metric_or_auto_scaling():
    cpu = resource_scaling_spec({"scaleMetric": "cpu", "scaleTarget": 60}, {}, "Standard")
    assert cpu == {
        "class": "hpa",
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            }
        ],
    }
    metrics = [
        {
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}},
        }
    ]
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    spec = {"autoScaling": {"metrics": metrics, "behavior": behavior}}
    keda = resource_scaling_spec(spec, {"serving.kserve.io/autoscalerClass": "keda"}, "Standard")
    assert keda == {"class": "keda", "metrics": metrics, "behavior": behavior}
    settings = resource_scaling({"hpa": keda, "minReplicas": 0, "maxReplicas": 3})
    assert settings == ResourceScaling(
        (ResourceTarget("memory", "AverageValue", 2.0**30),),
        min_replicas=1,  # an HPA does not scale to zero
        max_replicas=3,
        scale_up=SCALE_UP,
        scale_down=ScalingRules(0.0, SCALE_DOWN.policies),
    )


def test_what_is_not_scaled_on_resources():
    assert resource_scaling_spec({}, {}, "Standard") is None  # scaled on its requests on modelplane up
    assert resource_scaling_spec({"scaleMetric": "concurrency"}, {}, "Standard") is None
    assert (
        resource_scaling_spec(
            {"scaleMetric": "cpu"}, {"serving.kserve.io/autoscalerClass": "none"}, "Standard"
        )
        is None
    )
    assert resource_scaling_spec({"scaleMetric": "rps"}, {}, "Knative") is None


def test_knatives_hpa_class():
    annotations = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
    spec = resource_scaling_spec({"scaleMetric": "memory", "scaleTarget": 300}, annotations, "Knative")
    assert spec is not None
    settings = resource_scaling({"hpa": spec, "minReplicas": 1}, default_max=4)
    assert settings is not None
    assert settings.targets == (ResourceTarget("memory", "AverageValue", 300.0 * 2**20),)
    assert settings.max_replicas == 4  # Knative's max-scale default, as for the KPA
    cpu = resource_scaling({"hpa": resource_scaling_spec({}, annotations, "Knative")})
    assert cpu is not None and cpu.targets == (ResourceTarget("cpu", "Utilization", 80.0),)


def test_a_standard_component_without_max_replicas_keeps_its_minimum():
    settings = resource_scaling({"hpa": {"class": "hpa", "metrics": []}, "minReplicas": 2})
    assert settings is not None
    assert (settings.min_replicas, settings.max_replicas) == (2, 2)


@pytest.mark.parametrize(
    ("behavior", "message"),
    [
        (
            {"scaleUp": {"selectPolicy": "Most"}},
            "behavior.scaleUp.selectPolicy must be Max, Min or Disabled, not Most",
        ),
        (
            {"scaleDown": {"stabilizationWindowSeconds": 7200}},
            "behavior.scaleDown.stabilizationWindowSeconds must be 0 to 3600",
        ),
        (
            {"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}},
            "behavior.scaleDown.policies[].value must be a whole number above 0",
        ),
    ],
)
def test_a_behavior_kubernetes_would_refuse_is_refused(behavior, message):
    with pytest.raises(AutoscalingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resource_scaling({"hpa": {"class": "hpa", "metrics": [], "behavior": behavior}})
