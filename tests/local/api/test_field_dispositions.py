"""Every field a user can set is acted on, refused, or accepted with a warning: the CRD schemas walked
leaf by leaf against `api/field_dispositions.py`; warnings on a real `apply` and in the status of a real
`modelplane up`; refusals from a real control-plane API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from modelplane.api.kinds import (
    CLUSTER_SERVING_RUNTIME,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    SERVING_RUNTIME,
    TRAINED_MODEL,
)
from modelplane.api.schema import openapi_schema
from modelplane.local.api.field_dispositions import FIELDS, Table, disposition_docs, pattern_segments
from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

KINDS = (INFERENCE_SERVICE, INFERENCE_GRAPH, SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME, TRAINED_MODEL)
DOCS = Path(__file__).parents[3] / "docs" / "platform.md"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
GRAPHS = "/apis/serving.kserve.io/v1alpha1/namespaces/default/inferencegraphs"
NO_VOLUME_KIND = "only configMap, secret, downwardAPI, projected, emptyDir, persistentVolumeClaim and hostPath volumes are made"


def leaves(schema: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf field of a schema, as segments: `[]` for a list's items, `{}` for a map's values."""
    items, extra = schema.get("items"), schema.get("additionalProperties")
    if schema.get("type") == "array" and isinstance(items, dict):
        yield from leaves(items, (*path, "[]"))
    elif schema.get("properties"):
        for name, child in schema["properties"].items():
            yield from leaves(child, (*path, name))
    elif isinstance(extra, dict) and (extra.get("properties") or extra.get("type") == "array"):
        yield from leaves(extra, (*path, "{}"))
    else:
        yield path


def uncovered(kind: str, table: Table) -> list[str]:
    """The leaves of a kind's schema that no rule of `table` covers."""
    patterns = {pattern_segments(pattern) for pattern in table}
    return [
        "".join(part if part in ("[]", "{}") else f".{part}" for part in leaf).lstrip(".")
        for leaf in leaves(openapi_schema(next(k for k in KINDS if k.kind == kind)))
        if not any(leaf[:length] in patterns for length in range(1, len(leaf) + 1))
    ]


@pytest.mark.parametrize("kind", [kind.kind for kind in KINDS])
def test_every_leaf_field_of_the_crd_is_acted_on_warned_or_refused(kind):
    assert uncovered(kind, FIELDS[kind]) == []


def test_a_field_without_a_rule_is_named():
    table = dict(FIELDS["InferenceService"])
    del table["spec.transformer.containers[].livenessProbe"]
    missing = uncovered("InferenceService", table)
    assert "spec.transformer.containers[].livenessProbe.httpGet.path" in missing
    assert all(".livenessProbe" in leaf and leaf.startswith("spec.transformer.") for leaf in missing)


def test_the_docs_list_the_dispositions():
    assert disposition_docs() in DOCS.read_text(), (
        "regenerate: python3 -m modelplane.local.api.field_dispositions"
    )


# ---- through a real control-plane API ----


def service(name: str, predictor: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


SKLEARN = {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m/1"}


def warnings(response: httpx.Response) -> list[str]:
    return response.headers.get_list("warning")


def test_a_write_answers_a_warning_for_each_field_not_acted_on(api):
    model = {
        **SKLEARN,
        "lifecycle": {"preStop": {"tcpSocket": {"port": 8080}}},
        "imagePullPolicy": "Always",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
    }
    shared = {"name": "shared", "nfs": {"server": "10.0.0.1", "path": "/exports"}}
    predictor = {"model": model, "volumes": [{"name": "cache", "emptyDir": {}}, shared]}
    created = api.post(ISVCS, json=service("warned", predictor))
    assert created.status_code == 201, created.text
    said = warnings(created)
    assert (
        '299 - "spec.predictor.model.lifecycle.preStop.tcpSocket: accepted but not acted on: Kubernetes '
        'keeps it for compatibility and does not run it; neither does modelplane up"' in said
    )
    assert any(w.startswith('299 - "spec.predictor.model.imagePullPolicy: accepted but not') for w in said)
    assert f'299 - "spec.predictor.volumes: accepted but not acted on: {NO_VOLUME_KIND}"' in said
    assert len(said) == 3, said  # a port's protocol TCP asks for nothing: said nothing of

    patched = api.patch(
        f"{ISVCS}/warned",
        json={"spec": {"predictor": {"volumes": None, "activeDeadlineSeconds": 30}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert any(
        "spec.predictor.activeDeadlineSeconds: accepted but not acted on" in w for w in warnings(patched)
    )
    assert not any("spec.predictor.volumes" in w for w in warnings(patched))


def test_a_service_that_asks_for_nothing_unhonored_gets_no_warning(api):
    created = api.post(ISVCS, json=service("plain", {"model": SKLEARN, "minReplicas": 1}))
    assert created.status_code == 201 and warnings(created) == []
    # Nor for what defaulting writes (an ART explainer's runtimeVersion).
    explained = service("explained", {"model": SKLEARN})
    explained["spec"]["explainer"] = {"art": {"type": "SquareAttack"}}
    created = api.post(ISVCS, json=explained)
    assert created.status_code == 201 and warnings(created) == []


def test_refused_fields_are_answered_with_their_message_and_not_stored(api):
    probe = {"exec": {"command": ["true"]}, "successThreshold": 2}
    many = service("many", {"model": {**SKLEARN, "livenessProbe": probe}})
    refused = api.post(ISVCS, json=many)
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"] == (
        'InferenceService.serving.kserve.io "many" is invalid: '
        "spec.predictor.model.livenessProbe.successThreshold: must be 1"
    )
    secret = service("secret", {"model": {**SKLEARN, "confidential": {"enabled": True}}})
    refused = api.post(ISVCS, json=secret)
    assert refused.status_code == 422
    assert (
        "spec.predictor.model.confidential.enabled: confidential model serving needs"
        in refused.json()["message"]
    )
    assert api.get(f"{ISVCS}/many").status_code == 404 and api.get(f"{ISVCS}/secret").status_code == 404
    # Not enabled, it asks for nothing: accepted.
    plain = service("not-secret", {"model": {**SKLEARN, "confidential": {"enabled": False}}})
    assert api.post(ISVCS, json=plain).status_code == 201


# ---- on `modelplane up`: `Warning:` lines of `modelplane apply`, and the status ----


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    with running_platform(tmp_path_factory.mktemp("mp-fields")) as running:
        yield running


def apply(platform: PlatformProcess, tmp_path: Path, resource: dict) -> tuple[Path, str]:
    path = tmp_path / f"{resource['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(resource, sort_keys=False))
    return path, platform.cli("apply", "-f", str(path)).stderr


def fields_honored(platform: PlatformProcess, collection: str, name: str) -> dict:
    def condition() -> dict | None:
        response = httpx.get(f"{platform.api_url}{collection}/{name}", timeout=30)
        conditions = (response.json().get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "FieldsHonored"), None)

    return wait_until(condition, f"{name}'s FieldsHonored condition", platform)


def test_apply_prints_warnings_and_the_status_keeps_them(platform, tmp_path):
    container = {
        "name": "kserve-container",
        "image": "example.com/own-server:1",  # not one modelplane knows: it does not run, which is enough
        "terminationMessagePath": "/dev/termination-log",
        "securityContext": {"runAsUser": 1000},
    }
    path, said = apply(platform, tmp_path, service("probed", {"containers": [container]}))
    assert (
        f"Warning: {path}:10: spec.predictor.containers[0].terminationMessagePath: accepted but not acted on: "
        "an exit is described from the replica's log"
    ) in said
    assert "spec.predictor.containers[0].securityContext: accepted but not acted on" in said
    message = fields_honored(platform, ISVCS, "probed")["message"]
    assert "spec.predictor.containers[0].terminationMessagePath (an exit is described" in message
    assert "spec.predictor.containers[0].securityContext (a replica runs as the user" in message

    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "routed"},
        "spec": {
            "nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceName": "probed"}]}},
            "serviceAccountName": "router",
        },
    }
    path, said = apply(platform, tmp_path, graph)
    assert f"Warning: {path}:11: spec.serviceAccountName: accepted but not acted on" in said
    honored = fields_honored(platform, GRAPHS, "routed")
    assert (honored["status"], honored["reason"]) == ("False", "NotHonoredOnOneMachine")
    assert "spec.serviceAccountName (the router calls the services through the gateway" in honored["message"]
