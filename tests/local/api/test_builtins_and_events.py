"""The built-in ClusterServingRuntimes in the control-plane API, and Kubernetes Events at `/api/v1`,
spoken to over HTTP on a real API process."""

from __future__ import annotations

import json

from modelplane.api import builtin_runtime_names

CSRS = "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"
EVENTS = "/api/v1/namespaces/{ns}/events"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def runtime(name: str, **spec) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": name},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "version": "1", "autoSelect": True, "priority": 1}],
            "containers": [
                {"name": "kserve-container", "image": "kserve/sklearnserver", "args": ["--model_name=x"]}
            ],
            **spec,
        },
    }


def listed(api) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in api.get(CSRS).json()["items"]}


def test_the_built_in_runtimes_are_listed_and_read_like_stored_ones(api):
    found = listed(api)
    assert set(builtin_runtime_names()) <= set(found)
    sklearn = found["kserve-sklearnserver"]
    assert sklearn["metadata"]["annotations"]["modelplane.io/built-in"] == "true"
    assert sklearn["metadata"]["resourceVersion"]
    assert sklearn["status"]["conditions"][0]["reason"] == "OwnCommand"
    got = api.get(f"{CSRS}/kserve-sklearnserver")
    assert got.status_code == 200
    assert got.json()["spec"] == sklearn["spec"]
    assert api.get(f"{CSRS}/kserve-nothing").status_code == 404


def test_applying_a_runtime_of_the_same_name_replaces_the_built_in_one_until_it_is_deleted(api):
    created = api.post(CSRS, json=runtime("kserve-xgbserver"))
    assert created.status_code == 201, created.text
    replaced = listed(api)["kserve-xgbserver"]
    assert "modelplane.io/built-in" not in (replaced["metadata"].get("annotations") or {})
    assert replaced["spec"]["containers"][0]["image"] == "kserve/sklearnserver"
    assert api.delete(f"{CSRS}/kserve-xgbserver").status_code == 200
    back = api.get(f"{CSRS}/kserve-xgbserver").json()
    assert back["metadata"]["annotations"]["modelplane.io/built-in"] == "true"


def test_a_built_in_runtime_cannot_be_deleted_but_can_be_patched_into_a_stored_one(api):
    refused = api.delete(f"{CSRS}/kserve-lgbserver")
    assert refused.status_code == 405
    assert refused.json()["message"] == (
        'clusterservingruntime "kserve-lgbserver" is built in: apply one of the same name to replace it '
        "(with spec.disabled: true to turn it off)"
    )
    patched = api.patch(f"{CSRS}/kserve-lgbserver", json={"spec": {"disabled": True}}, headers=MERGE_PATCH)
    assert patched.status_code == 201, patched.text
    stored = patched.json()
    assert stored["spec"]["disabled"] is True
    assert stored["metadata"]["uid"]
    assert "modelplane.io/built-in" not in stored["metadata"]["annotations"]
    assert listed(api)["kserve-lgbserver"]["spec"]["disabled"] is True
    api.delete(f"{CSRS}/kserve-lgbserver")

    operations = [{"op": "add", "path": "/spec/disabled", "value": True}]
    json_patched = api.patch(
        f"{CSRS}/kserve-xgbserver",
        content=json.dumps(operations),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert json_patched.status_code == 201, json_patched.text
    assert listed(api)["kserve-xgbserver"]["spec"]["disabled"] is True
    api.delete(f"{CSRS}/kserve-xgbserver")


def test_kubernetes_own_kinds_have_no_generation_and_no_status_subresource(api):
    """As in Kubernetes: ConfigMap, Secret, ServiceAccount and Event carry no metadata.generation and
    serve no `.../status` (discovery lists none); KServe's kinds have both."""
    core = "/api/v1/namespaces/core-kinds"
    objects = {
        "configmaps": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "g", "generation": 7}},
        "secrets": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "g"}},
        "serviceaccounts": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "g"}},
        "events": {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "g"}, "involvedObject": {}},
    }
    for plural, body in objects.items():
        created = api.post(f"{core}/{plural}", json=body)
        assert created.status_code == 201, created.text
        assert "generation" not in created.json()["metadata"], plural
        assert api.get(f"{core}/{plural}/g/status").status_code == 404
    listed = {r["name"] for r in api.get("/api/v1").json()["resources"]}
    assert listed == {*objects, "services"}  # services: none are here, listed empty (api/services.py)
    assert "inferenceservices/status" in {
        r["name"] for r in api.get("/apis/serving.kserve.io/v1beta1").json()["resources"]
    }
    core_paths = api.get("/openapi/v3/api/v1").json()["paths"]
    assert not [path for path in core_paths if path.endswith("/status")]
    for plural in objects:
        api.delete(f"{core}/{plural}/g")


def test_events_are_served_in_the_core_group(api):
    assert api.get("/api").json() == {"kind": "APIVersions", "versions": ["v1"]}
    resources = api.get("/api/v1").json()
    assert resources["groupVersion"] == "v1"
    assert "events" in {r["name"] for r in resources["resources"]}
    assert "" not in {g["name"] for g in api.get("/apis").json()["groups"]}
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "iris.1"},
        "involvedObject": {"kind": "InferenceService", "name": "iris", "namespace": "default"},
        "type": "Warning",
        "reason": "ImageNotServed",
        "message": "image x is not one modelplane knows",
        "count": 1,
    }
    created = api.post(EVENTS.format(ns="default"), json=event)
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["namespace"] == "default"
    assert [e["reason"] for e in api.get("/api/v1/events").json()["items"]] == ["ImageNotServed"]
    bad = api.post(EVENTS.format(ns="default"), json={**event, "metadata": {"name": "x"}, "count": "many"})
    assert bad.status_code == 422
    assert bad.json()["message"].startswith('Event "x" is invalid')
