"""Kinds, CRD schema checks, unknown fields, and the errors' shapes."""

from __future__ import annotations

import pytest

from modelplane.api import (
    KINDS,
    FieldError,
    ValidationError,
    admit,
    kind_named,
    kind_of,
    unknown_fields,
)
from modelplane.api.kinds import INFERENCE_SERVICE, SECRET
from modelplane.api.quantity import parse_quantity
from modelplane.api.schema import drop_unknown_fields

from .helpers import fields, isvc, rejection, sklearn_predictor


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("isvc", "InferenceService"),
        ("InferenceServices", "InferenceService"),
        ("inferenceservice", "InferenceService"),
        ("ig", "InferenceGraph"),
        ("tm", "TrainedModel"),
        ("servingruntimes", "ServingRuntime"),
        ("ClusterServingRuntime", "ClusterServingRuntime"),
    ],
)
def test_kind_names(name, kind):
    assert kind_named(name).kind == kind


def test_kind_facts():
    facts = {k.kind: (k.api_version, k.plural, k.namespaced) for k in KINDS}
    assert facts == {
        "InferenceService": ("serving.kserve.io/v1beta1", "inferenceservices", True),
        "ServingRuntime": ("serving.kserve.io/v1alpha1", "servingruntimes", True),
        "ClusterServingRuntime": ("serving.kserve.io/v1alpha1", "clusterservingruntimes", False),
        "InferenceGraph": ("serving.kserve.io/v1alpha1", "inferencegraphs", True),
        "TrainedModel": ("serving.kserve.io/v1alpha1", "trainedmodels", True),
        "Event": ("v1", "events", True),
        "Secret": ("v1", "secrets", True),
        "ConfigMap": ("v1", "configmaps", True),
        "ServiceAccount": ("v1", "serviceaccounts", True),
    }
    assert kind_named("sa").crd_name == "serviceaccounts"
    assert kind_named("cm").crd_name == "configmaps"
    assert kind_named("isvc").crd_name == "inferenceservices.serving.kserve.io"
    assert kind_named("ev").crd_name == "events"
    assert kind_named("nope") is None


def test_kind_of_needs_the_served_version():
    assert (
        kind_of({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService"}).plural
        == "inferenceservices"
    )
    assert kind_of({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceService"}) is None


def test_unknown_kinds_and_versions_are_rejected():
    resource = isvc()
    resource["apiVersion"] = "serving.kserve.io/v1alpha2"
    assert rejection(resource).errors == [
        FieldError(
            "apiVersion",
            'Unsupported value: "serving.kserve.io/v1alpha2": InferenceService is served as "serving.kserve.io/v1beta1"',
        )
    ]
    resource["kind"] = "Deployment"
    assert fields(resource) == ["kind"]


@pytest.mark.parametrize(
    ("predictor", "path", "message"),
    [
        (
            sklearn_predictor(minReplicas="two"),
            "spec.predictor.minReplicas",
            'Invalid value: "two": must be of type integer',
        ),
        (
            {"sklearn": {"storageUri": 42}},
            "spec.predictor.sklearn.storageUri",
            "Invalid value: 42: must be of type string",
        ),
        (
            sklearn_predictor(scaleMetric="gpu"),
            "spec.predictor.scaleMetric",
            'Unsupported value: "gpu": supported values: "cpu", "memory", "concurrency", "rps"',
        ),
        (
            sklearn_predictor(name="Bad_Name"),
            "spec.predictor.name",
            "Invalid value: \"Bad_Name\": should match '^[a-z]([-a-z0-9]*[a-z0-9])?$'",
        ),
        (
            sklearn_predictor(minReplicas=2**31),
            "spec.predictor.minReplicas",
            "Invalid value: 2147483648: must fit in a 32-bit integer",
        ),
        (
            {"sklearn": {"resources": {"limits": {"cpu": "lots"}}}},
            "spec.predictor.sklearn.resources.limits.cpu",
            None,
        ),
        ({"model": {"modelFormat": {}}}, "spec.predictor.model.modelFormat.name", "Required value"),
        (
            {"containers": [{"name": "a"}, {"image": "b"}]},
            "spec.predictor.containers[1].name",
            "Required value",
        ),
    ],
)
def test_schema_errors_carry_the_field_path(predictor, path, message):
    error = rejection(isvc(predictor)).errors[0]
    assert error.path == path
    if message is not None:
        assert error.message == message


def test_type_errors_name_the_field_as_written_before_defaulting():
    # The shorthand becomes `model`, but the error speaks of the field the user wrote.
    assert fields(isvc({"xgboost": {"storageUri": ["a"]}})) == ["spec.predictor.xgboost.storageUri"]


def test_all_schema_errors_are_reported():
    predictor = sklearn_predictor(minReplicas="a", maxReplicas="b")
    assert fields(isvc(predictor)) == ["spec.predictor.maxReplicas", "spec.predictor.minReplicas"]


def test_numeric_quantities_are_accepted():
    admit(isvc({"sklearn": {"storageUri": "/m", "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}}))


def test_unknown_fields_are_listed():
    resource = isvc(sklearn_predictor(replicas=3))
    resource["spec"]["predictor"]["sklearn"]["storageURI"] = "/typo"
    assert sorted(unknown_fields(resource)) == [
        "spec.predictor.replicas",
        "spec.predictor.sklearn.storageURI",
    ]
    assert unknown_fields({"kind": "Nope"}) == []


def test_unknown_fields_are_dropped_but_where_the_schema_keeps_any():
    resource = isvc(sklearn_predictor(replicas=3))
    resource["metadata"]["extra"] = "open"
    resource["status"] = {"modelplaneOwn": {"kept": True}}  # x-kubernetes-preserve-unknown-fields
    dropped = drop_unknown_fields(resource, INFERENCE_SERVICE)
    assert "replicas" not in dropped["spec"]["predictor"]
    assert dropped["metadata"]["extra"] == "open"
    assert dropped["status"] == {"modelplaneOwn": {"kept": True}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {}, "data": {"any-key": "eA=="}, "colour": 1}
    assert drop_unknown_fields(secret, SECRET) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {},
        "data": {"any-key": "eA=="},
    }


def test_metadata_is_not_checked_for_unknown_fields():
    resource = isvc()
    resource["metadata"]["labels"] = {"team": "a"}
    assert unknown_fields(resource) == []


def test_a_name_is_required_and_cannot_change():
    resource = isvc()
    resource["metadata"]["name"] = ""
    assert rejection(resource).errors == [FieldError("metadata.name", "Required value: name is required")]
    old = admit(isvc(name="a"))
    assert rejection(isvc(name="b"), old=old).errors == [
        FieldError("metadata.name", "Invalid value: the name of a resource cannot be changed")
    ]


def test_validation_error_needs_errors():
    with pytest.raises(ValueError):
        ValidationError([])


@pytest.mark.parametrize(
    ("text", "value"),
    [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("500m", 0.5), ("1k", 1000), ("1e3", 1000), (".5", 0.5), (2, 2)],
)
def test_quantities(text, value):
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["lots", "1Gb", "", None, True])
def test_not_quantities(text):
    assert parse_quantity(text) is None


def test_a_resource_must_be_an_object():
    assert rejection(["not", "a", "resource"]).errors == [FieldError("", "a resource must be an object")]


def test_an_unknown_field_names_the_declared_field_it_looks_like():
    from modelplane.api.admission import unknown_field_details

    resource = isvc(sklearn_predictor())
    predictor = resource["spec"]["predictor"]
    predictor["sklearn"]["storageUrl"] = "/typo"
    predictor["sklearn"]["STORAGEURI"] = "/shouting"
    predictor["minReplica"] = 1
    predictor["colour"] = "blue"
    hints = {field.path: field.did_you_mean for field in unknown_field_details(resource)}
    assert hints == {
        "spec.predictor.sklearn.storageUrl": "storageUri",
        "spec.predictor.sklearn.STORAGEURI": "storageUri",
        "spec.predictor.minReplica": "minReplicas",
        "spec.predictor.colour": None,
    }
