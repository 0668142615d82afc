"""The InferenceService defaulting webhook's rules."""

from __future__ import annotations

import copy

import pytest

from modelplane.api import AdmissionConfig, admit, default_inference_service

from .helpers import isvc, model_predictor, rejection, sklearn_predictor

MODE = "serving.kserve.io/deploymentMode"


@pytest.mark.parametrize(
    ("shorthand", "protocol"),
    [
        ("sklearn", None),
        ("xgboost", None),
        ("lightgbm", None),
        ("tensorflow", None),
        ("pytorch", None),
        ("pmml", None),
        ("paddle", None),
        ("onnx", "v2"),
        ("triton", "v2"),
        ("huggingface", "v2"),
    ],
)
def test_each_shorthand_becomes_model_with_its_format(shorthand, protocol):
    admitted = admit(isvc({shorthand: {"storageUri": "file:///models/m"}}))
    model = admitted["spec"]["predictor"]["model"]
    assert shorthand not in admitted["spec"]["predictor"]
    assert model["modelFormat"] == {"name": shorthand}
    assert model.get("protocolVersion") == protocol
    assert admitted["metadata"]["annotations"]["modelFormat"] == shorthand


def test_explicit_protocol_on_a_v2_shorthand_is_kept():
    admitted = admit(isvc({"onnx": {"storageUri": "file:///m/model.onnx", "protocolVersion": "v1"}}))
    assert admitted["spec"]["predictor"]["model"]["protocolVersion"] == "v1"


@pytest.mark.parametrize(("format_name", "protocol"), [("triton", "v2"), ("vLLM", "v2"), ("sklearn", None)])
def test_model_protocol_defaults_to_v2_for_triton_and_vllm(format_name, protocol):
    admitted = admit(isvc(model_predictor(format_name)))
    assert admitted["spec"]["predictor"]["model"].get("protocolVersion") == protocol


def test_shorthand_fields_move_into_model():
    predictor = {
        "sklearn": {
            "storageUri": "file:///m",
            "runtimeVersion": "1.3",
            "args": ["--workers=2"],
            "env": [{"name": "A", "value": "1"}],
            "resources": {"limits": {"cpu": "2"}},
        }
    }
    model = admit(isvc(predictor))["spec"]["predictor"]["model"]
    assert model == {"modelFormat": {"name": "sklearn"}, **predictor["sklearn"]}


def test_user_model_format_annotation_wins():
    admitted = admit(isvc(annotations={"modelFormat": "custom"}))
    assert admitted["metadata"]["annotations"]["modelFormat"] == "custom"


def test_model_runtime_defaults_are_left_to_the_controller():
    model = admit(isvc(model_predictor()))["spec"]["predictor"]["model"]
    assert "name" not in model
    assert "resources" not in model
    assert "runtime" not in model


@pytest.mark.parametrize(("legacy", "mode"), [("RawDeployment", "Standard"), ("Serverless", "Knative")])
def test_legacy_deployment_modes_are_renamed(legacy, mode):
    admitted = admit(isvc(annotations={MODE: legacy}))
    assert admitted["metadata"]["annotations"][MODE] == mode


def test_a_knative_default_mode_is_not_written():
    assert MODE not in admit(isvc())["metadata"]["annotations"]


@pytest.mark.parametrize("mode", ["Standard", "ModelMesh"])
def test_a_standard_or_modelmesh_default_mode_is_written(mode):
    defaulted = default_inference_service(isvc(), AdmissionConfig(default_deployment_mode=mode))
    assert defaulted["metadata"]["annotations"][MODE] == mode


def test_modelmesh_predictors_keep_their_shorthand():
    defaulted = default_inference_service(isvc(annotations={MODE: "ModelMesh"}))
    assert "sklearn" in defaulted["spec"]["predictor"]


def test_an_explicit_mode_beats_the_configured_default():
    config = AdmissionConfig(default_deployment_mode="Standard")
    admitted = admit(isvc(annotations={MODE: "Knative"}), config=config)
    assert admitted["metadata"]["annotations"][MODE] == "Knative"


def test_a_shorthand_next_to_model_is_not_dropped():
    predictor = {**sklearn_predictor(), **model_predictor("xgboost")}
    error = rejection(isvc(predictor))
    assert error.errors[0].path == "spec.predictor"
    assert error.errors[0].message.startswith("exactly one of [Name, SKLearn, XGBoost")


def _kubectl_reapplied(stored: dict, shorthand: dict) -> dict:
    """What kubectl's three-way merge patch makes of a stored InferenceService when the file still
    has the shorthand: the stored (defaulted) predictor with the shorthand added back."""
    update = copy.deepcopy(stored)
    update["spec"]["predictor"].update(shorthand)
    return update


def test_a_shorthand_next_to_the_stored_model_replaces_it_on_update():
    stored = admit(isvc(sklearn_predictor()))
    changed = {"sklearn": {"storageUri": "file:///models/iris-2"}}
    admitted = admit(_kubectl_reapplied(stored, changed), old=stored)
    assert admitted["spec"]["predictor"] == {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///models/iris-2"}
    }


def test_a_reapplied_unchanged_shorthand_gives_the_stored_resource():
    stored = admit(isvc({"onnx": {"storageUri": "file:///m/model.onnx"}}))
    again = admit(_kubectl_reapplied(stored, {"onnx": {"storageUri": "file:///m/model.onnx"}}), old=stored)
    assert again == stored


def test_errors_in_a_reapplied_shorthand_name_the_shorthand():
    stored = admit(isvc(sklearn_predictor()))
    reapplied = _kubectl_reapplied(stored, {"sklearn": {"storageUri": "file:///models/iris", "name": "x"}})
    error = rejection(reapplied, old=stored)
    assert [(e.path, e.message) for e in error.errors] == [
        ("spec.predictor.sklearn.name", "the 'name' field is not allowed in standard predictor")
    ]


def test_a_shorthand_next_to_a_changed_model_is_still_refused_on_update():
    stored = admit(isvc(sklearn_predictor()))
    update = _kubectl_reapplied(stored, sklearn_predictor())
    update["spec"]["predictor"]["model"]["storageUri"] = "file:///models/other"
    error = rejection(update, old=stored)
    assert error.errors[0].message.startswith("exactly one of [Name, SKLearn, XGBoost")


def test_custom_predictor_keeps_names_of_several_containers():
    predictor = {
        "containers": [
            {"name": "transformer-container", "image": "t"},
            {"name": "kserve-container", "image": "p"},
        ]
    }
    containers = admit(isvc(predictor))["spec"]["predictor"]["containers"]
    assert [c["name"] for c in containers] == ["transformer-container", "kserve-container"]
    # KServe gives the resource defaults to the first container.
    assert containers[0]["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert "resources" not in containers[1]


def test_custom_container_resources_are_only_filled_in():
    predictor = {"containers": [{"image": "p", "resources": {"limits": {"cpu": "4"}}}]}
    resources = admit(isvc(predictor))["spec"]["predictor"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "4", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}


def test_no_resource_defaults_when_configured_without():
    config = AdmissionConfig(resource_defaults={})
    container = admit(isvc({"containers": [{"image": "p"}]}), config=config)["spec"]["predictor"][
        "containers"
    ][0]
    assert container == {"name": "kserve-container", "image": "p"}


def test_art_explainer_defaults():
    resource = isvc(explainer={"art": {"type": "SquareAttack"}})
    art = admit(resource)["spec"]["explainer"]["art"]
    assert art["name"] == "kserve-container"
    assert art["runtimeVersion"] == "latest"
    assert art["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}


def test_service_account_token_is_turned_off_when_configured():
    config = AdmissionConfig(automount_service_account_token=False)
    resource = isvc(transformer={"containers": [{"image": "t"}]})
    spec = admit(resource, config=config)["spec"]
    assert spec["predictor"]["automountServiceAccountToken"] is False
    assert spec["transformer"]["automountServiceAccountToken"] is False


def test_null_fields_are_dropped():
    resource = isvc(sklearn_predictor(minReplicas=None))
    resource["metadata"]["labels"] = None
    admitted = admit(resource)
    assert "minReplicas" not in admitted["spec"]["predictor"]
    assert "labels" not in admitted["metadata"]


def test_unknown_fields_are_kept():
    resource = isvc(sklearn_predictor(futureField={"a": 1}))
    resource["spec"]["extra"] = True
    admitted = admit(resource)
    assert admitted["spec"]["predictor"]["futureField"] == {"a": 1}
    assert admitted["spec"]["extra"] is True
    assert admitted["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}


def test_status_is_left_alone():
    resource = isvc()
    resource["status"] = {"url": "http://x"}
    assert admit(resource)["status"] == {"url": "http://x"}
