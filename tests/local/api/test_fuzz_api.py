"""The control-plane API fuzzed with hypothesis: resources drawn from the CRD schemas themselves
(tests/api/strategies.py), written to a real API process. Whatever comes, the answer is below 500 and
a refusal says why; bounded to a few seconds (CI runs it)."""

from __future__ import annotations

import itertools
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, SERVING_RUNTIME, TRAINED_MODEL
from tests.api.strategies import documents

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
