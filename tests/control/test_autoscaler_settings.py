"""A revision's autoscaling settings, from the component spec, Knative's annotations and the platform's
defaults."""

from __future__ import annotations

import pytest

from modelplane.control.autoscaling_settings import (
    AutoscalerConfig,
    AutoscalerSettings,
    AutoscalingError,
    autoscaler_settings,
    format_seconds,
    parse_duration,
)

KNATIVE = "autoscaling.knative.dev/"


def test_knative_defaults_but_a_bounded_replica_count():
    settings = autoscaler_settings({}, {})
    assert settings == AutoscalerSettings(max_replicas=4)
    assert (settings.metric, settings.target, settings.target_per_replica) == ("concurrency", 100.0, 70.0)
    assert (settings.min_replicas, settings.max_replicas, settings.initial_scale) == (1, 4, 1)
    assert (settings.stable_window, settings.panic_window, settings.panic_threshold) == (60.0, 6.0, 2.0)
    assert (settings.scale_down_delay, settings.scale_to_zero_wait) == (0.0, 30.0)
    assert settings.enable_scale_to_zero


def test_container_concurrency_is_the_target_and_caps_a_soft_one():
    assert autoscaler_settings({"containerConcurrency": 10}, {}).target == 10
    assert autoscaler_settings({"containerConcurrency": 10, "scaleTarget": 25}, {}).target == 10
    assert autoscaler_settings({"containerConcurrency": 10, "scaleTarget": 4}, {}).target == 4
    assert autoscaler_settings({}, {KNATIVE + "target": "30"}).target == 30


def test_the_spec_wins_over_the_annotations_as_kserve_writes_it_over_them():
    spec = {"scaleMetric": "concurrency", "scaleTarget": 5}
    settings = autoscaler_settings(spec, {KNATIVE + "target": "30", KNATIVE + "metric": "rps"})
    assert (settings.metric, settings.target) == ("concurrency", 5)


def test_requests_per_second():
    assert autoscaler_settings({"scaleMetric": "rps"}, {}).target == 200
    settings = autoscaler_settings({"containerConcurrency": 2}, {KNATIVE + "metric": "rps"})
    assert (settings.metric, settings.target, settings.container_concurrency) == ("rps", 200, 2)


def test_replica_bounds():
    settings = autoscaler_settings({"minReplicas": 0, "maxReplicas": 5}, {})
    assert (settings.min_replicas, settings.max_replicas) == (0, 5)


def test_without_max_replicas_the_platform_bounds_the_count():
    assert autoscaler_settings({"maxReplicas": 0}, {}).max_replicas == 4  # KServe's 0 is "not set"
    assert autoscaler_settings({"maxReplicas": 9}, {}).max_replicas == 9
    assert autoscaler_settings({"minReplicas": 6}, {}).max_replicas == 6
    assert autoscaler_settings({}, {}, AutoscalerConfig(max_scale=2)).max_replicas == 2
    assert autoscaler_settings({}, {}, AutoscalerConfig(max_scale=0)).max_replicas == 0  # no bound


def test_the_annotations_tune_the_windows_and_delays():
    settings = autoscaler_settings(
        {},
        {
            KNATIVE + "target-utilization-percentage": "50",
            KNATIVE + "window": "2m",
            KNATIVE + "panic-window-percentage": "20",
            KNATIVE + "panic-threshold-percentage": "150",
            KNATIVE + "scale-down-delay": "1m30s",
            KNATIVE + "scale-to-zero-pod-retention-period": "5m",
        },
    )
    assert settings.target_per_replica == 50
    assert (settings.stable_window, settings.panic_window, settings.panic_threshold) == (120, 24, 1.5)
    assert settings.scale_down_delay == 90
    assert settings.scale_to_zero_wait == 300  # the retention period, longer than the 30s grace period


def test_the_platform_config_gives_the_defaults():
    config = AutoscalerConfig(
        container_concurrency_target_default=8, scale_to_zero_grace_period=10, enable_scale_to_zero=False
    )
    settings = autoscaler_settings({}, {}, config)
    assert (settings.target, settings.scale_to_zero_grace_period, settings.enable_scale_to_zero) == (
        8,
        10,
        False,
    )


def test_initial_scale_as_kserve_passes_it_on():
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "3"}).initial_scale == 3
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "three"}).initial_scale == 1  # dropped
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "0"}).initial_scale == 1  # dropped
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "1_0"}).initial_scale == 1  # Go's Atoi
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "+2"}).initial_scale == 2
    allowed = AutoscalerConfig(allow_zero_initial_scale=True)
    assert autoscaler_settings({}, {KNATIVE + "initial-scale": "0"}, allowed).initial_scale == 0


def test_activation_scale():
    assert autoscaler_settings({}, {}).activation_scale == 1
    assert autoscaler_settings({}, {KNATIVE + "activation-scale": "3"}).activation_scale == 3


@pytest.mark.parametrize(
    ("spec", "annotations", "message"),
    [
        (
            {},
            {KNATIVE + "activation-scale": "0"},
            "autoscaling.knative.dev/activation-scale must be a whole number, 1 or more, not 0",
        ),
        ({"scaleMetric": "cpu"}, {}, "scale metric [cpu] is not supported; use concurrency or rps"),
        ({"scaleTarget": 0}, {}, "the scale target must be at least 0.01, not 0"),
        ({}, {KNATIVE + "target": "0"}, "autoscaling.knative.dev/target must be at least 0.01, not 0"),
        ({}, {KNATIVE + "target": "lots"}, "autoscaling.knative.dev/target must be a number, not 'lots'"),
        ({}, {KNATIVE + "window": "2s"}, "autoscaling.knative.dev/window must be between 6s and 1h, not 2s"),
        ({}, {KNATIVE + "window": "soon"}, "must be a duration such as 90s or 2m, not 'soon'"),
        ({}, {KNATIVE + "target-utilization-percentage": "0"}, "must be between 1 and 100, not 0"),
        ({}, {KNATIVE + "panic-threshold-percentage": "100"}, "must be between 110 and 1000, not 100"),
        ({}, {KNATIVE + "scale-down-delay": "2h"}, "must be between 0s and 1h, not 2h"),
        ({}, {KNATIVE + "initial-scale": "-1"}, "autoscaling.knative.dev/initial-scale must be 0 or more"),
        ({"minReplicas": -1}, {}, "minReplicas must be a whole number, 0 or more, not -1"),
    ],
)
def test_a_wrong_setting_says_what_is_allowed(spec, annotations, message):
    with pytest.raises(AutoscalingError) as error:
        autoscaler_settings(spec, annotations)
    assert message in str(error.value)


def test_go_durations():
    assert parse_duration("60s") == 60
    assert parse_duration("1m30s") == 90
    assert parse_duration("1.5h") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("0") == 0
    assert parse_duration("60") is None
    assert parse_duration("1m soon") is None
    assert [format_seconds(s) for s in (6, 0.5, 60, 90, 3600)] == ["6s", "0.5s", "1m", "1m30s", "1h"]
