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
