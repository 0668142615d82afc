"""The real `kubectl` against a real control-plane API process, through a temporary kubeconfig."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from modelplane.api.secrets import REDACTED, placeholder
from modelplane.local.api.process import ApiProcess

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
ISVC_COLUMNS = [
    "NAME",
    "URL",
    "READY",
    "PREV",
    "LATEST",
    "PREVROLLEDOUTREVISION",
    "LATESTREADYREVISION",
    "AGE",
]

SHORTHAND = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:
    sklearn:
      storageUri: {uri}
"""
MODEL = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      {field}: {uri}
"""
STATUS = {
    "url": "http://served.default.localhost",
    "conditions": [{"type": "Ready", "status": "True"}],
    "components": {
        "predictor": {
            "traffic": [{"latestRevision": True, "revisionName": "served-predictor-00001", "percent": 100}]
        }
    },
    "revisions": [{"name": "served-predictor-00001", "actualReplicas": 1, "desiredReplicas": 1}],
}


class Kubectl:
    """Runs kubectl with its own kubeconfig and cache, pointing at one API process."""

    def __init__(self, url: str, home: Path):
        self.home = home
        self.files = home / "files"
        self.files.mkdir()
        config = home / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: modelplane\n  cluster: {{server: '{url}'}}\n"
            "users:\n- name: modelplane\n  user: {}\n"
            "contexts:\n- name: modelplane\n  context: {cluster: modelplane, user: modelplane, namespace: default}\n"
            "current-context: modelplane\n"
        )
        self.env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(home)}

    def __call__(
        self, *args: str, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["kubectl", *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=120
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def file(self, name: str, text: str) -> str:
        path = self.files / name
        path.write_text(text)
        return str(path)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(["kubectl", *args], env=self.env, stdout=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with (
        ApiProcess(tmp_path_factory.mktemp("home")) as process,
        httpx.Client(base_url=process.url, timeout=30) as client,
    ):
        yield Kubectl(process.url, tmp_path_factory.mktemp("kubectl")), client


@pytest.fixture
def kubectl(cluster):
    return cluster[0]


@pytest.fixture
def api(cluster):
    return cluster[1]


def _table(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def _generation(api: httpx.Client, name: str) -> int:
    return api.get(f"{ISVCS}/{name}").json()["metadata"]["generation"]


def test_apply_validates_on_the_server_and_reapplies(kubectl, api):
    path = kubectl.file("iris.yaml", MODEL.format(name="iris", field="storageUri", uri="pvc://models/iris"))
    assert kubectl("apply", "-f", path).stdout == "inferenceservice.serving.kserve.io/iris created\n"
    assert kubectl("apply", "-f", path).stdout == "inferenceservice.serving.kserve.io/iris unchanged\n"
    assert _generation(api, "iris") == 1
    kubectl.file("iris.yaml", MODEL.format(name="iris", field="storageUri", uri="pvc://models/iris-2"))
    assert kubectl("apply", "-f", path).stdout == "inferenceservice.serving.kserve.io/iris configured\n"
    stored = api.get(f"{ISVCS}/iris").json()
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/iris-2"
    assert stored["metadata"]["generation"] == 2


def test_a_shorthand_applies_again(kubectl, api):
    """The stored resource has `model` (defaulting moved the shorthand there), so kubectl's patch
    puts the shorthand back next to it each time; as with KServe, that is accepted and reported
    `configured`, and an unchanged file changes nothing."""
    path = kubectl.file("short.yaml", SHORTHAND.format(name="short", uri="pvc://models/short"))
    assert kubectl("apply", "-f", path).stdout == "inferenceservice.serving.kserve.io/short created\n"
    version = api.get(f"{ISVCS}/short").json()["metadata"]["resourceVersion"]
    assert kubectl("apply", "-f", path).stdout == "inferenceservice.serving.kserve.io/short configured\n"
    assert api.get(f"{ISVCS}/short").json()["metadata"]["resourceVersion"] == version
    kubectl.file("short.yaml", SHORTHAND.format(name="short", uri="pvc://models/short-2"))
    kubectl("apply", "-f", path)
    predictor = api.get(f"{ISVCS}/short").json()["spec"]["predictor"]
    assert predictor == {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://models/short-2"}}
    assert _generation(api, "short") == 2


def test_unknown_fields_are_refused_by_default_and_warned_about_on_request(kubectl, api):
    path = kubectl.file("typo.yaml", MODEL.format(name="typo", field="storageUrl", uri="pvc://models/typo"))
    refused = kubectl("apply", "-f", path, "--validate=strict", check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.predictor.model.storageUrl"' in refused.stderr
    assert 'did you mean "storageUri"?' in refused.stderr
    assert kubectl("apply", "-f", path, check=False).returncode != 0  # strict is kubectl's default
    assert api.get(f"{ISVCS}/typo").status_code == 404
    warned = kubectl("apply", "-f", path, "--validate=warn", check=False)
    assert 'Warning: unknown field "spec.predictor.model.storageUrl"' in warned.stderr
    # with a storageUrl and no storageUri, the model still validates: it may be stored
    assert warned.stdout == "inferenceservice.serving.kserve.io/typo created\n"


def test_a_list_file_is_checked_by_kubectl_against_the_v2_schemas(kubectl, api):
    """kubectl checks each item of a `kind: List` itself, against OpenAPI v2, as on a cluster: a typo in
    one item refuses the whole file before anything is written."""
    items = [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "sklearn"},
                        field: "pvc://m",
                        "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},  # int-or-string
                    }
                }
            },
        }
        for name, field in (("listed", "storageUri"), ("listed-typo", "storageUrl"))
    ]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z-listed"}, "data": {"a": "b"}}
    path = kubectl.file(
        "list.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": [*items, config]})
    )
    refused = kubectl("apply", "-f", path, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert (
        'ValidationError(InferenceService.spec.predictor.model): unknown field "storageUrl" in '
        "io.kserve.serving.v1beta1.InferenceService.spec.predictor.model"
    ) in refused.stderr
    assert api.get(f"{ISVCS}/listed").status_code == 404
    kubectl.file("list.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": [items[0], config]}))
    assert kubectl("apply", "-f", path).stdout == (
        "inferenceservice.serving.kserve.io/listed created\nconfigmap/z-listed created\n"
    )


def test_get_prints_kserves_columns(kubectl, api):
    kubectl("apply", "-f", kubectl.file("served.yaml", SHORTHAND.format(name="served", uri="pvc://m")))
    assert api.put(
        f"{ISVCS}/served/status", json={**api.get(f"{ISVCS}/served").json(), "status": STATUS}
    ).is_success
    header, row = _table(kubectl("get", "isvc", "served").stdout)
    assert header == ISVC_COLUMNS
    # PREV and PREVROLLEDOUTREVISION are empty: the row's words are the other columns
    assert row[:5] == ["served", "http://served.default.localhost", "True", "100", "served-predictor-00001"]
    assert row[5][-1] in "smhd" and len(row) == 6
    wide_header, wide_row = _table(kubectl("get", "isvc", "served", "-o", "wide").stdout)
    assert wide_header == [*ISVC_COLUMNS, "REVISIONS", "REPLICAS", "DESIRED"]
    assert wide_row[-3:] == ["served-predictor-00001", "1", "1"]
    listed = _table(kubectl("get", "inferenceservices").stdout)
    assert listed[0] == ISVC_COLUMNS and "served" in [row[0] for row in listed[1:]]


def test_get_several_kinds(kubectl):
    output = kubectl("get", "ig,sr,csr,tm").stdout
    assert "NAME" in output and "DISABLED   MODELTYPE" in output
    csr = [
        row
        for row in _table(output)
        if row[0] == "clusterservingruntime.serving.kserve.io/kserve-sklearnserver"
    ]
    assert csr and csr[0][1:3] == ["sklearn", "kserve-container"]


def test_get_all_lists_the_serving_kinds(kubectl):
    path = kubectl.file("every.yaml", SHORTHAND.format(name="every", uri="pvc://models/iris"))
    kubectl("apply", "-n", "category-all", "-f", path)
    output = kubectl("get", "all", "-n", "category-all").stdout
    assert _table(output)[1][0] == "inferenceservice.serving.kserve.io/every"
    assert kubectl("get", "all", "-n", "category-all", "-o", "name").stdout.split() == [
        "inferenceservice.serving.kserve.io/every"
    ]
    resources = kubectl("api-resources", "--categories", "all", "-o", "name").stdout.split()
    assert sorted(resources) == [
        "inferencegraphs.serving.kserve.io",
        "inferenceservices.serving.kserve.io",
        "trainedmodels.serving.kserve.io",
    ]


def test_a_canary_percent_on_a_new_service_is_warned_once(kubectl):
    canary = SHORTHAND.format(name="first-canary", uri="pvc://models/iris").replace(
        "  predictor:\n", "  predictor:\n    canaryTrafficPercent: 10\n"
    )
    path = kubectl.file("first-canary.yaml", canary)
    created = kubectl("apply", "-f", path)
    assert "Warning: spec.predictor.canaryTrafficPercent: accepted but not acted on: a new service's" in (
        created.stderr
    )
    kubectl.file("first-canary.yaml", canary.replace("models/iris", "models/iris-2"))
    assert "canaryTrafficPercent" not in kubectl("apply", "-f", path).stderr


def test_describe_shows_the_object_and_its_events(kubectl, api):
    kubectl("apply", "-f", kubectl.file("told.yaml", SHORTHAND.format(name="told", uri="pvc://m")))
    uid = api.get(f"{ISVCS}/told").json()["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "told.1"},
        "involvedObject": {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": "told",
            "namespace": "default",
            "uid": uid,
        },
        "reason": "RevisionCreated",
        "message": "revision told-predictor-00001 created",
        "type": "Normal",
        "source": {"component": "modelplane"},
    }
    assert api.post("/api/v1/namespaces/default/events", json=event).status_code == 201
    described = kubectl("describe", "isvc", "told").stdout
    assert "Name:         told" in described
    assert "Kind:         InferenceService" in described
    assert "Storage Uri:  pvc://m" in described
    events = described[described.index("Events:") :]
    assert "RevisionCreated" in events and "revision told-predictor-00001 created" in events


def test_edit_patches_the_object(kubectl, api):
    kubectl("apply", "-f", kubectl.file("edited.yaml", SHORTHAND.format(name="edited", uri="pvc://before")))
    editor = kubectl.files / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's#storageUri: pvc://before#storageUri: pvc://after#' \"$1\"\n")
    editor.chmod(0o755)
    result = kubectl("edit", "isvc", "edited", env={"KUBE_EDITOR": str(editor), "EDITOR": str(editor)})
    assert result.stdout == "inferenceservice.serving.kserve.io/edited edited\n"
    assert api.get(f"{ISVCS}/edited").json()["spec"]["predictor"]["model"]["storageUri"] == "pvc://after"


def test_patch_with_a_json_patch(kubectl, api):
    kubectl("apply", "-f", kubectl.file("canary.yaml", SHORTHAND.format(name="canary", uri="pvc://m")))
    operations = [{"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}]
    result = kubectl("patch", "isvc", "canary", "--type=json", "-p", json.dumps(operations))
    assert result.stdout == "inferenceservice.serving.kserve.io/canary patched\n"
    assert api.get(f"{ISVCS}/canary").json()["spec"]["predictor"]["canaryTrafficPercent"] == 10
    failing = [{"op": "replace", "path": "/spec/predictor/minReplicas", "value": 1}]
    refused = kubectl("patch", "isvc", "canary", "--type=json", "-p", json.dumps(failing), check=False)
    assert refused.returncode != 0
    assert "there is no /spec/predictor/minReplicas" in refused.stderr


def test_scale_is_not_found_as_for_a_crd_without_a_scale_subresource(kubectl, api):
    """KServe's CRDs declare no scale subresource: Kubernetes answers NotFound naming the object."""
    kubectl("apply", "-f", kubectl.file("scaled.yaml", SHORTHAND.format(name="scaled", uri="pvc://m")))
    refused = kubectl("scale", "isvc", "scaled", "--replicas=2", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        'Error from server (NotFound): inferenceservices.serving.kserve.io "scaled" has no scale subresource'
    )
    assert "minReplicas and maxReplicas" in refused.stderr
    status = api.get(f"{ISVCS}/scaled/scale").json()
    assert status["details"] == {"name": "scaled", "group": "serving.kserve.io", "kind": "inferenceservices"}
    assert api.get("/api/v1/namespaces/default/configmaps/any/scale").status_code == 404


def test_auth_can_i_and_whoami_answer_what_the_api_serves(kubectl):
    def can_i(*args: str) -> tuple[int, str]:
        result = kubectl("auth", "can-i", *args, check=False)
        return result.returncode, result.stdout.strip()

    assert can_i("create", "isvc") == (0, "yes")
    assert can_i("watch", "inferencegraphs", "-A") == (0, "yes")
    assert can_i("patch", "isvc", "--subresource=status") == (0, "yes")
    assert can_i("get", "/healthz") == (0, "yes")
    assert can_i("deletecollection", "isvc") == (0, "yes")
    assert can_i("escalate", "isvc") == (1, "no - the API does not serve 'escalate' on inferenceservices")
    assert can_i("*", "*") == (0, "yes")  # every verb Kubernetes has for a resource, on every one
    assert can_i("update", "isvc", "--subresource=scale")[0] == 1
    assert can_i("delete", "/healthz")[0] == 1
    assert can_i("create", "selfsubjectaccessreviews") == (0, "yes")  # the reviews are discovered
    assert can_i("get", "selfsubjectaccessreviews")[0] == 1
    assert can_i("list", "services") == (0, "yes")  # served read-only, and empty (kubectl cluster-info)
    assert can_i("get", "svc", "-n", "kube-system") == (0, "yes")
    assert can_i("create", "services") == (1, "no - the API does not serve 'create' on services")
    versions = kubectl("api-versions").stdout.split()
    assert {"authorization.k8s.io/v1", "authentication.k8s.io/v1", "serving.kserve.io/v1beta1"} <= set(
        versions
    )
    listed = kubectl("auth", "can-i", "--list").stdout
    assert (
        "inferenceservices.serving.kserve.io " in listed
        and "[create delete deletecollection get list patch update watch]" in listed
    )
    assert re.search(r"^services +\[\] +\[\] +\[get list\]$", listed, re.M), listed
    assert kubectl("auth", "whoami").stdout.split() == [
        "ATTRIBUTE", "VALUE", "Username", "system:anonymous", "Groups", "[system:unauthenticated]"
    ]  # fmt: skip


def test_server_side_apply_creates_configures_and_shows_its_managed_fields(kubectl, api):
    path = kubectl.file("ssa.yaml", MODEL.format(name="ssa", field="storageUri", uri="pvc://models/ssa"))
    applied = kubectl("apply", "--server-side", "-f", path)
    assert applied.stdout == "inferenceservice.serving.kserve.io/ssa serverside-applied\n"
    version = api.get(f"{ISVCS}/ssa").json()["metadata"]["resourceVersion"]
    kubectl("apply", "--server-side", "-f", path)
    assert api.get(f"{ISVCS}/ssa").json()["metadata"]["resourceVersion"] == version
    assert "managedFields" not in kubectl("get", "isvc", "ssa", "-o", "yaml").stdout
    shown = yaml.safe_load(kubectl("get", "isvc", "ssa", "-o", "yaml", "--show-managed-fields").stdout)
    [entry] = shown["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("kubectl", "Apply", "FieldsV1")
    model = entry["fieldsV1"]["f:spec"]["f:predictor"]["f:model"]
    assert model == {"f:modelFormat": {"f:name": {}}, "f:storageUri": {}}


def test_server_side_apply_conflicts_with_an_edit_until_forced(kubectl, api):
    path = kubectl.file("owned.yaml", MODEL.format(name="owned", field="storageUri", uri="pvc://models/a"))
    kubectl("apply", "--server-side", "-f", path)
    kubectl("patch", "isvc", "owned", "--type=merge", "-p", '{"spec":{"predictor":{"minReplicas":2}}}')
    kubectl.file(
        "owned.yaml",
        MODEL.format(name="owned", field="storageUri", uri="pvc://models/a") + "    minReplicas: 1\n",
    )
    refused = kubectl("apply", "--server-side", "-f", path, check=False)
    assert refused.returncode != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using serving.kserve.io/v1beta1'
        in refused.stderr
    )
    assert ": .spec.predictor.minReplicas" in refused.stderr
    assert "Please review the fields above--they currently have other managers" in refused.stderr
    assert api.get(f"{ISVCS}/owned").json()["spec"]["predictor"]["minReplicas"] == 2
    kubectl("apply", "--server-side", "--force-conflicts", "-f", path)
    stored = api.get(f"{ISVCS}/owned").json()
    assert stored["spec"]["predictor"]["minReplicas"] == 1
    patch_manager = [e for e in stored["metadata"]["managedFields"] if e["manager"] == "kubectl-patch"]
    assert patch_manager == []  # it owned minReplicas only, which the apply took over


def test_server_side_apply_takes_over_a_client_side_apply(kubectl, api):
    """kubectl moves the fields its client-side apply owned to its server-side apply (a JSON patch of
    managedFields), so that a field later left out of the file is removed."""
    path = kubectl.file(
        "moved.yaml",
        MODEL.format(name="moved", field="storageUri", uri="pvc://models/a") + "    minReplicas: 1\n",
    )
    kubectl("apply", "-f", path)
    kubectl("apply", "--server-side", "-f", path)
    managers = {e["manager"] for e in api.get(f"{ISVCS}/moved").json()["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers
    kubectl.file("moved.yaml", MODEL.format(name="moved", field="storageUri", uri="pvc://models/a"))
    kubectl("apply", "--server-side", "-f", path)
    assert "minReplicas" not in api.get(f"{ISVCS}/moved").json()["spec"]["predictor"]


def test_an_update_that_adds_an_object_owns_it_as_kubernetes_records_it(kubectl, api):
    """An Update's manager owns each object its write added (FieldsV1's `.`), as structured-merge-diff
    compares the write with the stored object: a custom resource created whole, labels added later."""
    path = kubectl.file("made.yaml", MODEL.format(name="made", field="storageUri", uri="pvc://models/a"))
    kubectl("create", "-f", path)
    kubectl("label", "isvc", "made", "team=a")
    entries = {e["manager"]: e for e in api.get(f"{ISVCS}/made").json()["metadata"]["managedFields"]}
    assert entries["kubectl-create"]["fieldsV1"]["f:spec"] == {
        ".": {},
        "f:predictor": {
            ".": {},
            "f:model": {".": {}, "f:modelFormat": {".": {}, "f:name": {}}, "f:storageUri": {}},
        },
    }
    assert entries["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}
    # the last label goes: so do the labels (Kubernetes keeps no empty map), and the ownership of them
    kubectl("label", "isvc", "made", "team-")
    metadata = api.get(f"{ISVCS}/made").json()["metadata"]
    assert "labels" not in metadata
    assert {e["manager"] for e in metadata["managedFields"]} == {"kubectl-create"}


def test_server_side_apply_places_new_keyed_items_in_the_applied_order(kubectl, api):
    """A keyed list merges as structured-merge-diff merges it: the applied items in the configuration's
    order, the items only another manager owns kept where they stood."""
    account = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ordered\nsecrets:\n{secrets}\n"

    def applied(manager: str, *names: str) -> list[str]:
        listed = "\n".join(f"- name: {name}" for name in names)
        path = kubectl.file("ordered.yaml", account.format(secrets=listed))
        kubectl("apply", "--server-side", f"--field-manager={manager}", "-f", path)
        got = api.get("/api/v1/namespaces/default/serviceaccounts/ordered").json()
        return [item["name"] for item in got["secrets"]]

    assert applied("alice", "a", "b") == ["a", "b"]
    assert applied("bob", "c", "a") == ["c", "a", "b"]
    assert applied("bob", "a", "d", "c") == ["a", "b", "d", "c"]


def test_dry_runs_store_nothing(kubectl, api):
    path = kubectl.file("dry.yaml", SHORTHAND.format(name="dry", uri="pvc://m"))
    assert "created (server dry run)" in kubectl("apply", "-f", path, "--dry-run=server").stdout
    assert api.get(f"{ISVCS}/dry").status_code == 404
    kubectl("apply", "-f", path)
    assert "deleted (server dry run)" in kubectl("delete", "isvc", "dry", "--dry-run=server").stdout
    assert api.get(f"{ISVCS}/dry").status_code == 200


def test_delete(kubectl, api):
    kubectl("apply", "-f", kubectl.file("gone.yaml", SHORTHAND.format(name="gone", uri="pvc://m")))
    assert kubectl("delete", "isvc", "gone").stdout == 'inferenceservice.serving.kserve.io "gone" deleted\n'
    assert api.get(f"{ISVCS}/gone").status_code == 404
    missing = kubectl("delete", "isvc", "gone", check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_watch_prints_each_change(kubectl, api):
    kubectl("apply", "-f", kubectl.file("watched.yaml", SHORTHAND.format(name="watched", uri="pvc://m")))
    watch = kubectl.popen("get", "isvc", "watched", "--watch", "--output-watch-events")
    stopper = threading.Timer(120, watch.kill)  # a watch that never ends must not hold the suite
    stopper.start()
    try:
        assert watch.stdout is not None
        assert watch.stdout.readline().split()[:2] == ["EVENT", "NAME"]
        assert watch.stdout.readline().split()[:2] == ["ADDED", "watched"]
        kubectl("label", "isvc", "watched", "seen=yes")
        assert watch.stdout.readline().split()[:2] == ["MODIFIED", "watched"]
        kubectl("delete", "isvc", "watched")
        assert watch.stdout.readline().split()[:2] == ["DELETED", "watched"]
    finally:
        stopper.cancel()
        watch.kill()
        watch.wait()
        watch.stdout.close()


SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: storage-config
stringData:
  localMinIO: '{{"type": "s3", "access_key_id": "minio", "secret_access_key": "{value}", "bucket": "models"}}'
"""
SECRETS = "/api/v1/namespaces/default/secrets"


def test_a_secret_applies_again_and_no_read_shows_its_values(kubectl, api):
    path = kubectl.file("secret.yaml", SECRET.format(value="kubectl-secret-one"))
    assert kubectl("apply", "-f", path).stdout == "secret/storage-config created\n"
    version = api.get(f"{SECRETS}/storage-config").json()["metadata"]["resourceVersion"]
    kubectl.file("secret.yaml", SECRET.format(value="kubectl-secret-two"))
    assert kubectl("apply", "-f", path).stdout == "secret/storage-config configured\n"
    assert api.get(f"{SECRETS}/storage-config").json()["metadata"]["resourceVersion"] != version
    got = yaml.safe_load(kubectl("get", "secret", "storage-config", "-o", "yaml").stdout)
    shown = placeholder(
        len(yaml.safe_load(SECRET.format(value="kubectl-secret-two"))["stringData"]["localMinIO"])
    )
    assert got["data"] == {"localMinIO": shown} and "stringData" not in got
    listed = json.loads(kubectl("get", "secrets", "-o", "json").stdout)
    assert [item["data"] for item in listed["items"]] == [{"localMinIO": shown}]
    applied = got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(applied)["stringData"] == {"localMinIO": REDACTED}
    described = kubectl("describe", "secret", "storage-config").stdout
    assert "kubectl-secret" not in described and "minio" not in described.replace("localMinIO", "")
    assert _table(kubectl("get", "secrets").stdout)[0] == ["NAME", "TYPE", "DATA", "AGE"]
    assert _table(kubectl("get", "secrets").stdout)[1][:3] == ["storage-config", "Opaque", "1"]


def test_diff_sees_a_secret_value_changed_at_the_same_size_and_shows_neither(kubectl):
    token = "apiVersion: v1\nkind: Secret\nmetadata: {{name: rotated}}\nstringData: {{token: {value}}}\n"
    path = kubectl.file("rotated.yaml", token.format(value="hunter2"))
    kubectl("apply", "-f", path)
    assert kubectl("diff", "-f", path, check=False).returncode == 0
    kubectl.file("rotated.yaml", token.format(value="hunter3"))  # the same size
    changed = kubectl("diff", "-f", path, check=False)
    assert changed.returncode == 1, changed.stderr
    assert "token: '*** (before)'" in changed.stdout and "token: '*** (after)'" in changed.stdout
    assert "hunter" not in changed.stdout
    assert kubectl("apply", "-f", path).stdout == "secret/rotated configured\n"
    assert kubectl("diff", "-f", path, check=False).returncode == 0


def test_describe_tells_each_secret_value_s_size_and_shows_none(kubectl):
    sizes = "apiVersion: v1\nkind: Secret\nmetadata: {name: sizes}\ndata: {one: eA==, long: %s}\n"
    path = kubectl.file("sizes.yaml", sizes % base64.b64encode(b"y" * 300).decode())
    kubectl("apply", "-f", path)
    described = kubectl("describe", "secret", "sizes").stdout
    assert "long:  300 bytes" in described and "one:   1 bytes" in described and "yyy" not in described
    # An unchanged file changes nothing (kubectl still says `configured`: the values it compares are hidden)
    version = kubectl("get", "secret", "sizes", "-o", "jsonpath={.metadata.resourceVersion}").stdout
    kubectl("apply", "-f", path)
    assert kubectl("get", "secret", "sizes", "-o", "jsonpath={.metadata.resourceVersion}").stdout == version


def test_a_secret_of_bytes_that_are_not_text_is_created(kubectl, api):
    key = kubectl.files / "key.der"
    key.write_bytes(b"\x30\x82\x01\xff\xfe\x00binary")  # a DER key's start: not UTF-8
    created = kubectl("create", "secret", "generic", "keystore", f"--from-file=key.der={key}")
    assert created.stdout == "secret/keystore created\n"
    assert list(api.get(f"{SECRETS}/keystore").json()["data"]) == ["key.der"]


def test_secrets_and_config_maps_kubernetes_would_refuse_are_refused(kubectl):
    typed = "apiVersion: v1\nkind: Secret\nmetadata: {{name: typed}}\ntype: {type}\nstringData: {{a: b}}\n"
    assert kubectl("apply", "-f", kubectl.file("typed.yaml", typed.format(type="Opaque"))).returncode == 0
    retyped = kubectl(
        "apply", "-f", kubectl.file("typed.yaml", typed.format(type="example.com/x")), check=False
    )
    assert 'type: Invalid value: "example.com/x": field is immutable' in retyped.stderr
    tls = kubectl(
        "apply", "-f", kubectl.file("tls.yaml", typed.format(type="kubernetes.io/tls")), check=False
    )
    assert "data[tls.crt]: Required value" in tls.stderr and "data[tls.key]: Required value" in tls.stderr
    big = kubectl.files / "big.txt"
    big.write_bytes(b"a" * 1_500_000)
    for kind in (["secret", "generic"], ["configmap"]):
        refused = kubectl("create", *kind, "big", f"--from-file=big.txt={big}", check=False)
        assert "Too long: may not be more than 1048576 bytes" in refused.stderr


def test_a_storage_config_that_is_not_json_is_refused_without_its_value(kubectl):
    path = kubectl.file(
        "bad-secret.yaml", SECRET.replace("'{{", "'not json {{").format(value="kubectl-hidden")
    )
    refused = kubectl("apply", "-f", path, check=False)
    assert refused.returncode != 0
    assert "data[localMinIO]: Invalid value: a storage config must be a JSON object" in refused.stderr
    assert "kubectl-hidden" not in refused.stderr


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: model-settings
data:
  LOG_LEVEL: {level}
binaryData:
  banner: aGVsbG8=
"""


def test_a_config_map_applies_again_and_reads_back(kubectl, api):
    path = kubectl.file("config-map.yaml", CONFIG_MAP.format(level="debug"))
    assert kubectl("apply", "-f", path).stdout == "configmap/model-settings created\n"
    kubectl.file("config-map.yaml", CONFIG_MAP.format(level="info"))
    assert kubectl("apply", "-f", path).stdout == "configmap/model-settings configured\n"
    got = yaml.safe_load(kubectl("get", "cm", "model-settings", "-o", "yaml").stdout)
    assert got["data"] == {"LOG_LEVEL": "info"} and got["binaryData"] == {"banner": "aGVsbG8="}
    assert _table(kubectl("get", "configmaps").stdout)[1][0] == "model-settings"


def test_a_config_map_kubernetes_would_refuse_is_refused(kubectl):
    path = kubectl.file(
        "bad-config-map.yaml", CONFIG_MAP.format(level="x").replace("aGVsbG8=", "not base64!")
    )
    refused = kubectl("apply", "-f", path, check=False)
    assert refused.returncode != 0
    assert "binaryData[banner]: Invalid value: must be a base64-encoded string" in refused.stderr


OWNED = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}}}]
data: {{a: b}}
"""


def test_owned_objects_go_with_their_owner_unless_orphaned(kubectl):
    for owner, dependent, cascade in (("owner", "owned", "background"), ("keeper", "kept", "orphan")):
        kubectl("create", "configmap", owner, "--from-literal=a=b")
        uid = kubectl("get", "cm", owner, "-o", "jsonpath={.metadata.uid}").stdout
        kubectl(
            "apply",
            "-f",
            kubectl.file(f"{dependent}.yaml", OWNED.format(name=dependent, owner=owner, uid=uid)),
        )
        kubectl("delete", "cm", owner, f"--cascade={cascade}")
    assert kubectl("get", "cm", "owned", check=False).returncode != 0
    assert kubectl("get", "cm", "kept", check=False).returncode == 0


def test_finalizers_are_accepted_with_a_warning(kubectl):
    guarded = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: guarded, finalizers: [example.com/x]}\n"
    applied = kubectl("apply", "-f", kubectl.file("guarded.yaml", guarded))
    assert "Warning: metadata.finalizers: accepted but not acted on: a delete removes the object at once" in (
        applied.stderr
    )


def test_a_graph_field_the_router_ignores_is_accepted_with_a_warning(kubectl):
    graph = (
        "apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\nmetadata: {name: weighed}\n"
        "spec: {nodes: {root: {routerType: Sequence, steps: [{serviceUrl: 'http://127.0.0.1:1/', weight: 5}]}}}\n"
    )
    applied = kubectl("apply", "-f", kubectl.file("weighed.yaml", graph))
    assert applied.returncode == 0, applied.stderr
    assert (
        "Warning: spec.nodes.root.steps[0].weight: ignored in a Sequence node: only a Splitter picks a step "
        "by weight" in applied.stderr
    )


SERVICE_ACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: models
secrets:
{secrets}
"""


def test_a_service_accounts_secrets_merge_by_name_when_applied_again(kubectl, api):
    def applied(*names: str) -> list[str]:
        listed = "\n".join(f"  - name: {name}" for name in names)
        path = kubectl.file("service-account.yaml", SERVICE_ACCOUNT.format(secrets=listed))
        kubectl("apply", "-f", path)
        got = yaml.safe_load(kubectl("get", "sa", "models", "-o", "yaml").stdout)
        return [item["name"] for item in got.get("secrets") or []]

    assert applied("s3creds") == ["s3creds"]
    # kubectl sends the new item and `$setElementOrder/secrets`; a removed one as `$patch: delete`
    assert applied("gcs", "s3creds") == ["gcs", "s3creds"]
    assert applied("s3creds") == ["s3creds"]
    refused = api.patch(
        "/api/v1/namespaces/default/serviceaccounts/models",
        json={"secrets": [{"name": "x", "$patch": "replace"}]},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert refused.status_code == 400 and "$patch: 'replace' is not supported" in refused.json()["message"]


def test_cluster_info_names_the_control_plane_and_finds_no_services(kubectl):
    """cluster-info lists kube-system's Services labelled kubernetes.io/cluster-service=true: there are
    none here (the core `services` list empty), so it prints the control plane's line and succeeds."""
    shown = kubectl("cluster-info")
    assert shown.stdout.splitlines()[0].startswith("Kubernetes control plane is running at http://127.0.0.1:")
    assert kubectl("get", "services").stderr == "No resources found in default namespace.\n"
    assert "NotFound" in kubectl("get", "svc", "x", check=False).stderr
    refused = kubectl("create", "service", "clusterip", "web", "--tcp=80:80", check=False)
    assert refused.returncode != 0 and "modelplane runs no Services" in refused.stderr


def test_version_names_the_server(kubectl):
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    server = versions["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")
    assert server["gitVersion"].startswith("v1.32.0-modelplane.")


def test_kubectl_creates_kubernetes_own_kinds_in_protobuf(kubectl, api):
    """kubectl sends ConfigMaps, Secrets and ServiceAccounts it creates as Kubernetes protobuf."""
    kubectl("create", "configmap", "proto-cm", "--from-literal=a=b", "--from-literal=empty=")
    kubectl("create", "secret", "generic", "proto-secret", "--from-literal=k=v")
    kubectl("create", "serviceaccount", "proto-sa")
    config_map = api.get("/api/v1/namespaces/default/configmaps/proto-cm").json()
    assert (config_map["metadata"]["name"], config_map["data"]) == ("proto-cm", {"a": "b", "empty": ""})
    secret = api.get("/api/v1/namespaces/default/secrets/proto-secret").json()
    assert (secret["type"], list(secret["data"])) == ("Opaque", ["k"])
    assert api.get("/api/v1/namespaces/default/serviceaccounts/proto-sa").status_code == 200
    again = kubectl("create", "configmap", "proto-cm", "--from-literal=a=b", check=False)
    assert 'configmaps "proto-cm" already exists' in again.stderr
    namespace = kubectl("create", "namespace", "proto-ns", check=False)
    assert "namespaces are not objects here: every namespace exists" in namespace.stderr


def test_a_patch_that_removes_the_metadata_is_refused(kubectl, api):
    kubectl("apply", "-f", kubectl.file("kept.yaml", SHORTHAND.format(name="kept", uri="pvc://m")))
    for patch_type, patch in (
        ("merge", {"metadata": None}),
        ("json", [{"op": "remove", "path": "/metadata"}]),
    ):
        refused = kubectl(
            "patch", "isvc", "kept", f"--type={patch_type}", "-p", json.dumps(patch), check=False
        )
        assert refused.returncode != 0
        assert "the name of the object () does not match the name on the URL (kept)" in refused.stderr
    annotations = api.get(f"{ISVCS}/kept").json()["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations


def test_explain_knows_the_metadata_the_api_keeps(kubectl):
    owners = kubectl("explain", "isvc.metadata.ownerReferences").stdout
    assert "FIELD: ownerReferences <[]OwnerReference>" in owners
    assert "uid\t<string> -required-" in owners
    assert "FIELD: finalizers <[]string>" in kubectl("explain", "configmap.metadata.finalizers").stdout


def test_explain_reads_openapi_v2_too(kubectl):
    model = kubectl("explain", "isvc.spec.predictor.model", "--output=plaintext-openapiv2").stdout
    assert "RESOURCE: model <Object>" in model
    assert "storageUri\t<string>" in model and "modelFormat\t<Object>" in model
    metadata = kubectl("explain", "isvc.metadata", "--output=plaintext-openapiv2").stdout
    assert "ObjectMeta is metadata that all persisted resources must have." in metadata
    graph = kubectl("explain", "ig.spec.nodes", "--output=plaintext-openapiv2").stdout
    assert "VERSION:  serving.kserve.io/v1alpha1" in graph


def test_apply_prunes_the_kinds_it_is_allowed_to(kubectl, api):
    for name in ("pruned", "spared"):
        labelled = SHORTHAND.format(name=name, uri="pvc://m").replace(
            "metadata:\n", "metadata:\n  labels: {set: p}\n"
        )
        kubectl("apply", "-f", kubectl.file(f"{name}.yaml", labelled))
    folder = kubectl.files / "pruning"
    folder.mkdir()
    (folder / "spared.yaml").write_text((kubectl.files / "spared.yaml").read_text())
    allowed = "--prune-allowlist=serving.kserve.io/v1beta1/InferenceService"
    result = kubectl("apply", "-f", str(folder), "--prune", "-l", "set=p", allowed)
    assert "inferenceservice.serving.kserve.io/pruned pruned" in result.stdout
    assert api.get(f"{ISVCS}/pruned").status_code == 404
    assert api.get(f"{ISVCS}/spared").status_code == 200


def _modelplane(kubectl: Kubectl, api: httpx.Client, *args: str) -> subprocess.CompletedProcess:
    env = {**kubectl.env, "MODELPLANE_API": str(api.base_url).rstrip("/")}
    return subprocess.run(
        [sys.executable, "-m", "modelplane", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_modelplane_and_kubectl_give_the_same_selection_templates_and_exit_codes(kubectl, api):
    for name in ("sel-a", "sel-b"):
        kubectl(
            "apply",
            "-n",
            "fields",
            "-f",
            kubectl.file(f"{name}.yaml", SHORTHAND.format(name=name, uri="pvc://m")),
        )
    for args in (
        ("get", "isvc", "-n", "fields", "--field-selector", "metadata.name!=sel-a", "-o", "name"),
        (
            "get",
            "isvc",
            "-A",
            "--field-selector",
            "metadata.namespace==fields,metadata.name=sel-a",
            "-o",
            "name",
        ),
        ("get", "isvc", "-n", "fields", "-o", "go-template={{range .items}}{{.metadata.name}} {{end}}"),
        ("get", "isvc", "sel-a", "-n", "fields", "-o", "template={{.spec.predictor.model.modelFormat}}"),
        ("get", "isvc", "sel-a", "-n", "fields", "-o", "go-template={{.metadata.generation}} {{.status.x}}"),
        (
            "get",
            "isvc",
            "sel-a",
            "-n",
            "fields",
            "-o",
            'go-template={{printf "%T %d" .metadata.generation .metadata.generation}} {{eq .metadata.generation 1}}',
        ),
        # A map in a column is printed as Go prints it; a narrow column is still 6 wide.
        (
            "get",
            "isvc",
            "-n",
            "fields",
            "-o",
            "custom-columns=M:.spec.predictor.model,G:.metadata.generation,N:.metadata.name",
        ),
        (
            "get",
            "isvc",
            "sel-a",
            "-n",
            "fields",
            "-o",
            "jsonpath={.metadata.creationTimestamp.x}|{.spec.predictor.model}",
        ),
    ):
        expected = kubectl(*args)
        shown = _modelplane(kubectl, api, *args)
        assert (shown.returncode, shown.stdout) == (0, expected.stdout), (args, shown.stderr)
    failing = ("get", "isvc", "sel-a", "-n", "fields", "-o", "jsonpath={.metadata.name[0]}")
    assert "Error executing template: string is not array or slice." in kubectl(*failing, check=False).stderr
    shown = _modelplane(kubectl, api, *failing)
    assert (shown.returncode, shown.stderr) == (
        1,
        'modelplane get: error executing jsonpath "{.metadata.name[0]}": Error executing template: '
        "string is not array or slice\n",
    )
    refused = ("get", "isvc", "-n", "fields", "--field-selector", "spec.predictor=x")
    assert "field label not supported: spec.predictor" in kubectl(*refused, check=False).stderr
    shown = _modelplane(kubectl, api, *refused)
    assert (shown.returncode, shown.stderr) == (
        1,
        "modelplane get: field label not supported: spec.predictor\n",
    )
    for args in (
        ("get", "isvc", "missing", "-n", "fields"),
        ("get", "isvc", "--bogus"),
        ("delete", "isvc", "missing"),
    ):
        assert kubectl(*args, check=False).returncode == _modelplane(kubectl, api, *args).returncode == 1, (
            args
        )
