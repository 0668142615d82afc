"""What a write's query and a delete's body ask of it: fieldValidation, dryRun, DeleteOptions;
and the event field selectors `kubectl describe` uses. From a real API process over httpx."""

from __future__ import annotations

import httpx

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
EVENTS = "/api/v1/namespaces/default/events"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def isvc(name: str, **model_fields) -> dict:
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m/1", **model_fields}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": model}},
    }


def _warnings(response: httpx.Response) -> list[str]:
    return response.headers.get_list("warning")


# ---- fieldValidation ----


def test_strict_refuses_unknown_fields_naming_each(api):
    typo = isvc("strict", storageUrl="file:///m/1", colour="blue")
    refused = api.post(ISVCS, json=typo, params={"fieldValidation": "Strict"})
    assert refused.status_code == 400
    body = refused.json()
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        'InferenceService in version "v1beta1" cannot be handled as a InferenceService: strict decoding '
        'error: unknown field "spec.predictor.model.storageUrl" (did you mean "storageUri"?), '
        'unknown field "spec.predictor.model.colour"'
    )
    assert api.get(f"{ISVCS}/strict").status_code == 404


def test_warn_is_the_default_and_drops_the_field(api):
    created = api.post(ISVCS, json=isvc("warned", storageUrl="file:///m/2"))
    assert created.status_code == 201
    assert _warnings(created) == [
        '299 - "unknown field \\"spec.predictor.model.storageUrl\\" (did you mean \\"storageUri\\"?)"'
    ]
    assert "storageUrl" not in created.json()["spec"]["predictor"]["model"]
    assert "storageUrl" not in api.get(f"{ISVCS}/warned").json()["spec"]["predictor"]["model"]
    explicit = api.put(
        f"{ISVCS}/warned", json=isvc("warned", storageUrl="x"), params={"fieldValidation": "Warn"}
    )
    assert explicit.status_code == 200 and len(_warnings(explicit)) == 1


def test_a_field_name_a_header_cannot_carry_is_warned_of_escaped(api):
    created = api.post(ISVCS, json=isvc("odd-field", **{"x\x1fy": 1, "caf\u00e9": 2}))
    assert created.status_code == 201, created.text
    said = _warnings(created)
    assert '299 - "unknown field \\"spec.predictor.model[x\\x1fy]\\""' in said
    assert '299 - "unknown field \\"spec.predictor.model[caf\\xe9]\\""' in said


def test_ignore_says_nothing(api):
    created = api.post(ISVCS, json=isvc("ignored", colour="blue"), params={"fieldValidation": "Ignore"})
    assert created.status_code == 201
    assert _warnings(created) == []
    assert "colour" not in created.json()["spec"]["predictor"]["model"]


def test_an_object_read_back_replaces_itself_under_strict(api):
    """`kubectl get -o yaml > f; kubectl replace -f f`: what was accepted with a warning was pruned, as
    Kubernetes prunes it, so the object read back holds no field Strict refuses."""
    graphs = "/apis/serving.kserve.io/v1alpha1/namespaces/default/inferencegraphs"
    root = {"routerType": "Sequence", "stepz": [], "steps": [{"name": "a", "serviceName": "nowhere"}]}
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "read-back"},
        "spec": {"nodes": {"root": root}},
    }
    assert len(_warnings(api.post(graphs, json=graph))) == 1
    read_back = api.get(f"{graphs}/read-back").json()
    assert "stepz" not in read_back["spec"]["nodes"]["root"]
    replaced = api.put(f"{graphs}/read-back", json=read_back, params={"fieldValidation": "Strict"})
    assert replaced.status_code == 200, replaced.text
    patch = {"spec": {"nodes": {"root": {"stepz": [1]}}}}
    patched = api.patch(f"{graphs}/read-back", json=patch, headers=MERGE_PATCH)
    assert len(_warnings(patched)) == 1
    assert patched.json()["metadata"]["resourceVersion"] == replaced.json()["metadata"]["resourceVersion"]


def test_a_patch_is_checked_by_what_it_writes(api):
    assert api.post(ISVCS, json=isvc("patched")).is_success
    patch = {"spec": {"predictor": {"model": {"storageUri": "file:///m/3"}}}}
    fine = api.patch(
        f"{ISVCS}/patched", json=patch, headers=MERGE_PATCH, params={"fieldValidation": "Strict"}
    )
    assert fine.status_code == 200, fine.text
    bad = {"spec": {"predictor": {"model": {"runtimeVersoin": "1"}}}}
    refused = api.patch(
        f"{ISVCS}/patched", json=bad, headers=MERGE_PATCH, params={"fieldValidation": "Strict"}
    )
    assert refused.status_code == 400
    assert (
        'unknown field "spec.predictor.model.runtimeVersoin" (did you mean "runtimeVersion"?)'
        in refused.json()["message"]
    )
    removing = {"spec": {"predictor": {"model": {"colour": None}}}}
    removed = api.patch(
        f"{ISVCS}/patched", json=removing, headers=MERGE_PATCH, params={"fieldValidation": "Strict"}
    )
    assert removed.status_code == 200
    assert "colour" not in removed.json()["spec"]["predictor"]["model"]


def test_status_writes_are_not_checked(api):
    assert api.post(ISVCS, json=isvc("status")).status_code == 201
    body = {**isvc("status"), "status": {"modelplaneOwn": 1}}
    written = api.put(f"{ISVCS}/status/status", json=body, params={"fieldValidation": "Strict"})
    assert written.status_code == 200 and _warnings(written) == []


def test_an_unknown_directive_is_refused(api):
    refused = api.post(ISVCS, json=isvc("bad-directive"), params={"fieldValidation": "Loose"})
    assert refused.status_code == 400
    assert 'fieldValidation: Unsupported value: "Loose"' in refused.json()["message"]


# ---- dryRun and DeleteOptions ----


def test_dry_run_writes_answer_without_storing(api):
    created = api.post(ISVCS, json=isvc("dry"), params={"dryRun": "All"})
    assert created.status_code == 201
    assert created.json()["metadata"]["generation"] == 1
    assert api.get(f"{ISVCS}/dry").status_code == 404
    assert api.post(ISVCS, json=isvc("dry")).status_code == 201
    patch = {"metadata": {"labels": {"a": "b"}}}
    patched = api.patch(f"{ISVCS}/dry", json=patch, headers=MERGE_PATCH, params={"dryRun": "All"})
    assert patched.json()["metadata"]["labels"] == {"a": "b"}
    assert "labels" not in api.get(f"{ISVCS}/dry").json()["metadata"]
    assert api.delete(f"{ISVCS}/dry", params={"dryRun": "All"}).status_code == 200
    assert api.get(f"{ISVCS}/dry").status_code == 200
    refused = api.post(ISVCS, json=isvc("dry-bad"), params={"dryRun": "Some"})
    assert refused.status_code == 400


def test_dry_runs_answer_the_resource_version_stored(api):
    """As Kubernetes answers them: a dry-run create has no resourceVersion, a dry-run update or delete
    the stored one; none takes a version (so `kubectl diff` shows no resourceVersion change)."""
    rehearsed = api.post(ISVCS, json=isvc("dry-version"), params={"dryRun": "All"}).json()
    assert "resourceVersion" not in rehearsed["metadata"]
    stored = api.post(ISVCS, json=isvc("dry-version")).json()["metadata"]["resourceVersion"]
    patch = {"metadata": {"labels": {"a": "b"}}}
    url = f"{ISVCS}/dry-version"
    patched = api.patch(url, json=patch, headers=MERGE_PATCH, params={"dryRun": "All"}).json()
    replaced = api.put(
        url, json=isvc("dry-version", storageUri="file:///m/2"), params={"dryRun": "All"}
    ).json()
    deleted = api.delete(url, params={"dryRun": "All"}).json()
    assert [o["metadata"]["resourceVersion"] for o in (patched, replaced, deleted)] == [stored] * 3
    assert api.get(ISVCS).json()["metadata"]["resourceVersion"] == stored


def test_delete_options_in_the_body(api):
    assert api.post(ISVCS, json=isvc("doomed")).status_code == 201
    uid = api.get(f"{ISVCS}/doomed").json()["metadata"]["uid"]
    dry = {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"], "propagationPolicy": "Background"}
    assert api.request("DELETE", f"{ISVCS}/doomed", json=dry).status_code == 200
    assert api.get(f"{ISVCS}/doomed").status_code == 200

    stale = {"preconditions": {"uid": "not-" + uid}}
    conflict = api.request("DELETE", f"{ISVCS}/doomed", json=stale)
    assert conflict.status_code == 409
    assert (
        conflict.json()["message"]
        == f"Precondition failed: UID in precondition: not-{uid}, UID in object meta: {uid}"
    )
    assert api.get(f"{ISVCS}/doomed").status_code == 200

    bad = api.request("DELETE", f"{ISVCS}/doomed", json={"propagationPolicy": "Sometimes"})
    assert bad.status_code == 400
    assert api.request("DELETE", f"{ISVCS}/doomed", json={"preconditions": {"uid": uid}}).status_code == 200
    assert api.get(f"{ISVCS}/doomed").status_code == 404


# ---- what kubectl describe asks for ----


def test_events_are_selected_by_their_involved_object(api):
    created = api.post(ISVCS, json=isvc("described")).json()
    uid = created["metadata"]["uid"]
    for name, involved in (("about-it", "described"), ("about-another", "other")):
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name},
            "involvedObject": {
                "kind": "InferenceService",
                "name": involved,
                "namespace": "default",
                "uid": uid,
            },
            "reason": "Created",
            "type": "Normal",
            "message": "hello",
            "source": {"component": "modelplane"},
        }
        assert api.post(EVENTS, json=event).status_code == 201
    selector = (
        f"involvedObject.namespace=default,involvedObject.kind=InferenceService,"
        f"involvedObject.uid={uid},involvedObject.name=described"
    )
    listed = api.get(EVENTS, params={"fieldSelector": selector}).json()["items"]
    assert [e["metadata"]["name"] for e in listed] == ["about-it"]
    by_source = api.get(EVENTS, params={"fieldSelector": "source=modelplane,type!=Warning"}).json()["items"]
    assert {e["metadata"]["name"] for e in by_source} == {"about-it", "about-another"}
    refused = api.get(EVENTS, params={"fieldSelector": "spec.colour=blue"})
    assert refused.status_code == 400


def test_a_condition_go_reads_in_its_own_way_is_written_with_a_warning(api):
    graphs = "/apis/serving.kserve.io/v1alpha1/namespaces/default/inferencegraphs"
    step = {"serviceUrl": "http://127.0.0.1:1/v1/models/m:predict", "condition": "instances.#(a==1)x"}
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "doubtful"},
        "spec": {"nodes": {"root": {"routerType": "Switch", "steps": [step]}}},
    }
    created = api.post(graphs, json=graph)
    assert created.status_code == 201
    [warning] = _warnings(created)
    assert warning.startswith("299 - \"spec.nodes.root.steps[0].condition: 'instances.#(a==1)x' is evaluated")
    assert "after the query, found 'x' at position 18" in warning

    fixed = {
        "spec": {"nodes": {"root": {"routerType": "Switch", "steps": [{**step, "condition": "instances"}]}}}
    }
    patched = api.patch(f"{graphs}/doubtful", json=fixed, headers=MERGE_PATCH)
    assert patched.status_code == 200 and _warnings(patched) == []
