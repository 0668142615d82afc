"""KServe's own v1beta1 samples are accepted and defaulted as KServe's webhooks would."""

from __future__ import annotations

import copy

from modelplane.api import admit, load_path

from .helpers import SAMPLES, sample


def test_every_sample_is_admitted():
    for document in load_path(SAMPLES):
        admit(document.resource)


def test_sklearn_shorthand_becomes_model():
    admitted = admit(sample("sklearn.yaml"))
    assert admitted["metadata"]["annotations"] == {"modelFormat": "sklearn"}
    assert admitted["spec"] == {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "file:///var/lib/models/sklearn/1.0/model",
            }
        }
    }


def test_xgboost_shorthand_becomes_model():
    admitted = admit(sample("xgboost.yaml"))
    assert admitted["spec"]["predictor"] == {
        "model": {"modelFormat": {"name": "xgboost"}, "storageUri": "file:///var/lib/models/xgboost/iris"}
    }
    assert admitted["metadata"]["annotations"]["modelFormat"] == "xgboost"


def test_lightgbm_model_is_kept_and_annotated():
    original = sample("lightgbm.yaml")
    admitted = admit(original)
    assert admitted["spec"] == original["spec"]
    assert admitted["metadata"]["annotations"] == {"modelFormat": "lightgbm"}


def test_explicit_runtime_and_protocol_are_kept():
    admitted = admit(sample("sklearn-v2.yaml"))
    model = admitted["spec"]["predictor"]["model"]
    assert model["runtime"] == "kserve-sklearnserver"
    assert model["protocolVersion"] == "v2"


def test_custom_predictor_gets_resource_defaults_and_port_protocol():
    admitted = admit(sample("custom-predictor.yaml"))
    container = admitted["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert "modelFormat" not in admitted["metadata"].get("annotations", {})


def test_transformer_container_is_renamed_and_given_resources():
    admitted = admit(sample("transformer.yaml"))
    transformer = admitted["spec"]["transformer"]["containers"][0]
    assert transformer["name"] == "kserve-container"
    assert transformer["args"] == ["--model_name", "mnist"]
    assert transformer["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert admitted["spec"]["predictor"]["model"]["modelFormat"] == {"name": "pytorch"}


def test_canary_sample_normalises_legacy_deployment_mode():
    admitted = admit(sample("canary.yaml"))
    assert admitted["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert admitted["spec"]["canary"][0]["predictor"]["name"] == "v2"


def test_admit_does_not_change_its_input():
    original = sample("sklearn.yaml")
    before = copy.deepcopy(original)
    admit(original)
    assert original == before


def test_admitting_twice_changes_nothing_more():
    for name in ("sklearn.yaml", "custom-predictor.yaml", "transformer.yaml", "canary.yaml"):
        once = admit(sample(name))
        assert admit(copy.deepcopy(once)) == once


def test_other_kinds_are_kept_as_written():
    for name in ("graph.yaml", "trained-model.yaml"):
        assert admit(sample(name)) == sample(name)
