"""InferenceService status from observed revisions: conditions, URLs, components, modelStatus."""

from __future__ import annotations

from modelplane.control import ComponentState, Failure, RevisionState, ServiceState, inference_service_status

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:09:00Z"


def isvc(generation: int = 1, transformer: bool = False) -> dict:
    spec = {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}}
    if transformer:
        spec["transformer"] = {"containers": [{"name": "kserve-container"}]}
    return {"metadata": {"name": "iris", "namespace": "default", "generation": generation}, "spec": spec}


def status(state: ServiceState, *, previous: dict | None = None, now: str = NOW, **kwargs) -> dict:
    return inference_service_status(
        isvc(**kwargs), state, domain="localhost", port=8080, now=now, previous=previous
    )


def conditions(result: dict) -> dict[str, tuple]:
    return {c["type"]: (c["status"], c.get("reason")) for c in result["conditions"]}


LOADED_1 = RevisionState("iris-predictor-00001", "Loaded", ready_replicas=1)
RUNTIME = {"kind": "ClusterServingRuntime", "name": "kserve-sklearnserver"}


def test_a_ready_predictor_is_ready_with_urls_traffic_and_loaded_model():
    result = status(
        ServiceState({"predictor": ComponentState(LOADED_1, LOADED_1)}, runtime=RUNTIME, routed=True)
    )
    assert conditions(result) == {
        "IngressReady": ("True", None),
        "PredictorReady": ("True", None),
        "Ready": ("True", None),
    }
    assert result["observedGeneration"] == 1
    assert result["url"] == "http://iris.default.localhost:8080"
    assert result["address"] == {"url": "http://iris-predictor.default.localhost:8080"}
    predictor = result["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"] == "iris-predictor-00001"
    assert predictor["url"] == "http://iris-predictor.default.localhost:8080"
    assert predictor["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert result["modelStatus"]["transitionStatus"] == "UpToDate"
    assert result["modelStatus"]["states"] == {"activeModelState": "Loaded", "targetModelState": "Loaded"}
    assert result["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 1}
    assert result["clusterServingRuntimeName"] == "kserve-sklearnserver"


def test_a_loading_first_revision_is_unknown_in_progress_and_has_no_url():
    loading = RevisionState("iris-predictor-00001", "Loading")
    result = status(ServiceState({"predictor": ComponentState(loading)}))
    assert conditions(result)["PredictorReady"][0] == "Unknown"
    assert conditions(result)["IngressReady"][0] == "False"
    assert conditions(result)["Ready"][0] == "Unknown"
    assert "url" not in result and "latestReadyRevision" not in result["components"]["predictor"]
    assert result["modelStatus"]["transitionStatus"] == "InProgress"
    assert result["modelStatus"]["states"] == {"activeModelState": "", "targetModelState": "Loading"}


def test_a_new_revision_that_fails_to_load_leaves_the_previous_one_serving():
    failure = Failure(
        "ModelLoadFailed", "Failed to load: ValueError: bad pickle", None, NOW, "iris-predictor-00002"
    )
    failed = RevisionState("iris-predictor-00002", "FailedToLoad", failed_replicas=1, failure=failure)
    result = status(ServiceState({"predictor": ComponentState(failed, LOADED_1)}, routed=True), generation=2)
    assert conditions(result)["PredictorReady"] == ("False", "RevisionFailed")
    assert "bad pickle" in next(c for c in result["conditions"] if c["type"] == "Ready")["message"]
    predictor = result["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "iris-predictor-00002"
    assert predictor["latestReadyRevision"] == "iris-predictor-00001"
    assert predictor["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": False}
    ]
    model = result["modelStatus"]
    assert model["transitionStatus"] == "BlockedByFailedLoad"
    assert model["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert model["lastFailureInfo"]["reason"] == "ModelLoadFailed"
    assert model["lastFailureInfo"]["message"] == "Failed to load: ValueError: bad pickle"
    assert model["lastFailureInfo"]["modelRevisionName"] == "iris-predictor-00002"
    assert result["observedGeneration"] == 2


def test_an_invalid_spec_is_reported_with_the_runtime_reason():
    invalid = Failure("NoSupportingRuntime", "No runtime found to support specified framework/version")
    result = status(ServiceState(invalid=invalid))
    assert conditions(result)["PredictorReady"] == ("False", "NoSupportingRuntime")
    assert result["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert result["modelStatus"]["states"]["targetModelState"] == "FailedToLoad"
    assert result["modelStatus"]["lastFailureInfo"]["reason"] == "NoSupportingRuntime"


def test_a_transformer_gates_ingress_and_takes_the_service_url():
    transformer_loading = RevisionState("iris-transformer-00001", "Loading")
    state = ServiceState(
        {"predictor": ComponentState(LOADED_1, LOADED_1), "transformer": ComponentState(transformer_loading)},
        routed=False,
    )
    result = status(state, transformer=True)
    assert conditions(result)["TransformerReady"][0] == "Unknown"
    assert conditions(result)["IngressReady"] == ("False", "IngressNotCreated")
    ready = RevisionState("iris-transformer-00001", "Loaded", ready_replicas=1)
    state = ServiceState(
        {"predictor": ComponentState(LOADED_1, LOADED_1), "transformer": ComponentState(ready, ready)},
        routed=True,
    )
    result = status(state, transformer=True)
    assert conditions(result)["Ready"] == ("True", None)
    assert result["address"] == {"url": "http://iris-transformer.default.localhost:8080"}


def test_unchanged_conditions_keep_their_transition_time_and_rollouts_are_tracked():
    first = status(ServiceState({"predictor": ComponentState(LOADED_1, LOADED_1)}, routed=True))
    second_revision = RevisionState("iris-predictor-00002", "Loaded", ready_replicas=1)
    second = status(
        ServiceState({"predictor": ComponentState(second_revision, second_revision)}, routed=True),
        previous=first,
        now=LATER,
    )
    assert {c["lastTransitionTime"] for c in second["conditions"]} == {NOW}
    predictor = second["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00002"
    assert predictor["previousRolledoutRevision"] == "iris-predictor-00001"
