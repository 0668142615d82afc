"""The control-plane API, served by a real process on loopback and spoken to with httpx."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import httpx
import pytest

from modelplane.local.api.process import ApiProcess
from modelplane.local.api.server import ApiServer, bind
from modelplane.local.api.store import Store, store_path

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices"
CSRS = "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"


def isvc(name: str, namespace: str | None = "default", storage_uri: str = "file:///m/1", **labels) -> dict:
    metadata: dict = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": storage_uri}}},
    }


def path(name: str = "", ns: str = "default") -> str:
    base = ISVCS.format(ns=ns)
    return f"{base}/{name}" if name else base


def assert_status(response: httpx.Response, code: int, reason: str) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["reason"] == reason
    assert body["code"] == code
    return body


def test_health_and_discovery(api):
    assert api.get("/healthz").text == "ok"
    groups = api.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    by_group = {group["name"]: group for group in groups["groups"]}
    assert by_group["serving.kserve.io"]["preferredVersion"]["version"] == "v1beta1"
    assert by_group["authorization.k8s.io"]["preferredVersion"]["groupVersion"] == "authorization.k8s.io/v1"
    reviews = api.get("/apis/authorization.k8s.io/v1").json()["resources"]
    assert {(r["name"], tuple(r["verbs"])) for r in reviews} == {
        ("selfsubjectaccessreviews", ("create",)),
        ("selfsubjectrulesreviews", ("create",)),
    }
    resources = api.get("/apis/serving.kserve.io/v1alpha1").json()["resources"]
    by_name = {r["name"]: r for r in resources}
    assert by_name["clusterservingruntimes"]["namespaced"] is False
    assert "watch" in by_name["trainedmodels"]["verbs"]
    assert "inferencegraphs/status" in by_name
    assert api.get("/apis/serving.kserve.io/v9").status_code == 404


def test_create_get_list(api):
    created = api.post(path(), json=isvc("iris", namespace=None))
    assert created.status_code == 201
    body = created.json()
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["generation"] == 1
    assert api.get(path("iris")).json() == body

    listed = api.get(path()).json()
    assert listed["kind"] == "InferenceServiceList"
    assert listed["apiVersion"] == "serving.kserve.io/v1beta1"
    assert int(listed["metadata"]["resourceVersion"]) >= int(body["metadata"]["resourceVersion"])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["iris"]
    everywhere = api.get("/apis/serving.kserve.io/v1beta1/inferenceservices").json()
    assert "iris" in [i["metadata"]["name"] for i in everywhere["items"]]


def test_create_from_a_yaml_body(api):
    text = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: from-yaml\n"
        "spec:\n  predictor:\n    sklearn:\n      storageUri: file:///m/1\n"
    )
    created = api.post(path(), content=text, headers={"content-type": "application/yaml"})
    assert created.status_code == 201
    assert created.json()["spec"]["predictor"]["model"]["storageUri"] == "file:///m/1"
    broken = api.post(path(), content="kind: [", headers={"content-type": "application/yaml"})
    assert assert_status(broken, 400, "BadRequest")["message"].startswith("request body:")


def test_a_body_of_kubernetes_own_kinds_takes_its_apiversion_and_kind_from_the_url(api):
    """As the API server decodes one: the kubernetes Python client sends a `V1Secret(metadata=...,
    string_data=...)` made without them so. A custom resource must name its kind, as in Kubernetes."""
    secrets = "/api/v1/namespaces/default/secrets"
    created = api.post(secrets, json={"metadata": {"name": "typeless"}, "stringData": {"key": "v"}})
    assert created.status_code == 201, created.text
    assert (created.json()["apiVersion"], created.json()["kind"]) == ("v1", "Secret")
    replaced = api.put(f"{secrets}/typeless", json={"apiVersion": "v1", "metadata": {"name": "typeless"}})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["kind"] == "Secret"
    wrong = api.post(secrets, json={"kind": "ConfigMap", "metadata": {"name": "other"}})
    assert "(v1, ConfigMap)" in assert_status(wrong, 400, "BadRequest")["message"]
    custom = {k: v for k, v in isvc("kindless").items() if k not in ("apiVersion", "kind")}
    assert_status(api.post(path(), json=custom), 400, "BadRequest")


def test_errors_are_kubernetes_statuses(api):
    api.post(path(), json=isvc("dup"))
    assert_status(api.post(path(), json=isvc("dup")), 409, "AlreadyExists")
    missing = assert_status(api.get(path("nope")), 404, "NotFound")
    assert missing["message"] == 'inferenceservices.serving.kserve.io "nope" not found'
    assert missing["details"] == {"name": "nope", "group": "serving.kserve.io", "kind": "inferenceservices"}
    assert_status(api.post(path(), json=isvc("Bad_Name")), 422, "Invalid")
    assert_status(api.post(path(), json=isvc("x", namespace="other")), 400, "BadRequest")
    not_json = {"content-type": "application/json"}
    assert_status(api.post(path(), content=b"{not json", headers=not_json), 400, "BadRequest")
    wrong_kind = isvc("x")
    wrong_kind["kind"] = "InferenceGraph"
    assert_status(api.post(path(), json=wrong_kind), 400, "BadRequest")
    assert_status(api.get("/apis/serving.kserve.io/v1beta1/namespaces/default/pods"), 404, "NotFound")
    assert_status(api.put(path(), json=isvc("x")), 405, "MethodNotAllowed")


def test_an_invalid_status_names_the_kind_and_others_the_resource(api):
    """As Kubernetes' NewInvalid (details.kind `InferenceService`, for kubectl's `The InferenceService
    "x" is invalid`) and NewNotFound / NewAlreadyExists (the resource, `inferenceservices`)."""
    below_zero = isvc("below-zero")
    below_zero["spec"]["predictor"]["minReplicas"] = -1
    admission = assert_status(api.post(path(), json=below_zero), 422, "Invalid")["details"]
    bad_name = assert_status(api.post(path(), json=isvc("Bad_Name")), 422, "Invalid")["details"]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"bad key": "1"}},
    }
    bad_label = assert_status(
        api.post("/api/v1/namespaces/default/configmaps", json=configmap), 422, "Invalid"
    )
    assert [(d["group"], d["kind"]) for d in (admission, bad_name, bad_label["details"])] == [
        ("serving.kserve.io", "InferenceService"),
        ("serving.kserve.io", "InferenceService"),
        ("", "ConfigMap"),
    ]
    api.post(path(), json=isvc("twice"))
    taken = assert_status(api.post(path(), json=isvc("twice")), 409, "AlreadyExists")["details"]
    assert (taken["group"], taken["kind"]) == ("serving.kserve.io", "inferenceservices")


def test_replace_with_a_stale_resource_version_is_a_conflict(api):
    first = api.post(path(), json=isvc("replaced")).json()
    update = isvc("replaced", storage_uri="file:///m/2")
    update["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    second = api.put(path("replaced"), json=update)
    assert second.status_code == 200
    assert second.json()["metadata"]["generation"] == 2

    stale = isvc("replaced", storage_uri="file:///m/3")
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    assert_status(api.put(path("replaced"), json=stale), 409, "Conflict")
    assert_status(api.put(path("replaced"), json=isvc("other-name")), 400, "BadRequest")
    assert_status(api.put(path("absent"), json=isvc("absent")), 404, "NotFound")


def test_a_write_that_names_another_object_is_refused_as_kubernetes_refuses_it(api):
    """A patch to another name or namespace is a 400 (the patch handler's checkName), a patch to another
    uid a 422 (immutable), and a replace naming another uid a 409 (Kubernetes takes it as a precondition)."""
    uid = api.post(path(), json=isvc("identity")).json()["metadata"]["uid"]
    merge = {"content-type": "application/merge-patch+json"}

    def patched(metadata: dict) -> httpx.Response:
        return api.patch(path("identity"), content=json.dumps({"metadata": metadata}), headers=merge)

    renamed = assert_status(patched({"name": "other"}), 400, "BadRequest")
    assert (
        renamed["message"] == "the name of the object (other) does not match the name on the URL (identity)"
    )
    moved = assert_status(patched({"namespace": "elsewhere"}), 400, "BadRequest")
    assert moved["message"] == (
        "the namespace of the object (elsewhere) does not match the namespace on the request (default)"
    )
    zero = "00000000-0000-0000-0000-000000000000"
    new_uid = assert_status(patched({"uid": zero}), 422, "Invalid")
    assert new_uid["message"] == (
        f'InferenceService.serving.kserve.io "identity" is invalid: metadata.uid: Invalid value: "{zero}": '
        "field is immutable"
    )
    assert new_uid["details"]["causes"][0]["field"] == "metadata.uid"
    assert patched({"uid": uid}).status_code == 200

    replacement = isvc("identity", storage_uri="file:///m/2")
    replacement["metadata"]["uid"] = zero
    replaced = assert_status(api.put(path("identity"), json=replacement), 409, "Conflict")
    assert (
        replaced["message"] == f"Precondition failed: UID in precondition: {zero}, UID in object meta: {uid}"
    )
    replacement["metadata"]["uid"] = uid
    assert api.put(path("identity"), json=replacement).status_code == 200
    assert api.get(path("identity")).json()["metadata"]["uid"] == uid


def test_merge_patch(api):
    api.post(path(), json=isvc("patched", team="a"))
    patch = {
        "metadata": {"labels": {"team": None, "tier": "gold"}},
        "spec": {"predictor": {"minReplicas": 2}},
    }
    response = api.patch(
        path("patched"), content=json.dumps(patch), headers={"content-type": "application/merge-patch+json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["labels"] == {"tier": "gold"}
    assert body["spec"]["predictor"]["minReplicas"] == 2
    assert body["spec"]["predictor"]["model"]["storageUri"] == "file:///m/1"
    assert body["metadata"]["generation"] == 2

    broken = api.patch(
        path("patched"),
        content=json.dumps({"metadata": "x"}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert_status(broken, 422, "Invalid")

    # A strategic merge patch is for Kubernetes' own kinds, as Kubernetes takes it.
    refused = api.patch(
        path("patched"), content=b"{}", headers={"content-type": "application/strategic-merge-patch+json"}
    )
    assert_status(refused, 415, "UnsupportedMediaType")


JSON_PATCH = {"content-type": "application/json-patch+json"}


def json_patch(api, name: str, *operations: dict, query: str = "") -> httpx.Response:
    return api.patch(path(name) + query, content=json.dumps(list(operations)), headers=JSON_PATCH)


def test_json_patch_applies_its_operations_in_order(api):
    api.post(path(), json=isvc("json-patched", team="a"))
    response = json_patch(
        api,
        "json-patched",
        {"op": "test", "path": "/metadata/labels/team", "value": "a"},
        {"op": "replace", "path": "/metadata/labels/team", "value": "b"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}},
        {"op": "copy", "from": "/metadata/annotations/a~1b", "path": "/metadata/labels/copied"},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 20},
        {"op": "move", "from": "/metadata/labels/copied", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/metadata/annotations/a~1b"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"]["labels"] == {"team": "b", "moved": "1"}
    assert "a/b" not in body["metadata"].get("annotations", {})
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert body["spec"]["predictor"]["model"]["storageUri"] == "file:///m/1"
    assert body["metadata"]["generation"] == 2
    assert api.get(path("json-patched")).json()["spec"] == body["spec"]


def test_a_json_patch_that_does_not_apply_changes_nothing(api):
    api.post(path(), json=isvc("json-refused", team="a"))
    before = api.get(path("json-refused")).json()
    failing = [
        {"op": "test", "path": "/metadata/labels/team", "value": "z"},
        {"op": "remove", "path": "/spec/predictor/absent"},
        {"op": "replace", "path": "/spec/predictor/absent", "value": 1},
        {"op": "add", "path": "/spec/predictor/absent/deeper", "value": 1},
        {"op": "move", "from": "/spec", "path": "/spec/predictor/spec"},
    ]
    for operation in failing:
        first = {"op": "replace", "path": "/metadata/labels/team", "value": "changed"}
        refused = assert_status(json_patch(api, "json-refused", first, operation), 422, "Invalid")
        assert refused["message"].startswith(
            f"the JSON patch does not apply: operation 1 ({operation['op']} {operation['path']}): "
        )
    assert api.get(path("json-refused")).json() == before  # the first operation of each was not kept

    malformed = [
        b"{}",
        b"[1]",
        b'[{"op": "rename", "path": "/a"}]',
        b'[{"op": "add", "path": "a", "value": 1}]',
        b'[{"op": "add", "path": "/a"}]',
        b'[{"op": "copy", "path": "/a"}]',
        b'[{"op": "remove", "path": "/a~2"}]',
        b"not json",
    ]
    for body in malformed:
        response = api.patch(path("json-refused"), content=body, headers=JSON_PATCH)
        assert_status(response, 400, "BadRequest")


def test_a_json_patch_warns_of_the_fields_it_adds_that_the_schema_does_not_declare(api):
    api.post(path(), json=isvc("json-warned"))
    added = json_patch(api, "json-warned", {"op": "add", "path": "/spec/predictor/storageUrl", "value": "x"})
    assert added.status_code == 200
    assert "spec.predictor.storageUrl" in added.headers["warning"]
    again = json_patch(api, "json-warned", {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}})
    assert "warning" not in again.headers  # the field added before is not its doing
    strict = json_patch(
        api,
        "json-warned",
        {"op": "add", "path": "/spec/predictor/minReplica", "value": 1},
        query="?fieldValidation=Strict",
    )
    assert_status(strict, 400, "BadRequest")
    assert "minReplica" not in api.get(path("json-warned")).json()["spec"]["predictor"]


def test_status_subresource(api):
    api.post(path(), json=isvc("with-status"))
    merge = {"content-type": "application/merge-patch+json"}
    status = {"status": {"url": "http://with-status.default.localhost", "observedGeneration": 1}}
    patched = api.patch(path("with-status") + "/status", content=json.dumps(status), headers=merge).json()
    assert patched["status"]["url"] == "http://with-status.default.localhost"
    assert patched["metadata"]["generation"] == 1

    # The main resource ignores status; the status subresource ignores everything else.
    forged = api.patch(path("with-status"), content=json.dumps({"status": {"url": "forged"}}), headers=merge)
    assert forged.json()["status"]["url"] == "http://with-status.default.localhost"
    whole = api.get(path("with-status")).json()
    whole["spec"] = {"forged": True}
    whole["status"]["url"] = "http://new"
    replaced = api.put(path("with-status") + "/status", json=whole).json()
    assert replaced["status"]["url"] == "http://new"
    assert replaced["spec"]["predictor"]["model"]["storageUri"] == "file:///m/1"
    assert api.get(path("with-status") + "/status").json()["status"]["url"] == "http://new"


def test_delete(api):
    created = api.post(path(), json=isvc("deleted")).json()
    response = api.delete(path("deleted"))
    assert response.status_code == 200
    assert response.json()["metadata"]["uid"] == created["metadata"]["uid"]
    assert_status(api.get(path("deleted")), 404, "NotFound")
    assert_status(api.delete(path("deleted")), 404, "NotFound")


@pytest.mark.parametrize("plural", ["secrets", "configmaps", "events", "serviceaccounts"])
def test_a_delete_of_kubernetes_own_kinds_answers_as_their_registries_do(api, plural):
    """A Secret, ConfigMap or Event: a `Status` naming it (what a client of Kubernetes reads in the
    answer: `status: Success`, `details.uid`); a ServiceAccount, like a custom resource, the object."""
    core = "/api/v1/namespaces/default"
    kind = {
        "secrets": "Secret",
        "configmaps": "ConfigMap",
        "events": "Event",
        "serviceaccounts": "ServiceAccount",
    }
    body = {"apiVersion": "v1", "kind": kind[plural], "metadata": {"name": "gone"}}
    if plural == "events":
        body["involvedObject"] = {"kind": "InferenceService", "name": "x", "namespace": "default"}
    uid = api.post(f"{core}/{plural}", json=body).json()["metadata"]["uid"]
    dry = api.delete(f"{core}/{plural}/gone", params={"dryRun": "All"})
    answer = api.delete(f"{core}/{plural}/gone")
    assert answer.status_code == 200
    if plural == "serviceaccounts":
        assert answer.json()["metadata"]["uid"] == uid
        return
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    assert answer.json() == dry.json() == status | {"details": {"name": "gone", "kind": plural, "uid": uid}}


def test_cluster_scoped_kind(api):
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
    }
    created = api.post(CSRS, json=runtime)
    assert created.status_code == 201
    assert "namespace" not in created.json()["metadata"]
    assert api.get(f"{CSRS}/rt").status_code == 200
    namespaced_path = "/apis/serving.kserve.io/v1alpha1/namespaces/default/clusterservingruntimes/rt"
    assert_status(api.get(namespaced_path), 404, "NotFound")


def test_label_and_field_selectors(api):
    api.post(path(ns="selectors"), json=isvc("a", namespace="selectors", app="x"))
    api.post(path(ns="selectors"), json=isvc("b", namespace="selectors", app="y"))

    def names(**params):
        return [i["metadata"]["name"] for i in api.get(path(ns="selectors"), params=params).json()["items"]]

    api.post(path(ns="selectors"), json=isvc("c", namespace="selectors", rank="7"))

    assert names(labelSelector="app=x") == ["a"]
    assert names(labelSelector="app!=x") == ["b", "c"]  # objects without the label match too
    assert names(labelSelector="app in (x)") == ["a"]
    assert names(labelSelector="app in (x, y),!rank") == ["a", "b"]
    assert names(labelSelector="app notin (x)") == ["b", "c"]
    assert names(labelSelector="rank>5") == ["c"]
    assert names(labelSelector="rank<5") == []
    assert names(fieldSelector="metadata.name=b") == ["b"]
    for selector in ("app=bad value", "a b", "app in x", "app in ()", "Bad!key"):
        refused = api.get(path(ns="selectors"), params={"labelSelector": selector})
        assert "unable to parse requirement" in assert_status(refused, 400, "BadRequest")["message"]
    assert_status(api.get(path(ns="selectors"), params={"fieldSelector": "spec.x=1"}), 400, "BadRequest")


@pytest.mark.parametrize(
    ("labels", "code", "message"),
    [
        (
            ["a"],
            400,
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map",
        ),
        (
            {"a": 5},
            400,
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
        ),
        ({"a": "b c"}, 422, 'metadata.labels: Invalid value: "b c"'),
        ({"bad key!": "v"}, 422, 'metadata.labels: Invalid value: "bad key!"'),
        ({"Example.com/x": "v"}, 422, "prefix must be a lowercase RFC 1123 subdomain"),
        ({"a": "v" * 64}, 422, "at most 63 characters"),
    ],
)
def test_labels_are_checked_as_kubernetes_checks_them(api, labels, code, message):
    resource = isvc("labelled", namespace="labels")
    resource["metadata"]["labels"] = labels
    body = assert_status(
        api.post(path(ns="labels"), json=resource), code, "BadRequest" if code == 400 else "Invalid"
    )
    assert message in body["message"]
    # An update is checked too, and a list by labels still works after a refusal.
    assert api.post(path(ns="labels"), json=isvc("fine", namespace="labels", app="x")).status_code in (
        201,
        409,
    )
    current = api.get(path("fine", ns="labels")).json()
    current["metadata"]["labels"] = labels
    assert api.put(path("fine", ns="labels"), json=current).status_code == code
    assert api.get(path(ns="labels"), params={"labelSelector": "app=x"}).status_code == 200


def test_annotations_are_checked_as_kubernetes_checks_them(api):
    resource = isvc("annotated", namespace="labels")
    resource["metadata"]["annotations"] = {"bad key!": "v"}
    body = assert_status(api.post(path(ns="labels"), json=resource), 422, "Invalid")
    assert 'metadata.annotations: Invalid value: "bad key!"' in body["message"]
    resource["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    body = assert_status(api.post(path(ns="labels"), json=resource), 422, "Invalid")
    assert "metadata.annotations: Too long" in body["message"]


def watch_lines(api, url: str, count: int, **params) -> list[dict]:
    events = []
    with api.stream("GET", url, params={"watch": "true", "timeoutSeconds": "60", **params}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                events.append(json.loads(line))
            if len(events) == count:
                break
    return events


def test_watch_replays_and_resumes(api):
    ns = "watched"
    created = api.post(path(ns=ns), json=isvc("w", namespace=ns)).json()
    api.patch(
        path("w", ns=ns) + "/status",
        content=json.dumps({"status": {"url": "http://w"}}),
        headers={"content-type": "application/merge-patch+json"},
    )
    api.delete(path("w", ns=ns))

    resumed = watch_lines(api, path(ns=ns), 2, resourceVersion=created["metadata"]["resourceVersion"])
    assert [e["type"] for e in resumed] == ["MODIFIED", "DELETED"]
    assert resumed[0]["object"]["status"] == {"url": "http://w"}

    api.post(path(ns=ns), json=isvc("current", namespace=ns))
    replayed = watch_lines(api, path(ns=ns), 1)
    assert replayed[0]["type"] == "ADDED"
    assert replayed[0]["object"]["metadata"]["name"] == "current"


def test_a_selector_watch_sees_objects_enter_and_leave_the_selection(api):
    """As Kubernetes' watch cache tells it: ADDED on entering the selection, DELETED (the object as it
    was, at the version of the change) on leaving it, MODIFIED while it stays, nothing outside it."""
    configmaps = "/api/v1/namespaces/selected/configmaps"
    merge = {"content-type": "application/merge-patch+json"}

    def label(value: str | None) -> dict:
        patch = {"metadata": {"labels": {"app": value}}}
        return api.patch(f"{configmaps}/c", content=json.dumps(patch), headers=merge).json()

    created = api.post(configmaps, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    start = created.json()["metadata"]["resourceVersion"]  # resumed from the history
    label("sel")
    api.patch(f"{configmaps}/c", content=json.dumps({"data": {"k": "v"}}), headers=merge)
    left = label("other")
    label("sel")
    label(None)
    events = watch_lines(
        api, configmaps, 5, resourceVersion=start, labelSelector="app=sel", timeoutSeconds="5"
    )

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
    assert [e["object"]["metadata"].get("labels") for e in events] == [{"app": "sel"}] * 5
    assert events[2]["object"]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]
    assert events[2]["object"]["data"] == {"k": "v"}


STREAMING_LIST = {
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}


def test_a_streaming_list_ends_its_initial_events_with_a_bookmark(api):
    """client-go's WatchListClient: the objects there are, the bookmark it waits for, then the changes."""
    ns = "streamed"
    api.post(path(ns=ns), json=isvc("a", namespace=ns, team="x"))
    api.post(path(ns=ns), json=isvc("b", namespace=ns, team="y"))
    version = api.get(path(ns=ns)).json()["metadata"]["resourceVersion"]
    with httpx.Client(base_url=str(api.base_url), timeout=30) as watcher:
        params = {"watch": "true", "labelSelector": "team=x", **STREAMING_LIST}
        with watcher.stream("GET", path(ns=ns), params=params) as response:
            lines = (json.loads(line) for line in response.iter_lines() if line)
            initial = [next(lines), next(lines)]
            api.delete(path("a", ns=ns))
            change = next(lines)

    assert [e["type"] for e in initial] == ["ADDED", "BOOKMARK"]
    assert initial[0]["object"]["metadata"]["name"] == "a"
    assert initial[1]["object"]["kind"] == "InferenceService"
    assert initial[1]["object"]["metadata"] == {
        "resourceVersion": version,
        "annotations": {"k8s.io/initial-events-end": "true"},
    }
    assert (change["type"], change["object"]["metadata"]["name"]) == ("DELETED", "a")


def test_a_streaming_list_without_initial_events_starts_now(api):
    ns = "streamed-later"
    api.post(path(ns=ns), json=isvc("before", namespace=ns))
    with httpx.Client(base_url=str(api.base_url), timeout=30) as watcher:
        params = {"watch": "true", **STREAMING_LIST, "sendInitialEvents": "false"}
        with watcher.stream("GET", path(ns=ns), params=params) as response:
            api.post(path(ns=ns), json=isvc("after", namespace=ns))
            first = json.loads(next(line for line in response.iter_lines() if line))
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "after")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"watch": "true", "sendInitialEvents": "true"},
            "sendInitialEvents requires setting resourceVersionMatch",
        ),
        (
            {"watch": "true", "resourceVersionMatch": "NotOlderThan"},
            "forbidden for watch unless sendInitialEvents",
        ),
        ({"sendInitialEvents": "true"}, "sendInitialEvents is forbidden for list"),
    ],
)
def test_streaming_list_options_are_checked_as_kubernetes_checks_them(api, params, message):
    refusal = assert_status(api.get(path(ns="streamed"), params=params), 422, "Invalid")
    assert refusal["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert message in refusal["message"]


def test_watch_sees_writes_made_while_it_is_open(api):
    ns = "live"
    start = api.get(path(ns=ns)).json()["metadata"]["resourceVersion"]
    with httpx.Client(base_url=str(api.base_url), timeout=30) as watcher:
        params = {"watch": "true", "resourceVersion": start, "fieldSelector": "metadata.name=seen"}
        with watcher.stream("GET", path(ns=ns), params=params) as response:
            api.post(path(ns=ns), json=isvc("unseen", namespace=ns))
            api.post(path(ns=ns), json=isvc("seen", namespace=ns))
            first = json.loads(next(response.iter_lines()))
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["name"] == "seen"


def test_watch_timeout_ends_the_stream(api):
    with api.stream("GET", path(ns="quiet"), params={"watch": "1", "timeoutSeconds": "0.2"}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines == []


def test_apply_is_all_or_nothing(api):
    apply = "/modelplane/v1/apply"
    batch = {"apiVersion": "v1", "kind": "List", "items": [isvc("one", namespace=None), isvc("Two_Bad")]}
    assert_status(api.post(apply, json=batch), 422, "Invalid")
    assert_status(api.get(path("one")), 404, "NotFound")

    batch["items"][1] = isvc("two")
    first = api.post(apply, json=batch).json()
    assert first["kind"] == "ApplyResult"
    assert [i["action"] for i in first["items"]] == ["created", "created"]
    assert first["items"][0]["object"]["metadata"]["namespace"] == "default"

    batch["items"][1] = isvc("two", storage_uri="file:///m/2")
    second = api.post(apply, json=batch).json()
    assert [i["action"] for i in second["items"]] == ["unchanged", "configured"]
    assert_status(api.post(apply, json={"items": "no"}), 400, "BadRequest")
    unknown = {"kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}]}
    assert_status(api.post(apply, json=unknown), 400, "BadRequest")


def test_an_apply_item_without_its_kind_or_apiversion_is_told_which_is_missing(api):
    apply = "/modelplane/v1/apply"
    no_version = {key: value for key, value in isvc("one").items() if key != "apiVersion"}
    no_kind = {key: value for key, value in isvc("one").items() if key != "kind"}
    for item, missing in ((no_version, "apiVersion"), (no_kind, "Kind")):  # as Kubernetes names them
        status = assert_status(api.post(apply, json={"kind": "List", "items": [item]}), 400, "BadRequest")
        assert status["message"] == f"items[0]: Object '{missing}' is missing", status


def test_state_survives_a_restart(tmp_path):
    with ApiProcess(tmp_path) as first:
        created = httpx.post(first.url + path(), json=isvc("kept")).json()
    with ApiProcess(tmp_path) as second:
        kept = httpx.get(second.url + path("kept")).json()
        assert kept == created
        later = httpx.post(second.url + path(), json=isvc("later")).json()
        assert int(later["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_an_open_watch_does_not_hold_up_a_graceful_stop(tmp_path):
    process = ApiProcess(tmp_path)
    url = process.start()
    try:
        with httpx.stream("GET", url + path(), params={"watch": "true"}, timeout=30) as response:
            assert response.status_code == 200
            process.stop()
            assert list(response.iter_lines()) in ([], [""])
    finally:
        process.stop()
    assert not process.killed


def test_embedded_in_one_event_loop_with_the_store(tmp_path):
    """As `modelplane up` runs it: the store written in-process, the API serving the same loop."""

    async def scenario():
        store = Store(store_path(tmp_path))
        server = ApiServer(store, bind("127.0.0.1", 0))
        serving = asyncio.create_task(server.run())
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                while (await client.get("/healthz")).status_code != 200:
                    await asyncio.sleep(0)
                params = {"watch": "true", "resourceVersion": store.resource_version()}
                async with client.stream("GET", path(), params=params) as response:
                    store.create(isvc("in-process"))
                    line = await anext(response.aiter_lines())
            assert json.loads(line)["object"]["metadata"]["name"] == "in-process"
        finally:
            server.stop()
            await serving
            store.close()

    asyncio.run(scenario())


def test_resuming_a_watch_from_beyond_the_history_is_an_expired_error_event(tmp_path):
    async def scenario():
        store = Store(store_path(tmp_path), history=2)
        for name in ("a", "b", "c", "d"):
            store.create(isvc(name))
        server = ApiServer(store, bind("127.0.0.1", 0))
        serving = asyncio.create_task(server.run())
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                params = {"watch": "true", "resourceVersion": "1"}
                async with client.stream("GET", path(), params=params) as response:
                    assert response.status_code == 200
                    lines = [line async for line in response.aiter_lines() if line]
        finally:
            server.stop()
            await serving
            store.close()
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status"
        assert event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"

    asyncio.run(scenario())


def test_autoscaling_settings_the_autoscaler_cannot_use_are_refused(api):
    def annotation_refused(name: str, annotations: dict, message: str) -> None:
        annotated = isvc(name)
        annotated["metadata"]["annotations"] = annotations
        body = assert_status(api.post(path(), json=annotated), 422, "Invalid")
        assert body["details"]["causes"] == [
            {"field": "metadata.annotations", "message": message, "reason": "FieldValueInvalid"}
        ]

    annotation_refused(
        "short-window",
        {"autoscaling.knative.dev/window": "2s"},
        "autoscaling.knative.dev/window must be between 6s and 1h, not 2s (inherited by the predictor)",
    )
    annotation_refused(
        "annotated-target",
        {"autoscaling.knative.dev/target": "-1"},
        "autoscaling.knative.dev/target must be at least 0.01, not -1 (inherited by the predictor)",
    )
    tiny_target = isvc("tiny-target")
    tiny_target["spec"]["predictor"]["scaleTarget"] = 0
    body = assert_status(api.post(path(), json=tiny_target), 422, "Invalid")
    assert "the scale target must be at least 0.01" in body["message"]
    fine = isvc("fine-window")
    fine["metadata"]["annotations"] = {"autoscaling.knative.dev/window": "90s"}
    assert api.post(path(), json=fine).status_code == 201


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_the_api_listens_on_an_ipv6_address(tmp_path, host):
    command = [sys.executable, "-m", "modelplane.local.api.server", "--home", str(tmp_path), "--host", host]
    process = subprocess.Popen([*command, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().removeprefix("listening on ").strip()
        assert url.startswith("http://[::1]:")
        assert httpx.get(url + "/healthz", timeout=30).text == "ok"
        assert httpx.get(url + path(), timeout=30).json()["items"] == []
    finally:
        process.kill()
        process.wait()


def test_the_standalone_server_stops_quietly_on_ctrl_c(tmp_path):
    command = [sys.executable, "-m", "modelplane.local.api.server", "--home", str(tmp_path), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().removeprefix("listening on ").strip()
        # Once it answers, its signal handlers are in place.
        assert httpx.get(url + "/healthz", timeout=30).status_code == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    # 130 when uvicorn passes the signal on after its graceful stop, 0 when it does not: quiet either way.
    assert process.returncode in (0, 130), stderr
    assert "Traceback" not in stderr


def test_delete_on_a_collection_deletes_what_the_selectors_match(api):
    for name, team in (("doomed-a", "gone"), ("doomed-b", "gone"), ("spared", "kept")):
        api.post(path(), json=isvc(name, team=team))
    dry = api.delete(path() + "?labelSelector=team%3Dgone&dryRun=All")
    assert sorted(item["metadata"]["name"] for item in dry.json()["items"]) == ["doomed-a", "doomed-b"]
    assert api.get(path("doomed-a")).status_code == 200  # a dry run deletes nothing
    response = api.delete(path() + "?labelSelector=team%3Dgone")
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "InferenceServiceList"
    assert sorted(item["metadata"]["name"] for item in body["items"]) == ["doomed-a", "doomed-b"]
    assert api.get(path("doomed-a")).status_code == 404 and api.get(path("spared")).status_code == 200
    every_namespace = "/apis/serving.kserve.io/v1beta1/inferenceservices"
    assert_status(api.delete(every_namespace), 405, "MethodNotAllowed")


def test_each_cause_of_a_refusal_carries_the_reason_kubernetes_gives_its_type(api):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "no-cert"},
        "type": "kubernetes.io/tls",
    }
    body = assert_status(api.post("/api/v1/namespaces/default/secrets", json=secret), 422, "Invalid")
    reasons = {cause["reason"] for cause in body["details"]["causes"]}
    assert reasons == {"FieldValueRequired"}, body["details"]["causes"]
    unsupported = isvc("bad-logger")
    unsupported["spec"]["predictor"]["logger"] = {"mode": "sometimes"}
    body = assert_status(api.post(path(), json=unsupported), 422, "Invalid")
    assert [cause["reason"] for cause in body["details"]["causes"]] == ["FieldValueNotSupported"]
