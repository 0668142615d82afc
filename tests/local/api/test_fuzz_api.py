"""The control-plane API fuzzed with hypothesis: resources drawn from the CRD schemas themselves
(tests/api/strategies.py), written to a real API process. Whatever comes, the answer is below 500 and
a refusal says why; bounded to a few seconds (CI runs it)."""

from __future__ import annotations

import itertools
import json
import os

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, SERVING_RUNTIME, TRAINED_MODEL
from tests.api.strategies import documents
from tests.local.api.test_server_side_apply import APPLY, ISVCS, isvc

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

KINDS = {
    INFERENCE_SERVICE: ("serving.kserve.io/v1beta1", "inferenceservices"),
    INFERENCE_GRAPH: ("serving.kserve.io/v1alpha1", "inferencegraphs"),
    SERVING_RUNTIME: ("serving.kserve.io/v1alpha1", "servingruntimes"),
    TRAINED_MODEL: ("serving.kserve.io/v1alpha1", "trainedmodels"),
}
NAMES = (f"fuzz-{n}" for n in itertools.count())


def write(api: httpx.Client, kind, spec: object) -> httpx.Response:
    api_version, plural = KINDS[kind]
    document = {"apiVersion": api_version, "kind": kind.kind, "metadata": {"name": next(NAMES)}, "spec": spec}
    return api.post(f"/apis/{api_version}/namespaces/default/{plural}", json=document)


@pytest.mark.parametrize("kind", list(KINDS), ids=lambda kind: kind.kind)
@FUZZ
@given(data=st.data())
def test_any_resource_is_answered_without_a_server_error(api, kind, data):
    response = write(api, kind, data.draw(documents(kind)))
    print(
        "STAT", kind.kind, response.status_code, response.text[100:300] if response.status_code >= 400 else ""
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["message"]


def test_the_api_serves_on_after_the_fuzzing(api):
    assert api.get("/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices").status_code == 200


# Server-side apply and managedFields: whatever entries a client writes, and whatever it applies.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=12,
)
path_elements = st.one_of(
    st.sampled_from(
        ["f:spec", "f:metadata", "f:labels", "f:predictor", "f:minReplicas", "f:status", ".", "x", ""]
    ),
    st.builds(str.__add__, st.sampled_from(["f:", "k:", "v:", "i:"]), st.text(max_size=10)),
    json_values.map(lambda value: "k:" + json.dumps(value)),
)
fields_v1 = st.recursive(
    st.just({}) | json_values, lambda c: st.dictionaries(path_elements, c, max_size=4), max_leaves=16
)
managed_entries = st.fixed_dictionaries(
    {},
    optional={
        "manager": st.text(max_size=10) | json_values,
        "operation": st.sampled_from(["Apply", "Update"]) | json_values,
        "apiVersion": st.just("serving.kserve.io/v1beta1") | json_values,
        "time": st.just("2025-01-01T00:00:00Z") | json_values,
        "fieldsType": st.just("FieldsV1") | json_values,
        "fieldsV1": fields_v1,
        "subresource": st.sampled_from(["", "status"]) | json_values,
    },
)


def assert_client_error_at_most(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["message"]


@FUZZ
@given(entries=st.lists(managed_entries | json_values, max_size=3) | json_values, put=st.booleans())
def test_any_managed_fields_written_leave_an_object_that_serves_on(api, entries, put):
    name = next(NAMES)
    created = api.post(f"{ISVCS}?fieldManager=first", json=isvc(name))
    assert created.status_code == 201, created.text
    if put:
        replaced = created.json()
        replaced["metadata"]["managedFields"] = entries
        replaced["spec"]["predictor"]["minReplicas"] = 2
        assert_client_error_at_most(api.put(f"{ISVCS}/{name}", json=replaced))
    else:
        patch = {"metadata": {"managedFields": entries}}
        merge = {"content-type": "application/merge-patch+json"}
        assert_client_error_at_most(api.patch(f"{ISVCS}/{name}", json=patch, headers=merge))
    for force in ("false", "true"):
        applied = api.patch(
            f"{ISVCS}/{name}",
            params={"fieldManager": "second", "force": force},
            content=yaml.safe_dump(isvc(name, minReplicas=3)),
            headers=APPLY,
        )
        assert_client_error_at_most(applied)
    assert api.get(f"{ISVCS}/{name}").status_code == 200
    assert api.get(ISVCS).status_code == 200


def test_escaped_surrogates_in_a_yaml_body_are_read_as_json_reads_them(api):
    """A pair is one character, a lone one U+FFFD (Go's JSON decoder's reading), not a 500."""
    resource = isvc("surrogates")
    resource["metadata"]["labels"] = {"team": "x\U0001f600\ud800"}
    body = json.dumps(resource)
    assert "\\ud83d\\ude00\\ud800" in body
    applied = api.patch(f"{ISVCS}/surrogates?fieldManager=m", content=body, headers=APPLY)
    assert applied.status_code == 422, applied.text  # not a valid label value, as Kubernetes says
    resource["metadata"]["annotations"] = resource["metadata"].pop("labels")
    applied = api.patch(f"{ISVCS}/surrogates?fieldManager=m", content=json.dumps(resource), headers=APPLY)
    assert applied.status_code == 201, applied.text
    assert applied.json()["metadata"]["annotations"]["team"] == "x\U0001f600\ufffd"


@FUZZ
@given(
    config=json_values,
    merged=st.booleans(),
    manager=st.none() | st.text(max_size=200),
    force=st.none() | st.text(max_size=6),
)
def test_any_apply_is_answered_without_a_server_error_and_a_refusal_changes_nothing(
    api, config, merged, manager, force
):
    name = next(NAMES)
    first = api.patch(f"{ISVCS}/{name}?fieldManager=first", content=yaml.safe_dump(isvc(name)), headers=APPLY)
    assert first.status_code == 201, first.text
    stored = api.get(f"{ISVCS}/{name}").json()
    body = isvc(name)
    if merged and isinstance(config, dict):
        body["spec"]["predictor"].update(config)
    else:
        body = config
    params = {key: value for key, value in (("fieldManager", manager), ("force", force)) if value is not None}
    # As JSON (which YAML reads too), its characters beyond the BMP written as escaped surrogate pairs.
    applied = api.patch(f"{ISVCS}/{name}", params=params, content=json.dumps(body), headers=APPLY)
    assert_client_error_at_most(applied)
    if applied.status_code >= 400:
        assert api.get(f"{ISVCS}/{name}").json() == stored
