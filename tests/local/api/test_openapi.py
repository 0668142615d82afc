"""The OpenAPI v3 documents of the control-plane API, as kubectl reads them, from a real API process."""

from __future__ import annotations

import json

import httpx

from modelplane.api.kinds import INFERENCE_SERVICE, KINDS
from modelplane.api.schema import crd
from modelplane.protocol.protobuf_wire import wire_fields


def _documents(api: httpx.Client) -> dict[str, dict]:
    links = api.get("/openapi/v3").json()["paths"]
    return {path: api.get(link["serverRelativeURL"]).json() for path, link in links.items()}


def test_discovery_links_each_group_version(api):
    links = api.get("/openapi/v3").json()["paths"]
    assert set(links) == {"apis/serving.kserve.io/v1beta1", "apis/serving.kserve.io/v1alpha1", "api/v1"}
    for path, link in links.items():
        assert link["serverRelativeURL"].startswith(f"/openapi/v3/{path}?hash=")


def test_a_linked_document_may_be_cached_for_good_an_unlinked_one_not(api):
    link = api.get("/openapi/v3").json()["paths"]["apis/serving.kserve.io/v1beta1"]["serverRelativeURL"]
    linked = api.get(link)
    assert linked.headers["cache-control"] == "public, immutable"
    plain = api.get("/openapi/v3/apis/serving.kserve.io/v1beta1")
    assert plain.headers["cache-control"] == "no-cache, private"
    assert plain.content == linked.content
    assert linked.headers["etag"].strip('"') == link.split("hash=")[1]


def test_unknown_group_versions_are_not_found(api):
    assert api.get("/openapi/v3/apis/serving.kserve.io/v9").status_code == 404
    assert api.get("/openapi/v3/apis/apps/v1").status_code == 404
    assert api.post("/openapi/v3", json={}).status_code == 405


def test_each_kinds_patch_takes_field_validation(api):
    """kubectl's test (queryParamVerifierV3): a PATCH operation tagged with the kind's
    group-version-kind that takes `fieldValidation` in the query. Without it kubectl would check
    fields itself, from the OpenAPI v2 document."""
    documents = _documents(api)
    for kind in KINDS:
        document = documents[f"apis/{kind.group}/{kind.version}" if kind.group else "api/v1"]
        gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}
        patches = [
            item["patch"]
            for item in document["paths"].values()
            if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk
        ]
        assert patches, kind.kind
        for patch in patches:
            assert {"name": "fieldValidation", "in": "query"}.items() <= next(
                p for p in patch["parameters"] if p["name"] == "fieldValidation"
            ).items()


def test_the_schemas_are_the_crds_with_their_kind(api):
    document = _documents(api)["apis/serving.kserve.io/v1beta1"]
    schemas = document["components"]["schemas"]
    isvc = schemas["io.kserve.serving.v1beta1.InferenceService"]
    assert isvc["x-kubernetes-group-version-kind"] == [
        {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}
    ]
    (version,) = crd(INFERENCE_SERVICE)["spec"]["versions"]
    assert isvc["properties"]["spec"] == version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert isvc["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert document["openapi"].startswith("3.")


def test_every_reference_resolves(api):
    for path, document in _documents(api).items():
        schemas = document["components"]["schemas"]
        text = json.dumps(document)
        references = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
        assert references, path
        assert references <= set(schemas), path


def test_paths_name_the_served_urls(api):
    paths = _documents(api)["apis/serving.kserve.io/v1alpha1"]["paths"]
    assert "/apis/serving.kserve.io/v1alpha1/namespaces/{namespace}/servingruntimes/{name}" in paths
    assert "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes/{name}" in paths
    assert "/apis/serving.kserve.io/v1alpha1/namespaces/{namespace}/clusterservingruntimes" not in paths
    assert "/apis/serving.kserve.io/v1alpha1/inferencegraphs" in paths  # every namespace


def test_openapi_v2_declares_the_schemas_as_kubernetes_converts_a_crds(api):
    """As apiextensions-apiserver publishes a CRD's schema in v2: no junctors, and untyped where unknown
    fields are kept (kubectl cannot read those typed)."""
    document = api.get("/openapi/v2").json()
    assert document["swagger"] == "2.0" and document["paths"] == {}
    definitions = document["definitions"]
    isvc = definitions["io.kserve.serving.v1beta1.InferenceService"]
    assert isvc["x-kubernetes-group-version-kind"] == [
        {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}
    ]
    assert isvc["properties"]["metadata"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert "type" not in isvc["properties"]["status"] and "properties" not in isvc["properties"]["status"]
    model = isvc["properties"]["spec"]["properties"]["predictor"]["properties"]["model"]
    cpu = model["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert "type" not in cpu and "anyOf" not in cpu
    text = json.dumps(document)
    references = {part.split('"')[0] for part in text.split('"$ref": "#/definitions/')[1:]}
    assert references and references <= set(definitions)
    assert "#/components/" not in text and '"anyOf"' not in text


def test_openapi_v2_in_protobuf_holds_each_definition(api):
    protobuf = api.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    )
    assert protobuf.headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    fields = {number: value for number, _, value in wire_fields(protobuf.content)}
    assert fields[1] == b"2.0"
    names = [
        dict((n, v) for n, _, v in wire_fields(named))[1].decode()
        for _, _, named in wire_fields(fields[9])  # Definitions.additional_properties: NamedSchema
    ]
    assert names == sorted(api.get("/openapi/v2").json()["definitions"])
