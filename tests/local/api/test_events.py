"""Events recorded in the store, and shown by `describe`."""

from __future__ import annotations

from modelplane.api.kinds import EVENT
from modelplane.local.api.describe import describe
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.meta import now_rfc3339
from modelplane.local.api.store import Store, store_path

RUNTIME = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "ClusterServingRuntime",
    "metadata": {"name": "kserve-pmmlserver", "uid": "u-1"},
}
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "team"},
}


def test_the_same_event_again_counts_up_and_a_cluster_scoped_objects_go_to_default(tmp_path):
    store = Store(store_path(tmp_path))
    events = EventRecorder(store)
    events.warning(RUNTIME, "ImageNotServed", "image kserve-pmmlserver:replace is not served")
    events.warning(RUNTIME, "ImageNotServed", "image kserve-pmmlserver:replace is not served")
    events.warning(ISVC, "ImageNotServed", "runtime x: not served")
    recorded, _ = store.list(EVENT.kind)
    by_object = {e["involvedObject"]["name"]: e for e in recorded}
    assert len(recorded) == 2
    runtime_event = by_object["kserve-pmmlserver"]
    assert runtime_event["metadata"]["namespace"] == "default"
    assert runtime_event["count"] == 2
    assert runtime_event["involvedObject"] == {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "name": "kserve-pmmlserver",
        "uid": "u-1",
    }
    assert (runtime_event["type"], runtime_event["source"]) == ("Warning", {"component": "modelplane"})
    # the control plane's write, as a controller's recorder's is on Kubernetes
    [entry] = runtime_event["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("modelplane-operator", "Update")
    assert "f:count" in entry["fieldsV1"] and "f:involvedObject" in entry["fieldsV1"]
    assert by_object["iris"]["metadata"]["namespace"] == "team"
    store.close()


def test_describe_shows_the_events_about_the_resource():
    now = now_rfc3339()
    event = {
        "involvedObject": {"kind": "InferenceService", "name": "iris", "namespace": "team"},
        "type": "Warning",
        "reason": "ImageNotServed",
        "message": "runtime x: not served",
        "source": {"component": "modelplane"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 3,
    }
    other = {**event, "involvedObject": {"kind": "InferenceService", "name": "other", "namespace": "team"}}
    text = describe(ISVC, [event, other])
    lines = text.splitlines()
    start = lines.index("Events:")
    assert lines[start + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[start + 3].split()[:2] == ["Warning", "ImageNotServed"]
    assert "(x3 over" in lines[start + 3]
    assert lines[start + 3].endswith("modelplane  runtime x: not served")
    assert len(lines) == start + 4
    assert describe(ISVC, [other]).endswith("Events:  <none>\n")
