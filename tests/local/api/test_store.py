"""The SQLite resource store: keys, versions, status subresource, admission, apply, watch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from modelplane.local.api.admission import default_admission
from modelplane.local.api.errors import AlreadyExists, Conflict, Expired, Invalid, NotFound
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.store import Ref, Store, admit_as_is, store_path
from modelplane.local.controllers.runtime_status import RuntimeStatusWriter


def isvc(name: str = "iris", namespace: str = "default", storage_uri: str = "file:///m/1") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": storage_uri}}},
    }


def runtime(name: str = "rt") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": name, "namespace": "ignored"},
        "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
    }


ISVC = Ref("InferenceService", "default", "iris")


@pytest.fixture
def store(tmp_path):
    store = Store(store_path(tmp_path))
    yield store
    store.close()


def test_create_sets_server_owned_metadata_and_drops_status(store):
    body = isvc()
    body["status"] = {"url": "http://forged"}
    body["metadata"]["uid"] = "forged"
    created = store.create(body)
    metadata = created["metadata"]
    assert metadata["generation"] == 1
    assert metadata["uid"] != "forged"
    assert metadata["creationTimestamp"].endswith("Z")
    assert metadata["resourceVersion"] == "1"
    assert "status" not in created
    assert store.get(ISVC) == created


def test_create_refuses_a_taken_key_and_a_bad_name(store):
    store.create(isvc())
    with pytest.raises(AlreadyExists, match='inferenceservices.serving.kserve.io "iris" already exists'):
        store.create(isvc())
    with pytest.raises(Invalid, match="RFC 1123"):
        store.create(isvc(name="Not_Valid"))
    with pytest.raises(Invalid, match="no kind"):
        store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})


def test_generate_name(store):
    body = isvc()
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "iris-"
    created = store.create(body)
    assert created["metadata"]["name"].startswith("iris-")
    assert len(created["metadata"]["name"]) == len("iris-") + 5


def test_cluster_scoped_kind_has_no_namespace(store):
    created = store.create(runtime())
    assert "namespace" not in created["metadata"]
    assert store.get(Ref("ClusterServingRuntime", "", "rt"))["metadata"]["name"] == "rt"


def test_resource_version_is_one_counter_for_the_whole_store(store):
    first = store.create(isvc("a"))
    second = store.create(runtime())
    third = store.create(isvc("b", namespace="other"))
    versions = [int(r["metadata"]["resourceVersion"]) for r in (first, second, third)]
    assert versions == [1, 2, 3]
    assert store.resource_version() == "3"


def test_generation_changes_only_with_spec(store):
    created = store.create(isvc())

    def relabel(current):
        current["metadata"]["labels"] = {"team": "a"}
        return current

    relabelled = store.update(ISVC, relabel)
    assert relabelled["metadata"]["generation"] == 1
    assert int(relabelled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    respecced = store.replace(isvc(storage_uri="file:///m/2"))
    assert respecced["metadata"]["generation"] == 2
    assert respecced["metadata"]["uid"] == created["metadata"]["uid"]
    assert respecced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_an_update_that_changes_nothing_writes_nothing(store):
    created = store.create(isvc())
    again = store.replace(isvc())
    assert again == created
    assert store.resource_version() == created["metadata"]["resourceVersion"]


def test_stale_resource_version_is_refused(store):
    created = store.create(isvc())
    store.replace(isvc(storage_uri="file:///m/2"))
    stale = isvc(storage_uri="file:///m/3")
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    with pytest.raises(Conflict, match="the object has been modified"):
        store.replace(stale)
    assert store.get(ISVC)["spec"]["predictor"]["model"]["storageUri"] == "file:///m/2"


def test_status_is_a_subresource(store):
    store.create(isvc())
    with_status = store.set_status(ISVC, {"url": "http://iris.default.localhost", "observedGeneration": 1})
    assert with_status["metadata"]["generation"] == 1
    assert with_status["status"]["url"] == "http://iris.default.localhost"

    # A spec write keeps the stored status, whatever status it carries.
    body = isvc(storage_uri="file:///m/2")
    body["status"] = {"url": "http://forged"}
    replaced = store.replace(body)
    assert replaced["status"]["url"] == "http://iris.default.localhost"
    assert replaced["metadata"]["generation"] == 2

    # A status write keeps the spec, whatever spec it carries.
    def forge_spec(current):
        current["spec"] = {"forged": True}
        current["status"]["url"] = "http://new"
        return current

    updated = store.update_status(ISVC, forge_spec)
    assert updated["spec"] == replaced["spec"]
    assert updated["metadata"]["generation"] == 2
    assert updated["status"]["url"] == "http://new"


def test_delete(store):
    created = store.create(isvc())
    deleted = store.delete(ISVC)
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(deleted["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(NotFound, match='inferenceservices.serving.kserve.io "iris" not found'):
        store.get(ISVC)
    with pytest.raises(NotFound):
        store.delete(ISVC)


def config_map(name: str, *owners: dict, namespace: str = "default") -> dict:
    references = [
        {
            "apiVersion": "v1",
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        for owner in owners
    ]
    metadata = {"name": name, "namespace": namespace, "ownerReferences": references}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b"}}


def names(store: Store, namespace: str = "default") -> list[str]:
    return [item["metadata"]["name"] for item in store.list("ConfigMap", namespace)[0]]


def test_deleting_an_owner_deletes_its_dependents_after_it(store):
    owner = store.create(config_map("owner"))
    child = store.create(config_map("child", owner))
    store.create(config_map("grandchild", child))
    store.create(config_map("other"))
    before = int(store.resource_version())
    store.delete(Ref("ConfigMap", "default", "owner"))
    assert names(store) == ["other"]
    deleted = [(e.type, e.object["metadata"]["name"]) for e in store.events_after(before)[0]]
    assert deleted == [("DELETED", "owner"), ("DELETED", "child"), ("DELETED", "grandchild")]


def test_a_dependent_stays_while_another_owner_is_there_or_when_orphaned(store):
    first, second = store.create(config_map("first")), store.create(config_map("second"))
    store.create(config_map("shared", first, second))
    store.create(config_map("orphan", second))
    store.delete(Ref("ConfigMap", "default", "first"))
    assert names(store) == ["orphan", "second", "shared"]
    store.delete(Ref("ConfigMap", "default", "second"), orphan_dependents=True)
    assert names(store) == ["orphan", "shared"]
    store.delete(Ref("ConfigMap", "default", "orphan"), dry_run=True)
    assert names(store) == ["orphan", "shared"]


def test_a_cluster_scoped_owner_owns_across_namespaces(store):
    owner = store.create(runtime())
    store.create(config_map("in-a", owner, namespace="a"))
    store.create(config_map("in-b", owner, namespace="b"))
    store.delete(Ref("ClusterServingRuntime", "", "rt"))
    assert names(store, "a") == names(store, "b") == []


def test_an_owner_reference_needs_the_owner_s_uid(store):
    dependent = config_map("child", store.create(config_map("owner")))
    dependent["metadata"]["ownerReferences"][0]["uid"] = ""
    with pytest.raises(
        Invalid, match='metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'
    ):
        store.create(dependent)


def test_list_by_namespace_and_across(store):
    store.create(isvc("b"))
    store.create(isvc("a"))
    store.create(isvc("c", namespace="other"))
    items, version = store.list("InferenceService", "default")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert version == "3"
    everywhere, _ = store.list("InferenceService")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere] == [
        ("default", "a"),
        ("default", "b"),
        ("other", "c"),
    ]


def test_the_store_survives_a_restart(tmp_path):
    first = Store(store_path(tmp_path))
    first.create(isvc())
    first.set_status(ISVC, {"url": "http://iris.default.localhost"})
    first.close()

    second = Store(store_path(tmp_path))
    try:
        assert second.get(ISVC)["status"]["url"] == "http://iris.default.localhost"
        assert second.create(isvc("next"))["metadata"]["resourceVersion"] == "3"
        assert second._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        second.close()


def test_admission_sees_new_and_old_and_can_refuse(tmp_path):
    seen = []

    def admit(resource, old, existing):
        seen.append((resource["spec"]["predictor"]["model"]["storageUri"], old is not None))
        if resource["spec"]["predictor"]["model"]["storageUri"] == "bad://":
            raise Invalid("storageUri: unsupported scheme")
        resource["spec"]["predictor"].setdefault("minReplicas", 1)
        resource["metadata"]["uid"] = "admission may not change this"
        return resource

    store = Store(store_path(tmp_path), admit)
    try:
        created = store.create(isvc())
        assert created["spec"]["predictor"]["minReplicas"] == 1
        assert created["metadata"]["uid"] != "admission may not change this"
        with pytest.raises(Invalid, match="unsupported scheme"):
            store.replace(isvc(storage_uri="bad://"))
        assert seen == [("file:///m/1", False), ("bad://", True)]
        # Defaults applied again to the same document change nothing.
        assert store.replace(isvc()) == created
    finally:
        store.close()


def test_apply_is_all_or_nothing(tmp_path):
    def admit(resource, old, existing):
        if resource["metadata"]["name"] == "refused":
            raise Invalid("refused on purpose")
        return resource

    store = Store(store_path(tmp_path), admit)
    try:
        store.create(isvc("existing"))
        before = store.resource_version()
        with pytest.raises(Invalid):
            store.apply([isvc("new"), isvc("existing", storage_uri="file:///m/2"), isvc("refused")])
        assert store.resource_version() == before
        with pytest.raises(NotFound):
            store.get(Ref("InferenceService", "default", "new"))
        assert store.events_after(int(before))[0] == []

        results = store.apply([isvc("new"), isvc("existing", storage_uri="file:///m/2"), runtime()])
        assert [r.action for r in results] == ["created", "configured", "created"]
        again = store.apply([isvc("new"), isvc("existing", storage_uri="file:///m/2")])
        assert [r.action for r in again] == ["unchanged", "unchanged"]

        version = store.resource_version()
        rehearsed = store.apply([isvc("rehearsed"), isvc("new", storage_uri="file:///m/9")], dry_run=True)
        assert [r.action for r in rehearsed] == ["created", "configured"]
        stored = store.get(Ref("InferenceService", "default", "new"))["metadata"]["resourceVersion"]
        assert [r.object["metadata"].get("resourceVersion") for r in rehearsed] == [None, stored]
        assert store.resource_version() == version
        with pytest.raises(NotFound):
            store.get(Ref("InferenceService", "default", "rehearsed"))
        assert store.events_after(int(version))[0] == []
    finally:
        store.close()


def test_events_after_and_expiry(tmp_path):
    store = Store(store_path(tmp_path), admit_as_is, history=3)
    try:
        for name in "abcde":
            store.create(isvc(name))
        events, reached = store.events_after(2)
        assert [e.object["metadata"]["name"] for e in events] == ["c", "d", "e"]
        assert reached == 5
        with pytest.raises(Expired):
            store.events_after(1)
    finally:
        store.close()


def test_the_history_keeps_what_a_modified_object_was(store):
    """A selector watch tells an object entering or leaving the selection from the state before."""
    store.create(isvc())
    store.update(ISVC, lambda current: {**current, "metadata": {**current["metadata"], "labels": {"a": "b"}}})
    (modified,), _ = store.events_after(1)
    assert modified.type == "MODIFIED"
    assert "labels" not in modified.previous["metadata"]
    assert modified.object["metadata"]["labels"] == {"a": "b"}


def test_a_history_recorded_without_previous_states_is_still_read(tmp_path):
    store = Store(store_path(tmp_path))
    store.create(isvc())
    store.set_status(ISVC, {"url": "http://x"})
    store.close()
    with sqlite3.connect(store_path(tmp_path)) as db:  # the history as a store made before kept it
        db.execute("ALTER TABLE events DROP COLUMN previous")
    store = Store(store_path(tmp_path))
    try:
        (old,), _ = store.events_after(1)
        assert old.previous is None
        assert old.seen_through(lambda obj: True).type == "MODIFIED"  # as unchanged
        store.set_status(ISVC, {"url": "http://y"})
        assert store.events_after(2)[0][0].previous["status"] == {"url": "http://x"}
    finally:
        store.close()


def test_watch_streams_changes_and_resumes(store):
    async def scenario():
        created = store.create(isvc())
        events = []

        async def collect(resource_version, count):
            got = []
            async for event in store.watch("InferenceService", "default", resource_version):
                got.append(event)
                if len(got) == count:
                    return got

        # Without a resourceVersion: the current state first, then what happens next.
        watcher = asyncio.create_task(collect(None, 3))
        await asyncio.sleep(0)
        store.create(runtime())  # another kind: not seen
        store.set_status(ISVC, {"url": "http://x"})
        store.delete(ISVC)
        events = await asyncio.wait_for(watcher, 30)
        assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        assert events[1].object["status"] == {"url": "http://x"}

        # Resuming from the first event's version replays the rest.
        resumed = await asyncio.wait_for(collect(int(created["metadata"]["resourceVersion"]), 2), 30)
        assert [e.type for e in resumed] == ["MODIFIED", "DELETED"]
        assert resumed[1].to_json()["object"]["metadata"]["name"] == "iris"

    asyncio.run(scenario())


def test_store_file_is_plain_sqlite(tmp_path):
    store = Store(store_path(tmp_path))
    store.create(isvc())
    store.close()
    rows = (
        sqlite3.connect(store_path(tmp_path))
        .execute("SELECT kind, namespace, name FROM resources")
        .fetchall()
    )
    assert rows == [("InferenceService", "default", "iris")]


def test_admission_sees_the_other_resources_of_the_kind_in_the_namespace(tmp_path):
    seen = {}

    def admit(resource, old, existing):
        seen[resource["metadata"]["name"]] = sorted(r["metadata"]["name"] for r in existing)
        return resource

    store = Store(store_path(tmp_path), admit)
    try:
        store.create(isvc("a"))
        store.create(isvc("elsewhere", namespace="other"))
        store.apply([isvc("b"), isvc("c")])
        assert seen == {"a": [], "elsewhere": [], "b": ["a"], "c": ["a", "b"]}
    finally:
        store.close()


def test_default_admission_refuses_what_kserve_refuses(tmp_path):
    store = Store(store_path(tmp_path), default_admission())
    try:
        created = store.create(isvc())
        assert created["metadata"]["generation"] == 1
        broken = isvc("broken")
        broken["spec"]["predictor"] = {}
        with pytest.raises(
            Invalid, match='InferenceService.serving.kserve.io "broken" is invalid: '
        ) as caught:
            store.create(broken)
        assert caught.value.details["causes"]
        assert caught.value.to_status()["code"] == 422
    finally:
        store.close()


def test_concurrent_read_modify_writes_lose_nothing(store):
    store.create(isvc())

    def bump_counter():
        for _ in range(20):
            while True:
                current = store.get(ISVC)
                labels = current["metadata"].setdefault("labels", {})
                labels["count"] = str(int(labels.get("count", "0")) + 1)
                try:
                    store.replace(current)  # carries the resourceVersion it read
                    break
                except Conflict:
                    continue

    threads = [threading.Thread(target=bump_counter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.get(ISVC)
    assert final["metadata"]["labels"]["count"] == "80"
    assert final["metadata"]["generation"] == 1
    assert final["metadata"]["resourceVersion"] == "81"


def test_default_admission_refuses_a_graph_its_router_could_not_run(tmp_path):
    store = Store(store_path(tmp_path), default_admission())
    try:
        cyclic = {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "InferenceGraph",
            "metadata": {"name": "loop", "namespace": "default"},
            "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": [{"nodeName": "root"}]}}},
        }
        with pytest.raises(Invalid, match="the nodes form a cycle: root -> root") as caught:
            store.create(cyclic)
        assert caught.value.to_status()["code"] == 422
    finally:
        store.close()


def test_a_trained_model_applied_again_keeps_the_labels_its_controller_keeps(store):
    def trained_model(**labels: str) -> dict:
        metadata = {"name": "a", "namespace": "default", **({"labels": labels} if labels else {})}
        spec = {"inferenceService": "mms", "model": {"storageUri": "s3://m/a", "memory": "1Gi"}}
        return {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "TrainedModel",
            "metadata": metadata,
            "spec": spec,
        }

    store.apply([trained_model(team="x")])
    placed = {"team": "x", "inferenceservice": "mms", "serving.kserve.io/trainedmodel-allocated": "mms"}
    ref = Ref("TrainedModel", "default", "a")
    store.update(ref, lambda tm: {**tm, "metadata": {**tm["metadata"], "labels": placed}})  # its controller

    [applied] = store.apply([trained_model(team="x")])
    assert applied.action == "unchanged"
    [applied] = store.apply([trained_model(team="y")])
    assert applied.action == "configured"
    assert store.get(ref)["metadata"]["labels"] == {**placed, "team": "y"}
    # The controller takes its label off, and the file can set one of them itself.
    store.update(
        ref, lambda tm: {**tm, "metadata": {**tm["metadata"], "labels": {"inferenceservice": "mms"}}}
    )
    assert store.get(ref)["metadata"]["labels"] == {"inferenceservice": "mms"}
    store.apply([trained_model(inferenceservice="other")])
    assert store.get(ref)["metadata"]["labels"] == {"inferenceservice": "other"}


def test_a_controller_s_status_write_is_the_control_plane_s_update_of_the_status(store):
    """As a controller's status write on Kubernetes: an `Update` of the `status` subresource by its
    manager, owning the status it added (with `.` on each object it created)."""
    store.create(isvc())
    written = store.set_status(ISVC, {"url": "http://x", "components": {"predictor": {"url": "http://p"}}})
    [entry] = written["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["subresource"]) == (
        "modelplane-operator",
        "Update",
        "status",
    )
    assert entry["fieldsV1"] == {
        "f:status": {
            ".": {},
            "f:components": {".": {}, "f:predictor": {".": {}, "f:url": {}}},
            "f:url": {},
        }
    }
    unchanged = store.set_status(ISVC, {"url": "http://x", "components": {"predictor": {"url": "http://p"}}})
    assert unchanged["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    fewer = store.set_status(ISVC, {"url": "http://y"})
    assert fewer["metadata"]["managedFields"][0]["fieldsV1"] == {"f:status": {".": {}, "f:url": {}}}


def test_the_runtime_status_controller_writes_as_the_control_plane(store):
    async def scenario():
        writer = RuntimeStatusWriter(store, EventRecorder(store))
        writer.start()
        try:
            store.create(runtime())
            async for event in store.watch("ClusterServingRuntime", None, None):
                if event.object.get("status"):
                    return event.object
        finally:
            await writer.close()

    written = asyncio.run(asyncio.wait_for(scenario(), 60))
    [entry] = written["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["subresource"]) == (
        "modelplane-operator",
        "Update",
        "status",
    )
    assert set(entry["fieldsV1"]["f:status"]) >= {".", "f:conditions"}
