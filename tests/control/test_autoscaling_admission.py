"""Knative's webhook checks of the autoscaling class and metric annotations, at admission."""

from __future__ import annotations

import pytest

from modelplane.api.errors import ValidationError
from modelplane.control.admission import admit_with_platform_checks

CLASS = "autoscaling.knative.dev/class"
METRIC = "autoscaling.knative.dev/metric"


def service(annotations: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default", "annotations": annotations},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m/iris"}}},
    }


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({METRIC: "cpu"}, "invalid value: cpu: autoscaling.knative.dev/metric"),
        ({METRIC: "concurency"}, "invalid value: concurency: autoscaling.knative.dev/metric"),
        (
            {CLASS: "kpa.autoscaling.knative.dev", METRIC: "memory"},
            "invalid value: memory: autoscaling.knative.dev/metric",
        ),
        (
            {CLASS: "hpa.autoscaling.knative.dev", METRIC: ""},
            "invalid value: : autoscaling.knative.dev/metric",
        ),
        (
            {CLASS: "bogus.autoscaling.knative.dev"},
            "invalid value: bogus.autoscaling.knative.dev: autoscaling.knative.dev/class",
        ),
    ],
)
def test_what_knatives_webhook_refuses_is_refused(annotations, message):
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(service(annotations))
    assert message in str(refused.value)
    assert [error.path for error in refused.value.errors] == ["metadata.annotations"]


@pytest.mark.parametrize(
    "annotations",
    [
        {METRIC: "rps"},
        {CLASS: "kpa.autoscaling.knative.dev", METRIC: "concurrency"},
        {CLASS: "hpa.autoscaling.knative.dev", METRIC: "cpu"},
        {CLASS: "custom.example.com", METRIC: "anything"},  # another domain's autoscaler: left alone
        # Standard mode: KServe makes no Knative revision, so Knative's checks do not apply.
        {"serving.kserve.io/deploymentMode": "Standard", CLASS: "bogus.autoscaling.knative.dev"},
    ],
)
def test_what_knatives_webhook_accepts_is_accepted(annotations):
    admit_with_platform_checks(service(annotations))


def test_a_components_own_annotations_are_checked_where_they_are():
    """KServe gives a component's pods and revision the service's annotations under its own."""
    on_component = service({})
    on_component["spec"]["predictor"]["annotations"] = {METRIC: "cpu"}
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(on_component)
    assert [error.path for error in refused.value.errors] == ["spec.predictor.annotations"]
    both = service({METRIC: "cpu"})
    both["spec"]["predictor"]["annotations"] = {"example.com/team": "blue"}
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(both)
    assert [error.path for error in refused.value.errors] == ["metadata.annotations"]  # said once
    fixed = service({METRIC: "rps"})
    fixed["spec"]["predictor"]["annotations"] = {METRIC: "concurrency"}  # the component's, over it
    admit_with_platform_checks(fixed)


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        ({METRIC: "cpu"}, {METRIC: "rps"}),
        ({CLASS: "bogus.autoscaling.knative.dev"}, {CLASS: "kpa.autoscaling.knative.dev"}),
        ({"autoscaling.knative.dev/target": "abc"}, {"autoscaling.knative.dev/target": "5"}),
        ({"autoscaling.knative.dev/window": "2s"}, {"autoscaling.knative.dev/window": "20s"}),
        ({"serving.knative.dev/progress-deadline": "soon"}, {"serving.knative.dev/progress-deadline": "5m"}),
    ],
)
def test_a_services_value_is_judged_in_the_components_that_inherit_it(bad, good):
    """A component's own annotation is what reaches its revision: the service's value under it reaches
    none, and is not refused; one a component does inherit is refused, naming that component."""
    overridden = service(bad)
    overridden["spec"]["predictor"]["annotations"] = good
    admit_with_platform_checks(overridden)
    inherited = service(bad)
    inherited["spec"]["predictor"]["annotations"] = good
    inherited["spec"]["transformer"] = {"containers": [{"name": "kserve-container", "image": "example/t"}]}
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(inherited)
    [error] = refused.value.errors
    assert error.path == "metadata.annotations"
    assert error.message.endswith("(inherited by the transformer)")


def test_a_value_several_components_inherit_is_said_once_naming_them():
    both = service({"autoscaling.knative.dev/window": "2s"})
    both["spec"]["transformer"] = {"containers": [{"name": "kserve-container", "image": "example/t"}]}
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(both)
    assert [str(error) for error in refused.value.errors] == [
        "metadata.annotations: autoscaling.knative.dev/window must be between 6s and 1h, not 2s"
        " (inherited by the predictor and the transformer)"
    ]


def test_a_scale_metric_is_the_metric_kserve_writes_over_the_annotation():
    written_over = service({METRIC: "cpu"})
    written_over["spec"]["predictor"]["scaleMetric"] = "rps"
    admit_with_platform_checks(written_over)


def test_a_problem_with_a_key_the_service_sets_is_not_placed_on_a_component_that_tunes_another():
    tuned = service({"autoscaling.knative.dev/window": "2s"})
    tuned["spec"]["predictor"]["annotations"] = {"autoscaling.knative.dev/target": "5"}
    with pytest.raises(ValidationError) as refused:
        admit_with_platform_checks(tuned)
    assert [error.path for error in refused.value.errors] == ["metadata.annotations"]
