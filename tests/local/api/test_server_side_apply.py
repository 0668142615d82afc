"""Server-side apply (`PATCH` with `application/apply-patch+yaml`) and the managedFields every write keeps,
against a real control-plane API process."""

from __future__ import annotations

import json

import pytest
import yaml

from modelplane.api.kinds import SERVICE_ACCOUNT
from modelplane.local.api.field_sets import decoded, encoded, field_set, shown

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
RUNTIMES = "/apis/serving.kserve.io/v1alpha1/namespaces/default/servingruntimes"
CONFIG_MAPS = "/api/v1/namespaces/default/configmaps"
ACCOUNTS = "/api/v1/namespaces/default/serviceaccounts"
APPLY = {"content-type": "application/apply-patch+yaml"}
MERGE = {"content-type": "application/merge-patch+json"}


def isvc(name: str, **predictor) -> dict:
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///models/iris"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"predictor": {"model": model, **predictor}},
    }


def apply(api, path: str, config: dict, manager: str = "alice", force: bool = False):
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return api.patch(path + query, content=yaml.safe_dump(config), headers=APPLY)


def managers(obj: dict) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_apply_creates_and_applying_again_unchanged_writes_nothing(api):
    created = apply(api, f"{ISVCS}/created", isvc("created", minReplicas=1))
    assert created.status_code == 201, created.text
    entry = created.json()["metadata"]["managedFields"][0]
    assert entry["manager"] == "alice" and entry["operation"] == "Apply" and entry["fieldsType"] == "FieldsV1"
    assert entry["apiVersion"] == "serving.kserve.io/v1beta1" and entry["time"]
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:team": {}}},
        "f:spec": {
            "f:predictor": {
                "f:minReplicas": {},
                "f:model": {"f:modelFormat": {"f:name": {}}, "f:storageUri": {}},
            }
        },
    }
    again = apply(api, f"{ISVCS}/created", isvc("created", minReplicas=1))
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert again.json()["metadata"]["managedFields"] == created.json()["metadata"]["managedFields"]
    # A JSON body is YAML too.
    as_json = api.patch(
        f"{ISVCS}/created?fieldManager=alice",
        content=json.dumps(isvc("created", minReplicas=1)),
        headers=APPLY,
    )
    assert as_json.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert api.get(f"{ISVCS}/created").json()["metadata"]["managedFields"] == [entry]


def test_a_field_left_out_of_the_applied_configuration_is_removed(api):
    apply(api, f"{ISVCS}/removed", isvc("removed", minReplicas=1, maxReplicas=3))
    config = isvc("removed", minReplicas=1)
    del config["metadata"]["labels"]
    applied = apply(api, f"{ISVCS}/removed", config).json()
    assert "maxReplicas" not in applied["spec"]["predictor"]
    assert "labels" not in applied["metadata"]
    assert "f:metadata" not in managers(applied)["alice", "Apply"]


def test_a_field_another_manager_owns_with_another_value_is_a_conflict_unless_forced(api):
    assert apply(api, f"{ISVCS}/shared", isvc("shared", minReplicas=1)).status_code == 201
    conflicting = apply(api, f"{ISVCS}/shared", isvc("shared", minReplicas=2), manager="bob")
    assert conflicting.status_code == 409
    status = conflicting.json()
    assert status["reason"] == "Conflict"
    assert (
        status["message"]
        == 'Apply failed with 1 conflict: conflict with "alice": .spec.predictor.minReplicas'
    )
    assert status["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".spec.predictor.minReplicas",
        }
    ]
    # The same value is shared, not a conflict.
    shared = apply(api, f"{ISVCS}/shared", isvc("shared", minReplicas=1), manager="bob")
    assert shared.status_code == 200
    assert {("alice", "Apply"), ("bob", "Apply")} <= set(managers(shared.json()))
    forced = apply(api, f"{ISVCS}/shared", isvc("shared", minReplicas=3), manager="carol", force=True).json()
    assert forced["spec"]["predictor"]["minReplicas"] == 3
    owned = managers(forced)
    assert "f:minReplicas" in owned["carol", "Apply"]["f:spec"]["f:predictor"]
    assert "f:minReplicas" not in owned["alice", "Apply"]["f:spec"]["f:predictor"]
    assert "f:minReplicas" not in owned["bob", "Apply"]["f:spec"]["f:predictor"]
    # alice no longer owns minReplicas: leaving it out of her configuration leaves it where carol set it.
    alice = isvc("shared")
    assert apply(api, f"{ISVCS}/shared", alice).json()["spec"]["predictor"]["minReplicas"] == 3


def test_a_merge_patch_records_an_update_that_a_later_apply_conflicts_with(api):
    apply(api, f"{ISVCS}/edited", isvc("edited", minReplicas=1))
    patched = api.patch(
        f"{ISVCS}/edited",
        json={"spec": {"predictor": {"minReplicas": 2}}},
        headers={**MERGE, "user-agent": "kubectl-edit/v1.32.4 (linux/amd64)"},
    )
    assert patched.status_code == 200
    update = managers(patched.json())["kubectl-edit", "Update"]
    assert update == {"f:spec": {"f:predictor": {"f:minReplicas": {}}}}
    refused = apply(api, f"{ISVCS}/edited", isvc("edited", minReplicas=1))
    assert refused.status_code == 409
    assert refused.json()["message"].startswith(
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using serving.kserve.io/v1beta1 at '
    )
    assert refused.json()["message"].endswith(": .spec.predictor.minReplicas")


def test_several_conflicts_are_listed_by_manager(api):
    apply(api, f"{ISVCS}/many", isvc("many", minReplicas=1, maxReplicas=2))
    refused = apply(api, f"{ISVCS}/many", isvc("many", minReplicas=2, maxReplicas=3), manager="bob").json()
    assert refused["message"] == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n'
        "- .spec.predictor.maxReplicas\n- .spec.predictor.minReplicas"
    )


def test_every_write_keeps_the_managed_fields_and_a_client_may_clear_them(api):
    created = api.post(f"{ISVCS}?fieldManager=kubectl-create", json=isvc("kept"))
    assert managers(created.json())["kubectl-create", "Update"]["f:spec"]["f:predictor"]["f:model"]
    replaced = created.json()
    replaced["metadata"].pop("managedFields")  # a client that does not know them
    replaced["spec"]["predictor"]["minReplicas"] = 1
    put = api.put(f"{ISVCS}/kept", json=replaced, headers={"user-agent": "my-tool/1.0"}).json()
    assert set(managers(put)) == {("kubectl-create", "Update"), ("my-tool", "Update")}
    assert managers(put)["my-tool", "Update"] == {"f:spec": {"f:predictor": {"f:minReplicas": {}}}}
    cleared = api.patch(f"{ISVCS}/kept", json={"metadata": {"managedFields": [{}]}}, headers=MERGE).json()
    assert "managedFields" not in cleared["metadata"]
    assert "managedFields" not in api.get(f"{ISVCS}/kept").json()["metadata"]


def test_a_dry_run_apply_stores_nothing(api):
    answer = api.patch(
        f"{ISVCS}/dry?fieldManager=alice&dryRun=All", content=yaml.safe_dump(isvc("dry")), headers=APPLY
    )
    assert answer.status_code == 201
    assert answer.json()["metadata"]["managedFields"]
    assert api.get(f"{ISVCS}/dry").status_code == 404
    apply(api, f"{ISVCS}/dry", isvc("dry"))
    before = api.get(f"{ISVCS}/dry").json()
    answer = api.patch(
        f"{ISVCS}/dry?fieldManager=bob&dryRun=All",
        content=yaml.safe_dump(isvc("dry", minReplicas=4)),
        headers=APPLY,
    )
    assert answer.json()["spec"]["predictor"]["minReplicas"] == 4
    assert api.get(f"{ISVCS}/dry").json() == before


def test_apply_needs_a_field_manager_and_force_is_for_apply_only(api):
    refused = api.patch(f"{ISVCS}/nameless", content=yaml.safe_dump(isvc("nameless")), headers=APPLY)
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    apply(api, f"{ISVCS}/nameless", isvc("nameless"))
    forced = api.patch(f"{ISVCS}/nameless?force=true", json={}, headers=MERGE)
    assert forced.status_code == 422
    assert "force: Forbidden: may not be specified for non-apply patch" in forced.json()["message"]
    with_fields = isvc("nameless")
    with_fields["metadata"]["managedFields"] = []
    assert (
        apply(api, f"{ISVCS}/nameless", with_fields).json()["message"] == "metadata.managedFields must be nil"
    )


@pytest.mark.parametrize(
    ("metadata", "refusal"),
    [
        ({"name": 5}, "cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string"),
        (5, "cannot unmarshal number into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
        (
            {"name": "typed", "generation": 1.5},
            "cannot unmarshal number 1.5 into Go struct field ObjectMeta.metadata.generation of type int64",
        ),
        (
            {"name": "typed", "finalizers": "a"},
            "cannot unmarshal string into Go struct field ObjectMeta.metadata.finalizers of type []string",
        ),
    ],
)
def test_metadata_of_the_wrong_type_is_a_type_error(api, metadata, refusal):
    """Refused as Kubernetes' decoder refuses such a body (a 400), not read as a missing name."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    message = f'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: {refusal}'
    for refused in (apply(api, f"{CONFIG_MAPS}/typed", config), api.post(CONFIG_MAPS, json=config)):
        assert refused.status_code == 400, refused.text
        assert (refused.json()["reason"], refused.json()["message"]) == ("BadRequest", message)
    runtime = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime", "metadata": {"name": 5}}
    refused = apply(api, f"{RUNTIMES}/typed", runtime)
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        'ServingRuntime in version "v1alpha1" cannot be handled as a ServingRuntime: json: cannot unmarshal '
        "number into Go struct field ObjectMeta.metadata.name of type string"
    )


def test_atomic_lists_are_one_field_and_keyed_lists_merge_item_by_item(api):
    container = {"name": "kserve-container", "image": "kserve/sklearnserver:latest"}
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {"supportedModelFormats": [{"name": "sklearn"}], "containers": [container]},
    }
    assert apply(api, f"{RUNTIMES}/rt", runtime).status_code == 201
    # containers is atomic in KServe's CRD: another list is a conflict over the whole list.
    other = json.loads(json.dumps(runtime))
    other["spec"]["containers"][0]["image"] = "kserve/sklearnserver:v2"
    refused = apply(api, f"{RUNTIMES}/rt", other, manager="bob")
    assert refused.status_code == 409
    assert refused.json()["details"]["causes"][0]["field"] == ".spec.containers"
    # A ServiceAccount's secrets are keyed by name: each manager owns its items.
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "secrets": [{"name": "a"}],
    }
    apply(api, f"{ACCOUNTS}/sa", account)
    both = apply(api, f"{ACCOUNTS}/sa", {**account, "secrets": [{"name": "b"}]}, manager="bob").json()
    assert both["secrets"] == [{"name": "a"}, {"name": "b"}]
    assert managers(both)["bob", "Apply"] == {"f:secrets": {'k:{"name":"b"}': {".": {}, "f:name": {}}}}
    left = apply(api, f"{ACCOUNTS}/sa", {**account, "secrets": []}).json()
    assert left["secrets"] == [{"name": "b"}]
    assert field_set(both, SERVICE_ACCOUNT) >= {("f:secrets", 'k:{"name":"a"}', "f:name")}


def test_config_maps_apply_by_key(api):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    assert apply(api, f"{CONFIG_MAPS}/settings", config).status_code == 201
    other = {**config, "data": {"b": "2"}}
    both = apply(api, f"{CONFIG_MAPS}/settings", other, manager="bob").json()
    assert both["data"] == {"a": "1", "b": "2"}
    config["data"] = {}
    left = apply(api, f"{CONFIG_MAPS}/settings", config).json()
    assert left["data"] == {"b": "2"}


def test_field_sets_encode_as_fieldsv1_and_print_as_kubernetes_prints_paths():
    paths = {
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:env", 'k:{"name":"A"}'),
        ("f:spec", "f:env", 'k:{"name":"A"}', "f:value"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
    }
    tree = encoded(paths)
    assert tree["f:spec"]["f:env"]['k:{"name":"A"}'] == {".": {}, "f:value": {}}
    assert decoded(tree) == paths
    assert shown(("f:spec", "f:env", 'k:{"name":"A"}', "f:value")) == '.spec.env[name="A"].value'
    assert shown(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'
    with pytest.raises(ValueError):
        decoded({"x": {}})


def test_lightkube_applies_and_conflicts(api):
    lightkube = pytest.importorskip("lightkube")
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "modelplane", "cluster": {"server": str(api.base_url).rstrip("/")}}],
            "users": [{"name": "anonymous", "user": {}}],
            "contexts": [{"name": "modelplane", "context": {"cluster": "modelplane", "user": "anonymous"}}],
            "current-context": "modelplane",
        }
    )
    client = lightkube.Client(config, namespace="default")
    settings = ConfigMap(metadata=ObjectMeta(name="lightkube"), data={"mode": "fast"})
    created = client.apply(settings, field_manager="operator")
    assert created.data == {"mode": "fast"}
    assert [(e.manager, e.operation) for e in created.metadata.managedFields] == [("operator", "Apply")]
    again = client.apply(settings, field_manager="operator")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion
    with pytest.raises(ApiError) as refused:
        client.apply(
            ConfigMap(metadata=ObjectMeta(name="lightkube"), data={"mode": "slow"}), field_manager="other"
        )
    assert refused.value.status.code == 409
    assert (
        refused.value.status.message == 'Apply failed with 1 conflict: conflict with "operator": .data.mode'
    )
    forced = client.apply(
        ConfigMap(metadata=ObjectMeta(name="lightkube"), data={"mode": "slow"}),
        field_manager="other",
        force=True,
    )
    assert forced.data == {"mode": "slow"}


def test_the_modelplane_client_writes_as_modelplane_and_prints_no_managed_fields(api, capsys):
    from modelplane.api.kinds import CONFIG_MAP
    from modelplane.cli.output import print_structured
    from modelplane.local.api.client import ControlPlaneClient

    client = ControlPlaneClient(str(api.base_url))
    try:
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cli"}, "data": {"a": "1"}}
        created = client.create(config, CONFIG_MAP, "default")
    finally:
        client.close()
    assert [e["manager"] for e in created["metadata"]["managedFields"]] == ["modelplane"]
    print_structured({"kind": "List", "items": [created]}, "yaml")
    assert "managedFields" not in capsys.readouterr().out


@pytest.mark.parametrize("manager", ["m" * 129, "tab\there", "line\nbreak"])
def test_an_apply_with_a_field_manager_too_long_or_unprintable_is_invalid(api, manager):
    config = yaml.safe_dump(isvc("odd-manager"))
    refused = api.patch(
        f"{ISVCS}/odd-manager", params={"fieldManager": manager}, content=config, headers=APPLY
    )
    assert refused.status_code == 422, refused.text
    assert (
        "must be between 0 and 128 characters and consist of printable characters"
        in refused.json()["message"]
    )
    assert api.get(f"{ISVCS}/odd-manager").status_code == 404


@pytest.mark.parametrize(
    "entry",
    [
        {"manager": "x", "operation": "Update", "time": True, "fieldsV1": {"f:spec": {}}},
        {"manager": 5, "operation": "Update", "fieldsV1": {"f:spec": {}}},
        {"manager": "x", "operation": "Delete", "fieldsV1": {"f:spec": {}}},
        {"manager": "x", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {"f:spec": {}}},
        {"manager": "x", "operation": "Apply", "fieldsV1": {"f:spec": {}}, "subresource": ["status"]},
    ],
)
def test_managed_fields_that_are_not_entries_are_ignored_and_the_stored_ones_kept(api, entry):
    """As Kubernetes, which keeps the live managedFields when the request's cannot be decoded."""
    created = api.post(f"{ISVCS}?fieldManager=maker", json=isvc("odd-entry")).json()
    created["metadata"]["managedFields"] = [entry]
    created["spec"]["predictor"]["minReplicas"] = 2
    replaced = api.put(f"{ISVCS}/odd-entry", json=created)
    assert replaced.status_code == 200, replaced.text
    assert set(managers(replaced.json())) == {("maker", "Update"), ("python-httpx", "Update")}
    applied = apply(api, f"{ISVCS}/odd-entry", isvc("odd-entry", minReplicas=3), force=True)
    assert applied.status_code == 200, applied.text
    assert api.delete(f"{ISVCS}/odd-entry").status_code == 200
