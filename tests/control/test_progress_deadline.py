"""`serving.knative.dev/progress-deadline`: a revision's deadline in its template, refused when it is not
a positive duration."""

from __future__ import annotations

import pytest

from modelplane.api import admit, builtin_cluster_runtimes
from modelplane.api.errors import ValidationError
from modelplane.control import revision_templates
from modelplane.control.admission import admit_with_platform_checks

DEADLINE = "serving.knative.dev/progress-deadline"


def service(annotations: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default", "annotations": annotations},
        "spec": {"predictor": {"sklearn": {"storageUri": "pvc://models/iris"}}},
    }


def predictor_template(annotations: dict) -> dict:
    admitted = admit(service(annotations), old=None)
    return revision_templates(admitted, [], builtin_cluster_runtimes())["predictor"]


def test_the_annotation_is_the_revisions_deadline_and_only_a_template_that_sets_it_says_one():
    assert predictor_template({DEADLINE: "1m30s"})["progressDeadline"] == 90.0
    assert "progressDeadline" not in predictor_template({})


@pytest.mark.parametrize("value", ["0s", "ten minutes", "-5m"])
def test_a_deadline_that_is_not_a_positive_duration_is_refused(value):
    with pytest.raises(ValidationError, match=f"{DEADLINE} must be a positive duration"):
        admit_with_platform_checks(service({DEADLINE: value}), old=None)
