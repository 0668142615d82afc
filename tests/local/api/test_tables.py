"""Server-side Tables (what `kubectl get` prints), from a real API process over httpx."""

from __future__ import annotations

import json

import httpx
import pytest

from modelplane.api.kinds import INFERENCE_SERVICE
from modelplane.api.schema import crd
from modelplane.local.api.process import ApiProcess

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)
TABLE = {"Accept": KUBECTL_GET}
STATUS = {
    "url": "http://iris.default.localhost",
    "conditions": [{"type": "Ready", "status": "True"}],
    "components": {
        "predictor": {
            "traffic": [
                {"tag": "prev", "revisionName": "iris-predictor-00001", "percent": 20},
                {"latestRevision": True, "revisionName": "iris-predictor-00002", "percent": 80},
            ]
        }
    },
    "revisions": [
        {"name": "iris-predictor-00001", "actualReplicas": 2, "desiredReplicas": 1},
        {"name": "iris-predictor-00002", "actualReplicas": 1, "desiredReplicas": 1},
    ],
}


def isvc(name: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m/1"}}},
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with (
        ApiProcess(tmp_path_factory.mktemp("home")) as process,
        httpx.Client(base_url=process.url, timeout=30) as client,
    ):
        assert client.post(ISVCS, json=isvc("iris")).status_code == 201
        assert client.put(f"{ISVCS}/iris/status", json={**isvc("iris"), "status": STATUS}).status_code == 200
        assert client.post(ISVCS, json=isvc("fresh")).status_code == 201
        yield client


def test_a_list_as_a_table_has_the_crds_printer_columns(api):
    table = api.get(ISVCS, headers=TABLE).json()
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    (version,) = crd(INFERENCE_SERVICE)["spec"]["versions"]
    declared = [(c["name"], c["type"]) for c in version["additionalPrinterColumns"]]
    columns = table["columnDefinitions"]
    assert columns[0]["name"] == "Name" and columns[0]["format"] == "name"
    assert [(c["name"], c["type"]) for c in columns if c["priority"] == 0][1:] == declared
    # modelplane's own replica columns, for -o wide
    assert [c["name"] for c in columns if c["priority"] == 1] == ["Revisions", "Replicas", "Desired"]
    assert table["metadata"]["resourceVersion"] == api.get(ISVCS).json()["metadata"]["resourceVersion"]


def test_cells_are_typed_and_missing_values_are_null(api):
    rows = {row["cells"][0]: row for row in api.get(ISVCS, headers=TABLE).json()["rows"]}
    iris = rows["iris"]["cells"]
    assert iris[:7] == [
        "iris",
        "http://iris.default.localhost",
        "True",
        20,
        80,
        "iris-predictor-00001",
        "iris-predictor-00002",
    ]
    assert iris[7].endswith("s")  # the age, as kubectl prints it
    assert iris[8:] == ["iris-predictor-00001,iris-predictor-00002", "2,1", "1,1"]
    fresh = rows["fresh"]["cells"]
    assert fresh[1:7] == [None] * 6


def test_each_row_carries_the_metadata_or_what_includeobject_asks(api):
    row = api.get(f"{ISVCS}/iris", headers=TABLE).json()["rows"][0]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"app": "iris"}
    assert "spec" not in row["object"]
    whole = api.get(ISVCS, headers=TABLE, params={"includeObject": "Object"}).json()["rows"][0]["object"]
    assert whole["kind"] == "InferenceService" and "spec" in whole
    bare = api.get(ISVCS, headers=TABLE, params={"includeObject": "None"}).json()["rows"][0]
    assert "object" not in bare
    refused = api.get(ISVCS, headers=TABLE, params={"includeObject": "All"})
    assert refused.status_code == 400
    assert "includeObject" in refused.json()["message"]


def test_one_object_and_selectors(api):
    one = api.get(f"{ISVCS}/iris", headers=TABLE).json()
    assert [row["cells"][0] for row in one["rows"]] == ["iris"]
    selected = api.get(ISVCS, headers=TABLE, params={"labelSelector": "app=fresh"}).json()
    assert [row["cells"][0] for row in selected["rows"]] == ["fresh"]


def test_plain_json_unless_a_table_comes_first(api):
    assert api.get(ISVCS).json()["kind"] == "InferenceServiceList"
    assert api.get(ISVCS, headers={"Accept": "application/json"}).json()["kind"] == "InferenceServiceList"
    preferring_json = {"Accept": "application/json,application/json;as=Table;v=v1;g=meta.k8s.io"}
    assert api.get(ISVCS, headers=preferring_json).json()["kind"] == "InferenceServiceList"
    v1beta1 = {
        "Accept": "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    }
    assert api.get(ISVCS, headers=v1beta1).json()["apiVersion"] == "meta.k8s.io/v1beta1"


def test_runtimes_and_events_are_tables_too(api):
    csrs = api.get("/apis/serving.kserve.io/v1alpha1/clusterservingruntimes", headers=TABLE).json()
    assert [c["name"] for c in csrs["columnDefinitions"]] == [
        "Name",
        "Disabled",
        "ModelType",
        "Containers",
        "Age",
    ]
    sklearn = next(row for row in csrs["rows"] if row["cells"][0] == "kserve-sklearnserver")
    assert sklearn["cells"][2:4] == ["sklearn", "kserve-container"]


def test_events_have_kubernetes_event_columns(api):
    """As Kubernetes prints events: LAST SEEN, TYPE, REASON, OBJECT (kind/name), MESSAGE; with -o wide
    also SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME (last)."""
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "c1.e1"},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c1", "namespace": "default"},
        "reason": "Probe",
        "message": " hello ",
        "type": "Normal",
        "source": {"component": "probe"},
    }
    assert api.post("/api/v1/namespaces/default/events", json=event).status_code == 201
    table = api.get("/api/v1/namespaces/default/events", headers=TABLE).json()
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert [name for name, priority in columns if priority == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    assert [name for name, priority in columns if priority == 1] == [
        "Subobject",
        "Source",
        "First Seen",
        "Count",
        "Name",
    ]
    (row,) = table["rows"]
    cells = dict(zip([name for name, _ in columns], row["cells"], strict=True))
    assert cells == {
        "Last Seen": "<unknown>",
        "Type": "Normal",
        "Reason": "Probe",
        "Object": "configmap/c1",
        "Subobject": "",
        "Source": "probe",
        "Message": "hello",
        "First Seen": "<unknown>",
        "Count": 1,
        "Name": "c1.e1",
    }


def test_kubernetes_own_kinds_count_their_entries_as_kubectl_shows_them(api):
    core = "/api/v1/namespaces/default"
    config_map = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert api.post(
        f"{core}/configmaps", json={"apiVersion": "v1", "kind": "ConfigMap", **config_map}
    ).is_success
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    assert api.post(f"{core}/secrets", json={**secret, "stringData": {"k": "v"}}).is_success
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "secrets": [{"name": "s"}],
    }
    assert api.post(f"{core}/serviceaccounts", json=account).is_success
    expected = {
        "configmaps": (["Name", "Data", "Age"], ["c", 3]),
        "secrets": (["Name", "Type", "Data", "Age"], ["s", "Opaque", 1]),
        "serviceaccounts": (["Name", "Secrets", "Age"], ["sa", 1]),
    }
    for plural, (names, cells) in expected.items():
        table = api.get(f"{core}/{plural}", headers=TABLE).json()
        assert [c["name"] for c in table["columnDefinitions"]] == names
        row = next(row for row in table["rows"] if row["cells"][0] == cells[0])
        assert row["cells"][: len(cells)] == cells


def test_a_watch_sends_one_row_tables_with_the_columns_first(api):
    params = {"watch": "true", "timeoutSeconds": "5", "fieldSelector": "metadata.name=watched"}
    with api.stream("GET", ISVCS, params=params, headers=TABLE) as stream:
        assert api.post(ISVCS, json=isvc("watched")).status_code == 201
        assert api.delete(f"{ISVCS}/watched").status_code == 200
        events = []
        for line in stream.iter_lines():
            events.append(json.loads(line))
            if len(events) == 2:
                break
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert all(e["object"]["kind"] == "Table" for e in events)
    assert [[row["cells"][0] for row in e["object"]["rows"]] for e in events] == [["watched"], ["watched"]]
    assert events[0]["object"]["columnDefinitions"][0]["name"] == "Name"
    assert events[1]["object"]["columnDefinitions"] == []
