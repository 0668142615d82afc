"""InferenceService status from observed revisions: conditions, URLs, components, modelStatus."""

from __future__ import annotations

from modelplane.control import (
    ComponentState,
    Failure,
    RevisionState,
    ServiceState,
    Termination,
    TrafficTarget,
    inference_service_status,
    stopped_status,
)
from modelplane.control.observed import CanaryState, as_reported

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


def serving(revision: RevisionState) -> ComponentState:
    """A component whose only revision is ready and has all the traffic."""
    return ComponentState(revision, revision, (TrafficTarget(revision.name, 100, True),), revision.name)


RUNTIME = {"kind": "ClusterServingRuntime", "name": "kserve-sklearnserver"}


def test_a_ready_predictor_is_ready_with_urls_traffic_and_loaded_model():
    result = status(ServiceState({"predictor": serving(LOADED_1)}, runtime=RUNTIME, routed=True))
    assert conditions(result) == {
        "IngressReady": ("True", None),
        "LatestDeploymentReady": ("True", None),
        "PredictorConfigurationReady": ("True", None),
        "PredictorReady": ("True", None),
        "PredictorRouteReady": ("True", None),
        "Ready": ("True", None),
        "RoutesReady": ("True", None),
        "Stopped": ("False", None),
    }
    assert result["observedGeneration"] == 1
    assert result["url"] == "http://iris.default.localhost:8080"
    assert result["address"] == {"url": "http://iris-predictor.default.localhost:8080"}
    predictor = result["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"] == "iris-predictor-00001"
    assert predictor["url"] == "http://iris-predictor.default.localhost:8080"
    assert predictor["grpcUrl"] == "grpc://iris-predictor.default.localhost:8080"
    assert predictor["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert result["modelStatus"]["transitionStatus"] == "UpToDate"
    # targetModelState is there only while the model is not UpToDate, as the seeds say.
    assert result["modelStatus"]["states"] == {"activeModelState": "Loaded"}
    assert result["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 1}
    assert "lastFailureInfo" not in result["modelStatus"]
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


def test_a_canary_woken_from_zero_stays_ready_and_latest_ready_while_its_replica_starts():
    """As at zero, and as Knative's Ready, which leaves out whether a revision is active: the split keeps
    the canary's share meanwhile, and the status says the same (it said Unknown, and the older revision
    as latestReadyRevision)."""
    waking = RevisionState("iris-predictor-00002", "Loading", desired_replicas=1)
    reported = as_reported(waking, keeps_traffic=True)
    split = (
        TrafficTarget("iris-predictor-00002", 20, True, "latest"),
        TrafficTarget("iris-predictor-00001", 80, False, "prev"),
    )
    predictor = ComponentState(reported, reported, split, "iris-predictor-00001")
    result = status(ServiceState({"predictor": predictor}, routed=True), generation=2)
    assert conditions(result)["Ready"] == ("True", None)
    assert result["components"]["predictor"]["latestReadyRevision"] == "iris-predictor-00002"
    assert result["modelStatus"]["transitionStatus"] == "UpToDate"
    assert result["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 0}


def test_only_a_revision_that_keeps_its_traffic_and_has_no_crashed_replica_is_reported_as_starting_again():
    loading = RevisionState("iris-predictor-00002", "Loading", desired_replicas=1)
    assert as_reported(loading, keeps_traffic=True).ready
    assert not as_reported(loading, keeps_traffic=False).ready  # never ready yet, or failed since
    crashed = Termination("Error", 1, NOW, location="iris-predictor-00002-0")
    restarting = RevisionState("iris-predictor-00002", "Loading", last_termination=crashed)
    assert not as_reported(restarting, keeps_traffic=True).ready


def test_a_new_revision_that_fails_to_load_leaves_the_previous_one_serving():
    failure = Failure(
        "ModelLoadFailed", "Failed to load: ValueError: bad pickle", None, NOW, "iris-predictor-00002"
    )
    failed = RevisionState("iris-predictor-00002", "FailedToLoad", failed_replicas=1, failure=failure)
    predictor = ComponentState(
        failed, LOADED_1, (TrafficTarget("iris-predictor-00001", 100, False),), "iris-predictor-00001"
    )
    result = status(ServiceState({"predictor": predictor}, routed=True), generation=2)
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
        {"predictor": serving(LOADED_1), "transformer": ComponentState(transformer_loading)},
        routed=False,
    )
    result = status(state, transformer=True)
    assert conditions(result)["TransformerReady"][0] == "Unknown"
    assert conditions(result)["IngressReady"] == ("False", "IngressNotCreated")
    assert conditions(result)["LatestDeploymentReady"] == (
        "Unknown",
        "TransformerConfigurationReady not ready",
    )
    assert conditions(result)["RoutesReady"] == ("Unknown", "TransformerRouteReady not ready")
    ready = RevisionState("iris-transformer-00001", "Loaded", ready_replicas=1)
    state = ServiceState(
        {"predictor": serving(LOADED_1), "transformer": serving(ready)},
        routed=True,
    )
    result = status(state, transformer=True)
    assert conditions(result)["Ready"] == ("True", None)
    assert result["address"] == {"url": "http://iris-transformer.default.localhost:8080"}


def test_unchanged_conditions_keep_their_transition_time():
    first = status(ServiceState({"predictor": serving(LOADED_1)}, routed=True))
    second_revision = RevisionState("iris-predictor-00002", "Loaded", ready_replicas=1)
    second = status(
        ServiceState({"predictor": serving(second_revision)}, routed=True), previous=first, now=LATER
    )
    assert {c["lastTransitionTime"] for c in second["conditions"]} == {NOW}


def test_a_canary_split_shows_both_revisions_with_their_tags_and_urls():
    second = RevisionState("iris-predictor-00002", "Loaded", ready_replicas=1)
    traffic = (
        TrafficTarget("iris-predictor-00002", 10, True, "latest"),
        TrafficTarget("iris-predictor-00001", 90, False, "prev"),
    )
    state = ComponentState(second, second, traffic, "iris-predictor-00001", None)
    predictor = status(ServiceState({"predictor": state}, routed=True))["components"]["predictor"]
    assert predictor["traffic"] == [
        {
            "tag": "latest",
            "revisionName": "iris-predictor-00002",
            "latestRevision": True,
            "percent": 10,
            "url": "http://latest-iris-predictor.default.localhost:8080",
        },
        {
            "tag": "prev",
            "revisionName": "iris-predictor-00001",
            "latestRevision": False,
            "percent": 90,
            "url": "http://prev-iris-predictor.default.localhost:8080",
        },
    ]
    assert predictor["latestReadyRevision"] == "iris-predictor-00002"
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00001"


def test_a_named_predictor_shows_the_hosts_it_is_served_under_as_kserve_names_them():
    """`predictor.name: blue` is KServe's `<isvc>-blue-predictor`: the component's URL, its address, its
    gRPC URL and its tags' URLs name that host, and so does the service's address when the predictor
    is its entry; the service's own URL stays `<isvc>...`."""
    named = isvc()
    named["spec"]["predictor"]["name"] = "blue"
    second = RevisionState("iris-predictor-00002", "Loaded", ready_replicas=1)
    traffic = (
        TrafficTarget("iris-predictor-00002", 10, True, "latest"),
        TrafficTarget("iris-predictor-00001", 90, False, "prev"),
    )
    state = ServiceState(
        {"predictor": ComponentState(second, second, traffic, "iris-predictor-00001")}, routed=True
    )
    result = inference_service_status(named, state, domain="localhost", port=8080, now=NOW)
    assert result["url"] == "http://iris.default.localhost:8080"
    assert result["address"] == {"url": "http://iris-blue-predictor.default.localhost:8080"}
    predictor = result["components"]["predictor"]
    assert predictor["url"] == "http://iris-blue-predictor.default.localhost:8080"
    assert predictor["address"] == {"url": "http://iris-blue-predictor.default.localhost:8080"}
    assert predictor["grpcUrl"] == "grpc://iris-blue-predictor.default.localhost:8080"
    assert [t["url"] for t in predictor["traffic"]] == [
        "http://latest-iris-blue-predictor.default.localhost:8080",
        "http://prev-iris-blue-predictor.default.localhost:8080",
    ]


def test_a_stopped_service_says_so_in_every_condition_and_nothing_else():
    result = stopped_status(isvc(generation=3, transformer=True), now=NOW)
    assert conditions(result) == {
        "IngressReady": ("False", "Stopped"),
        "PredictorReady": ("False", "Stopped"),
        "Ready": ("False", "Stopped"),
        "Stopped": ("True", None),
        "TransformerReady": ("False", "Stopped"),
    }
    assert set(result) == {"observedGeneration", "conditions"} and result["observedGeneration"] == 3


def test_canaries_report_their_state_without_gating_ready():
    canaries = (CanaryState("v2", 20, True), CanaryState("v3", 10, False, "Failed to load: bad pickle"))
    result = status(ServiceState({"predictor": serving(LOADED_1)}, routed=True, canaries=canaries))
    assert result["canaryStatuses"] == [
        {"name": "v2", "ready": True, "trafficPercent": 20},
        {"name": "v3", "ready": False, "trafficPercent": 10},
    ]
    found = conditions(result)
    assert found["CanaryPredictorReady"] == ("False", "CanariesNotReady")
    assert found["Ready"] == ("True", None)
    message = next(c["message"] for c in result["conditions"] if c["type"] == "CanaryPredictorReady")
    assert message == "Canaries not ready: v3: Failed to load: bad pickle"
    ready = status(ServiceState({"predictor": serving(LOADED_1)}, canaries=canaries[:1]))
    assert conditions(ready)["CanaryPredictorReady"] == ("True", "AllCanariesReady")
    assert "canaryStatuses" not in status(ServiceState({"predictor": serving(LOADED_1)}))


def test_a_stopped_service_with_canaries_says_they_are_stopped():
    stopped = isvc()
    stopped["spec"]["canary"] = [{"trafficPercent": 20, "predictor": {"name": "v2"}}]
    assert conditions(stopped_status(stopped, now=NOW))["CanaryPredictorReady"] == ("False", "Stopped")


def test_a_revision_waiting_for_gpus_is_unschedulable_and_says_why():
    why = "needs 1 GPU (nvidia.com/gpu: 1), and this machine has no GPU"
    waiting = RevisionState("iris-predictor-00001", "Pending", desired_replicas=1, unschedulable=why)
    result = status(ServiceState({"predictor": ComponentState(waiting)}, running={"predictor": (waiting,)}))
    predictor = next(c for c in result["conditions"] if c["type"] == "PredictorReady")
    assert (predictor["status"], predictor["reason"]) == ("False", "Unschedulable")
    assert predictor["message"] == f'Revision "iris-predictor-00001" cannot start: {why}.'
    assert conditions(result)["Ready"] == ("False", "Unschedulable")
    assert result["modelStatus"]["states"]["targetModelState"] == "Pending"
    assert result["revisions"] == [
        {
            "name": "iris-predictor-00001",
            "component": "predictor",
            "actualReplicas": 0,
            "desiredReplicas": 1,
            "state": {"waiting": {"reason": "Unschedulable", "message": why}},
        }
    ]


def test_a_revision_reports_its_restarts_and_how_a_replica_last_ended_as_kubernetes_does():
    ended = Termination(
        "OOMKilled", 137, NOW, "it held 612Mi, over its memory limit of 512Mi", "iris-predictor-00001-0"
    )
    revision = RevisionState(
        "iris-predictor-00001", "Loaded", ready_replicas=1, restarts=2, last_termination=ended
    )
    result = status(ServiceState({"predictor": serving(revision)}, running={"predictor": (revision,)}))
    assert conditions(result)["PredictorReady"] == ("True", None)
    # The model serves again, and its status says the process exited.
    assert result["modelStatus"]["transitionStatus"] == "UpToDate"
    assert result["modelStatus"]["lastFailureInfo"] == {
        "reason": "RuntimeUnhealthy",
        "message": "replica iris-predictor-00001-0 exited with code 137 (OOMKilled): "
        "it held 612Mi, over its memory limit of 512Mi",
        "location": "iris-predictor-00001-0",
        "modelRevisionName": "iris-predictor-00001",
        "time": NOW,
        "exitCode": 137,
    }
    (entry,) = result["revisions"]
    assert entry["restartCount"] == 2
    assert entry["lastState"] == {
        "terminated": {
            "reason": "OOMKilled",
            "exitCode": 137,
            "finishedAt": NOW,
            "message": "it held 612Mi, over its memory limit of 512Mi",
        }
    }


def test_the_newest_exit_of_the_serving_or_the_loading_revision_is_the_last_failure():
    old_end = Termination("Error", 1, NOW, location="iris-predictor-00001-0")
    new_end = Termination("Error", 2, LATER, location="iris-predictor-00002-0")
    serving_revision = RevisionState(
        "iris-predictor-00001", "Loaded", ready_replicas=2, last_termination=old_end
    )
    loading = RevisionState("iris-predictor-00002", "Loading", last_termination=new_end)
    predictor = ComponentState(loading, serving_revision, (TrafficTarget(serving_revision.name, 100, False),))
    model = status(ServiceState({"predictor": predictor}, routed=True), generation=2)["modelStatus"]
    assert model["transitionStatus"] == "InProgress"
    assert model["states"] == {"activeModelState": "Loaded", "targetModelState": "Loading"}
    assert model["copies"] == {"failedCopies": 0, "totalCopies": 2}  # the serving revision's replicas
    info = model["lastFailureInfo"]
    assert (info["exitCode"], info["location"], info["modelRevisionName"], info["time"]) == (
        2,
        "iris-predictor-00002-0",
        "iris-predictor-00002",
        LATER,
    )


def test_a_service_with_no_revision_yet_has_no_copies():
    model = status(ServiceState())["modelStatus"]
    assert model == {
        "transitionStatus": "InProgress",
        "states": {"activeModelState": "", "targetModelState": "Pending"},
        "copies": {"failedCopies": 0, "totalCopies": 0},
    }


def test_fields_not_acted_on_are_a_warning_condition_that_does_not_gate_ready():
    unhonored = ("spec.predictor.nodeSelector (every replica runs on this machine)",)
    state = ServiceState({"predictor": serving(LOADED_1)}, routed=True, unhonored=unhonored)
    result = status(state)
    fields = next(c for c in result["conditions"] if c["type"] == "FieldsHonored")
    assert fields == {
        "type": "FieldsHonored",
        "status": "False",
        "severity": "Warning",
        "reason": "NotHonoredOnOneMachine",
        "message": "Accepted but not acted on: spec.predictor.nodeSelector (every replica runs on this machine).",
        "lastTransitionTime": NOW,
    }
    assert conditions(result)["Ready"] == ("True", None)
    assert "FieldsHonored" not in conditions(status(ServiceState({"predictor": serving(LOADED_1)})))


def test_a_revision_not_ready_says_why_where_the_platform_can_tell():
    why = "the program listens on 127.0.0.1:8080, not on its port 34567 (given in $PORT)"
    loading = RevisionState("iris-predictor-00001", "Loading", desired_replicas=1, not_ready=why)
    result = status(ServiceState({"predictor": ComponentState(loading)}, running={"predictor": (loading,)}))
    predictor = next(c for c in result["conditions"] if c["type"] == "PredictorReady")
    assert (predictor["status"], predictor["reason"]) == ("Unknown", "RevisionMissing")
    assert predictor["message"] == f'Revision "iris-predictor-00001" is not ready yet: {why}.'
