"""A Knative component's revisions from its Knative Service and pods: while a new revision loads, the
copies are those of the revision that serves, and a pod's problem names the pod."""

from __future__ import annotations

from modelplane.control import ServiceState, inference_service_status
from modelplane.kube.operator.workload_states import knative_component


def pod(name: str, ready: bool, containers: list[dict] | None = None) -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": "2026-01-02T03:04:05Z"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": containers or [],
        },
    }


def ksvc(latest: str, ready: str) -> dict:
    return {
        "status": {
            "latestCreatedRevisionName": latest,
            "latestReadyRevisionName": ready,
            "conditions": [{"type": "ConfigurationsReady", "status": "Unknown"}],
            "traffic": [{"revisionName": ready, "percent": 100, "latestRevision": False}],
        }
    }


def model_status(component) -> dict:
    isvc = {"metadata": {"name": "iris", "namespace": "default"}, "spec": {"predictor": {}}}
    state = ServiceState({"predictor": component}, routed=True)
    return inference_service_status(isvc, state, domain="example.com", port=80, now="t")["modelStatus"]


def test_while_a_new_revision_loads_the_copies_are_the_serving_revisions():
    serving_pods = [pod("iris-predictor-00001-a", True), pod("iris-predictor-00001-b", True)]
    component = knative_component(
        ksvc("iris-predictor-00002", "iris-predictor-00001"),
        [pod("iris-predictor-00002-a", False, [{"name": "kserve-container", "state": {"running": {}}}])],
        {},
        serving_pods=serving_pods,
    )
    assert component.serving.name == "iris-predictor-00001"
    status = model_status(component)
    assert status["copies"] == {"failedCopies": 0, "totalCopies": 2}
    assert status["states"] == {"activeModelState": "Loaded", "targetModelState": "Loading"}


def test_a_crash_looping_pod_is_the_failure_and_its_location():
    crashing = {
        "name": "kserve-container",
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {
            "terminated": {"reason": "Error", "exitCode": 3, "message": "bad model", "finishedAt": "t1"}
        },
    }
    component = knative_component(
        ksvc("iris-predictor-00002", "iris-predictor-00001"),
        [pod("iris-predictor-00002-a", False, [crashing])],
        {},
        serving_pods=[pod("iris-predictor-00001-a", True)],
    )
    status = model_status(component)
    assert status["transitionStatus"] == "BlockedByFailedLoad"
    assert status["copies"] == {"failedCopies": 1, "totalCopies": 1}
    info = status["lastFailureInfo"]
    assert (info["location"], info["exitCode"], info["time"], info["modelRevisionName"]) == (
        "iris-predictor-00002-a",
        3,
        "t1",
        "iris-predictor-00002",
    )
