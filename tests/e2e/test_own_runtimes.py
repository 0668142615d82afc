"""End to end: ServingRuntimes and ClusterServingRuntimes a user writes, on `modelplane up`: which one
an InferenceService gets, what its replica runs (the runtime's container rendered and merged with the
model's), and the status when none can serve it, as KServe's controller would have them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

ECHO = Path(__file__).with_name("env_echo.py")


def runtime(kind: str, name: str, formats: list[dict], container_name: str = "kserve-container", **spec):
    container = {
        "name": container_name,
        "image": "example/echo:v1",
        "command": ["python", str(ECHO)],
        "args": [f"--runtime={name}", "--model_name={{.Name}}", "--class={{.Labels.modelClass}}"],
        "env": [{"name": "FROM_RUNTIME", "value": name}, {"name": "SHARED", "value": "runtime"}],
    }
    metadata = {"name": name} if kind == "ClusterServingRuntime" else {"name": name, "namespace": "default"}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {"supportedModelFormats": formats, "containers": [container], **spec},
    }


def service(name: str, model_format: str, **model) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": {"modelFormat": {"name": model_format}, **model}}},
    }


RUNTIMES = [
    # Cluster runtimes of higher priority than the namespaced one, which wins all the same.
    runtime("ClusterServingRuntime", "echo-cluster", [{"name": "echo", "autoSelect": True, "priority": 9}]),
    runtime("ServingRuntime", "echo-team", [{"name": "echo", "autoSelect": True, "priority": 1}]),
    runtime("ClusterServingRuntime", "ranked-low", [{"name": "ranked", "autoSelect": True, "priority": 2}]),
    runtime("ClusterServingRuntime", "ranked-high", [{"name": "ranked", "autoSelect": True, "priority": 7}]),
    runtime(
        "ServingRuntime",
        "ranked-off",
        [{"name": "ranked", "autoSelect": True, "priority": 9}],
        disabled=True,
    ),
    runtime("ServingRuntime", "on-request", [{"name": "asked", "autoSelect": False}]),
    runtime("ServingRuntime", "unnamed", [{"name": "unnamed", "autoSelect": True}], container_name="server"),
]
SERVICES = [
    service("team-first", "echo", args=["--extra"], env=[{"name": "SHARED", "value": "{{.Name}}"}]),
    service("ranked", "ranked"),
    service("implicit", "asked"),
    service("explicit", "asked", runtime="on-request"),
    service("wrong-format", "echo", runtime="on-request"),
    service("switched-off", "ranked", runtime="ranked-off"),
    service("unnamed", "unnamed"),
]
SERVED = ["team-first", "ranked", "explicit"]


def isvc(platform: PlatformProcess, name: str) -> dict:
    url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{name}"
    return httpx.get(url, timeout=30).json()


def condition(resource: dict, kind: str) -> dict:
    conditions = (resource.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def echoed(platform: PlatformProcess, name: str) -> dict:
    response = platform.request("GET", f"{name}.default.localhost", "/")
    assert response.status_code == 200, response.text
    return response.json()


def failure(platform: PlatformProcess, name: str) -> dict:
    def failed() -> dict | None:
        status = isvc(platform, name).get("status") or {}
        return status if status.get("modelStatus", {}).get("transitionStatus") == "InvalidSpec" else None

    return wait_until(failed, f"{name} to fail", platform)["modelStatus"]["lastFailureInfo"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    home = tmp_path_factory.mktemp("mp-own-runtimes")
    with running_platform(home) as running:
        running.apply(*RUNTIMES)
        running.apply(*SERVICES)
        running.wait_ready(*SERVED, timeout="240s")
        yield running


def test_a_namespaced_runtime_wins_over_any_cluster_runtime(platform):
    assert isvc(platform, "team-first")["status"]["servingRuntimeName"] == "echo-team"
    assert echoed(platform, "team-first")["argv"][0] == "--runtime=echo-team"


def test_the_highest_priority_wins_and_a_disabled_runtime_is_never_chosen(platform):
    assert isvc(platform, "ranked")["status"]["clusterServingRuntimeName"] == "ranked-high"


def test_the_runtimes_args_and_env_are_rendered_and_merged_with_the_models(platform):
    echo = echoed(platform, "team-first")
    # The runtime's args, then the model's; a missing label renders as nothing, as in KServe.
    assert echo["argv"] == ["--runtime=echo-team", "--model_name=team-first", "--class=", "--extra"]
    assert echo["env"]["FROM_RUNTIME"] == "echo-team"
    assert echo["env"]["SHARED"] == "team-first"  # the model's, rendered too


def test_a_format_not_auto_selected_is_served_only_by_name(platform):
    assert isvc(platform, "explicit")["status"]["servingRuntimeName"] == "on-request"
    implicit = failure(platform, "implicit")
    assert (implicit["reason"], implicit["message"]) == (
        "NoSupportingRuntime",
        "No runtime found to support specified framework/version",
    )


def test_a_named_runtime_that_cannot_serve_the_model_says_why(platform):
    wrong = failure(platform, "wrong-format")
    assert (wrong["reason"], wrong["message"]) == (
        "NoSupportingRuntime",
        "Specified runtime does not support specified framework/version",
    )
    off = failure(platform, "switched-off")
    assert (off["reason"], off["message"]) == ("RuntimeDisabled", "Specified runtime is disabled")


def test_a_runtime_without_a_kserve_container_is_an_invalid_predictor_spec(platform):
    unnamed = failure(platform, "unnamed")
    assert (unnamed["reason"], unnamed["message"]) == (
        "InvalidPredictorSpec",
        "failed to find kserve-container in ServingRuntime containers",
    )
    assert condition(isvc(platform, "unnamed"), "PredictorReady")["reason"] == "InvalidPredictorSpec"


def test_a_deleted_runtime_gives_way_to_the_next_one(platform):
    platform.cli("delete", "clusterservingruntime", "ranked-high")

    def moved() -> bool:
        resource = isvc(platform, "ranked")
        return (resource.get("status") or {}).get("clusterServingRuntimeName") == "ranked-low" and (
            condition(resource, "Ready").get("status") == "True"
        )

    wait_until(moved, "ranked to move to ranked-low", platform)
    assert echoed(platform, "ranked")["argv"][0] == "--runtime=ranked-low"
