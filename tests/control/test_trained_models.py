"""TrainedModels: multi-model predictors, memory, status and URLs (the pure decisions)."""

from __future__ import annotations

from modelplane.api import admit, builtin_cluster_runtimes
from modelplane.control import revision_templates
from modelplane.control.trained_models import (
    LoadState,
    is_mms_predictor,
    is_multi_model_template,
    memory_fits,
    memory_limit,
    model_digest,
    trained_model_labels,
    trained_model_status,
)

NOW = "2026-01-01T00:00:00Z"


def isvc(predictor: dict, *, ready: bool = True, url: bool = True) -> dict:
    resource = admit(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "mms", "namespace": "default"},
            "spec": {"predictor": predictor},
        }
    )
    status: dict = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if url:
        status["url"] = "http://mms.default.localhost:8080"
        status["address"] = {"url": "http://mms-predictor.default.localhost:8080"}
    resource["status"] = status
    return resource


def tm(
    name: str, memory: str = "128Mi", created: str = "2026-01-01T00:00:00Z", uri: str = "s3://b/m"
) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": name, "namespace": "default", "generation": 1, "creationTimestamp": created},
        "spec": {
            "inferenceService": "mms",
            "model": {"storageUri": uri, "framework": "sklearn", "memory": memory},
        },
    }


def conditions(status: dict) -> dict[str, tuple]:
    return {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}


def test_a_predictor_without_storage_is_multi_model():
    assert is_mms_predictor(isvc({"sklearn": {}}))
    assert is_mms_predictor(isvc({"model": {"modelFormat": {"name": "sklearn"}}}))
    assert not is_mms_predictor(isvc({"sklearn": {"storageUri": "pvc://m/iris"}}))
    custom = {"containers": [{"name": "kserve-container", "image": "x", "env": []}]}
    assert not is_mms_predictor(isvc(custom))
    custom["containers"][0]["env"] = [{"name": "MULTI_MODEL_SERVER", "value": "true"}]
    assert is_mms_predictor(isvc(custom))


def test_a_multi_model_predictor_runs_a_multi_model_server_and_others_are_unchanged():
    mms = revision_templates(isvc({"sklearn": {}}), [], builtin_cluster_runtimes())["predictor"]
    assert mms["env"]["MULTI_MODEL_SERVER"] == "true"
    assert is_multi_model_template(mms)
    single = revision_templates(isvc({"sklearn": {"storageUri": "pvc://m"}}), [], builtin_cluster_runtimes())
    assert "MULTI_MODEL_SERVER" not in single["predictor"]["env"]
    assert not is_multi_model_template(single["predictor"])


def test_a_hugging_face_model_without_storage_is_not_multi_model():
    """KServe's IsMMSPredictor: its server fetches the model by --model_id; one rule for both platforms."""
    model = {"modelFormat": {"name": "huggingface"}, "args": ["--model_id=bert-base-uncased"]}
    for predictor in ({"model": model}, {"huggingface": {"args": model["args"]}}):
        assert not is_mms_predictor(isvc(predictor))
    template = revision_templates(isvc({"model": model}), [], builtin_cluster_runtimes())["predictor"]
    assert "MULTI_MODEL_SERVER" not in template["env"]
    assert not is_multi_model_template(template)


def test_memory_is_given_in_creation_order_up_to_the_limit():
    limited = isvc({"sklearn": {"resources": {"limits": {"memory": "300Mi"}}}})
    assert memory_limit(limited) == 300 * 2**20
    assert memory_limit(isvc({"sklearn": {}})) is None
    models = [
        tm("c", "100Mi", "2026-01-01T00:00:03Z"),
        tm("a", "200Mi", "2026-01-01T00:00:01Z"),
        tm("b", "200Mi", "2026-01-01T00:00:02Z"),
    ]
    assert memory_fits(models, memory_limit(limited)) == {"a": True, "b": False, "c": True}
    assert memory_fits(models, None) == {"a": True, "b": True, "c": True}


def placed(model: dict) -> dict:
    """A TrainedModel its service's replicas were given a place for (KServe's allocated label)."""
    model["metadata"]["labels"] = trained_model_labels(model, fits=True)
    return model


def test_a_model_in_place_keeps_it_and_a_new_one_that_does_not_fit_waits():
    limit = memory_limit(isvc({"sklearn": {"resources": {"limits": {"memory": "300Mi"}}}}))
    older = tm("a", "200Mi", "2026-01-01T00:00:01Z")  # created first, but not placed yet
    models = [
        older,
        placed(tm("b", "200Mi", "2026-01-01T00:00:02Z")),
        tm("c", "100Mi", "2026-01-01T00:00:03Z"),
    ]
    assert memory_fits(models, limit) == {"a": False, "b": True, "c": True}


def test_models_in_place_that_no_longer_fit_leave_least_recently_used_first():
    limit = memory_limit(isvc({"sklearn": {"resources": {"limits": {"memory": "300Mi"}}}}))
    models = [
        placed(tm("a", "200Mi", "2026-01-01T00:00:01Z")),
        placed(tm("b", "200Mi", "2026-01-01T00:00:02Z")),  # placed when the limit was 400Mi
        tm("c", "100Mi", "2026-01-01T00:00:03Z"),
    ]
    # a was used last: b leaves, and c takes the room that is left.
    assert memory_fits(models, limit, {"a": 20.0, "b": 10.0}) == {"a": True, "b": False, "c": True}
    assert memory_fits(models, limit, {"a": 10.0, "b": 20.0}) == {"a": False, "b": True, "c": True}
    # Never used: the newest created leaves first.
    assert memory_fits(models, limit) == {"a": True, "b": False, "c": True}


def test_a_changed_model_spec_changes_the_digest():
    assert model_digest(tm("a")) == model_digest(tm("a", created="2027-01-01T00:00:00Z"))
    assert model_digest(tm("a")) != model_digest(tm("a", uri="s3://b/other"))


def test_status_of_a_loaded_model_with_its_urls():
    status = trained_model_status(tm("a"), isvc({"sklearn": {}}), fits=True, load=LoadState(2, 2), now=NOW)
    assert conditions(status) == {
        "InferenceServiceReady": ("True", None),
        "IsMMSPredictor": ("True", None),
        "MemoryResourceAvailable": ("True", None),
        "Ready": ("True", None),
    }
    assert status["url"] == "http://mms.default.localhost:8080/v1/models/a:predict"
    assert status["address"] == {"url": "http://mms-predictor.default.localhost:8080/v1/models/a:predict"}
    assert status["observedGeneration"] == 1
    v2 = isvc({"sklearn": {"protocolVersion": "v2"}})
    assert trained_model_status(tm("a"), v2, fits=True, load=LoadState(), now=NOW)["url"].endswith(
        "/v2/models/a/infer"
    )


def test_status_says_why_a_model_is_not_ready():
    single = isvc({"sklearn": {"storageUri": "pvc://m"}})
    status = trained_model_status(tm("a"), single, fits=True, load=LoadState(), now=NOW)
    assert conditions(status)["IsMMSPredictor"] == ("False", "IsNotMMSPredictor")
    assert conditions(status)["Ready"] == ("False", "IsNotMMSPredictor")
    status = trained_model_status(tm("a"), isvc({"sklearn": {}}), fits=False, load=LoadState(), now=NOW)
    assert conditions(status)["MemoryResourceAvailable"] == ("False", "MemoryResourceNotAvailable")
    unready = isvc({"sklearn": {}}, ready=False, url=False)
    status = trained_model_status(tm("a"), unready, fits=True, load=LoadState(), now=NOW)
    assert conditions(status)["InferenceServiceReady"] == ("False", "InferenceServiceNotReady")
    assert "url" not in status
    loading = trained_model_status(tm("a"), isvc({"sklearn": {}}), fits=True, load=LoadState(2, 1), now=NOW)
    assert conditions(loading)["Ready"] == ("Unknown", "ModelLoading")
    failed = LoadState(1, 0, "no model file found")
    status = trained_model_status(tm("a"), isvc({"sklearn": {}}), fits=True, load=failed, now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ModelLoadFailed",
        "no model file found",
    )


def test_conditions_keep_their_transition_time_while_they_hold():
    first = trained_model_status(tm("a"), isvc({"sklearn": {}}), fits=True, load=LoadState(1, 0), now=NOW)
    later = "2026-01-01T00:01:00Z"
    second = trained_model_status(
        tm("a"), isvc({"sklearn": {}}), fits=True, load=LoadState(1, 1), now=later, previous=first
    )
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["IsMMSPredictor"] == NOW
    assert times["Ready"] == later


def test_labels_name_the_service_and_whether_the_model_is_allocated():
    model = tm("a")
    model["metadata"]["labels"] = {"team": "x", "serving.kserve.io/trainedmodel-allocated": "mms"}
    assert trained_model_labels(model, fits=True) == {
        "team": "x",
        "inferenceservice": "mms",
        "serving.kserve.io/trainedmodel-allocated": "mms",
    }
    assert trained_model_labels(model, fits=False) == {"team": "x", "inferenceservice": "mms"}
