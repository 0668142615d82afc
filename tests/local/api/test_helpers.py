"""The control-plane API's pure helpers: merge patch, selectors, printer columns, describe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelplane.api.kinds import INFERENCE_SERVICE, SERVING_RUNTIME
from modelplane.local.api.columns import evaluate, human_duration, printer_columns
from modelplane.local.api.describe import describe, smart_label
from modelplane.local.api.errors import BadRequest, Conflict, error_from_status
from modelplane.local.api.http import ApiRequest
from modelplane.local.api.metrics import request_labels
from modelplane.local.api.patch import merge_patch
from modelplane.local.api.paths import resolve_kind
from modelplane.local.api.selectors import parse_selectors


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target, patch, result):
    assert merge_patch(target, patch) == result


def test_merge_patch_leaves_its_arguments_alone():
    target, patch = {"a": {"b": 1}}, {"a": {"c": 2}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"c": 2}}


def labelled(name: str, namespace: str = "default", **labels) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def test_selectors():
    gold = labelled("a", tier="gold", app="iris")
    plain = labelled("b", namespace="other", app="iris")
    cases = {
        ("app=iris", None): [True, True],
        ("tier==gold", None): [True, False],
        ("tier!=gold", None): [False, True],
        ("tier", None): [True, False],
        ("!tier", None): [False, True],
        ("app=iris,tier", None): [True, False],
        (None, "metadata.name=b"): [False, True],
        (None, "metadata.namespace!=other"): [True, False],
        ("app=iris", "metadata.name==a"): [True, False],
        (None, None): [True, True],
    }
    for (labels, fields), expected in cases.items():
        matches = parse_selectors(labels, fields)
        assert [matches(gold), matches(plain)] == expected, (labels, fields)
    for labels, fields in (("=x", None), (None, "spec.replicas=1"), (None, "metadata.name")):
        with pytest.raises(BadRequest):
            parse_selectors(labels, fields)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400, "8d"),
        (2 * 365 * 86400 + 86400, "2y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_reads_as_kubectl_ages(seconds, text):
    assert human_duration(seconds) == text


def test_printer_columns_of_an_inference_service():
    isvc = {
        "metadata": {"name": "iris", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "url": "http://iris.default.localhost",
            "conditions": [
                {"type": "PredictorReady", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "components": {
                "predictor": {
                    "traffic": [
                        {"tag": "prev", "revisionName": "iris-predictor-00001", "percent": 20},
                        {"latestRevision": True, "revisionName": "iris-predictor-00002", "percent": 80},
                    ]
                }
            },
            "revisions": [
                {"name": "iris-predictor-00001", "actualReplicas": 2, "desiredReplicas": 1},
                {"name": "iris-predictor-00002", "actualReplicas": 0, "desiredReplicas": 0},
            ],
        },
    }
    now = datetime(2026, 1, 8, 23, 0, tzinfo=UTC)
    cells = {c.header: c.cell(isvc, now) for c in printer_columns(INFERENCE_SERVICE)}
    assert cells == {
        "URL": "http://iris.default.localhost",
        "READY": "True",
        "PREV": "20",
        "LATEST": "80",
        "PREVROLLEDOUTREVISION": "iris-predictor-00001",
        "LATESTREADYREVISION": "iris-predictor-00002",
        "AGE": "7d23h",
        "REVISIONS": "iris-predictor-00001,iris-predictor-00002",
        "REPLICAS": "2,0",
        "DESIRED": "1,0",
    }
    fresh = {"metadata": {"name": "new", "creationTimestamp": "2026-01-08T22:59:50Z"}}
    assert [c.cell(fresh, now) for c in printer_columns(INFERENCE_SERVICE)] == [
        "",
        "",
        "",
        "",
        "",
        "",
        "10s",
        "",
        "",
        "",
    ]


def test_printer_columns_of_a_runtime_join_several_values():
    runtime = {
        "metadata": {"name": "rt", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "disabled": False,
            "supportedModelFormats": [{"name": "sklearn"}, {"name": "xgboost"}],
            "containers": [{"name": "kserve-container"}],
        },
    }
    headers = [c.header for c in printer_columns(SERVING_RUNTIME)]
    assert headers == ["DISABLED", "MODELTYPE", "CONTAINERS", "AGE"]
    cells = [c.cell(runtime) for c in printer_columns(SERVING_RUNTIME)][:3]
    assert cells == ["false", "sklearn,xgboost", "kserve-container"]


def test_jsonpath_of_printer_columns():
    doc = {"a": [{"k": "x", "v": 1}, {"k": "y", "v": 2, "flag": True}], "b": {"c": "d"}}
    assert evaluate(".b.c", doc) == ["d"]
    assert evaluate(".a[*].v", doc) == [1, 2]
    assert evaluate(".a[1].k", doc) == ["y"]
    assert evaluate(".a[?(@.k=='y')].v", doc) == [2]
    assert evaluate('.a[?(@.k=="x")].v', doc) == [1]
    assert evaluate(".a[?(@.flag==true)].k", doc) == ["y"]
    assert evaluate(".missing.deeper", doc) == []
    assert evaluate(".a[?(@.v>1)].k", doc) == ["y"]
    with pytest.raises(ValueError):
        evaluate(".a[?(@.v>", doc)


def test_smart_labels_are_kubectl_s():
    assert smart_label("storageUri") == "Storage Uri"
    assert smart_label("apiVersion") == "API Version"
    assert smart_label("url") == "URL"
    assert smart_label("uid") == "UID"
    assert smart_label("lastTransitionTime") == "Last Transition Time"
    assert smart_label("serving.kserve.io/deploymentMode") == "serving.kserve.io/deploymentMode"


def test_describe_layout():
    text = describe(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "iris",
                "namespace": "default",
                "labels": {"b": "2", "a": "1"},
                "generation": 1,
            },
            "spec": {"predictor": {"model": {"storageUri": "gs://x", "args": ["--a"]}}},
        }
    )
    assert text.splitlines() == [
        "Name:         iris",
        "Namespace:    default",
        "Labels:       a=1",
        "              b=2",
        "Annotations:  <none>",
        "API Version:  serving.kserve.io/v1beta1",
        "Kind:         InferenceService",
        "Metadata:",
        "  Generation:  1",
        "Spec:",
        "  Predictor:",
        "    Model:",
        "      Args:",
        "        --a",
        "      Storage Uri:  gs://x",
        "Events:  <none>",
    ]


def test_kind_words():
    for word in ("isvc", "InferenceService", "inferenceservices", "inferenceservice.serving.kserve.io"):
        assert resolve_kind(word).kind == "InferenceService"
    assert resolve_kind("sr").kind == "ServingRuntime"
    assert resolve_kind("csr").kind == "ClusterServingRuntime"
    assert resolve_kind("tm").kind == "TrainedModel"
    assert resolve_kind("ig").kind == "InferenceGraph"
    assert resolve_kind("pods") is None


def test_a_status_comes_back_as_the_error_it_was():
    status = Conflict("modified", {"name": "x"}).to_status()
    error = error_from_status(status, 409)
    assert isinstance(error, Conflict)
    assert (error.code, error.message, error.details) == (409, "modified", {"name": "x"})


@pytest.mark.parametrize(
    ("method", "path", "query", "labels"),
    [
        (
            "GET",
            "/apis/serving.kserve.io/v1beta1/namespaces/a/inferenceservices",
            b"",
            ("LIST", "inferenceservices"),
        ),
        (
            "GET",
            "/apis/serving.kserve.io/v1beta1/inferenceservices",
            b"watch=1",
            ("WATCH", "inferenceservices"),
        ),
        (
            "DELETE",
            "/apis/serving.kserve.io/v1beta1/namespaces/a/inferenceservices",
            b"",
            ("DELETECOLLECTION", "inferenceservices"),
        ),
        (
            "DELETE",
            "/apis/serving.kserve.io/v1beta1/namespaces/a/inferenceservices/x",
            b"",
            ("DELETE", "inferenceservices"),
        ),
        ("PUT", "/api/v1/namespaces/a/secrets/x", b"", ("PUT", "secrets")),
    ],
)
def test_request_labels_name_verbs_as_kubernetes_counts_them(method, path, query, labels):
    scope = {"method": method, "path": path, "query_string": query, "headers": []}
    assert request_labels(ApiRequest.from_scope(scope, None), "/apply") == labels
