"""KServe's own samples through the control-plane API: the fields a schema does not know are named in
`Warning` headers on every write, the all-or-nothing apply included, and on a refusal too (as
Kubernetes sends a request's warnings with its error), so a refusal that comes of a dropped field says
which field it was."""

from __future__ import annotations

import yaml

APPLY = "/modelplane/v1/apply"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"

# Trimmed from KServe's docs/samples/explanation/alibi/income/income.yaml: `alibi` left the CRD, so the
# explainer is empty once it is pruned, and KServe's webhook refuses it.
INCOME = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: income
spec:
  predictor:
    sklearn:
      storageUri: gs://seldon-models/sklearn/income/model
  explainer:
    alibi:
      type: AnchorTabular
      storageUri: gs://kfserving-examples/models/sklearn/1.3/income/explainer
"""

# Trimmed from KServe's docs/samples/v1beta1/torchserve/v1/bloom/bloom-560m.yaml: `spec.nodeName` is no
# field of an InferenceService (a predictor's pod spec has one).
BLOOM = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: torchserve-bloom-560m
spec:
  predictor:
    pytorch:
      storageUri: gs://kfserving-examples/models/torchserve/llm/Huggingface_accelerate/bloom
  nodeName: node1
"""


def _list(*documents: str) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(d) for d in documents]}


def _warned(response, field: str) -> bool:
    """Whether a `Warning` header names `field` as unknown."""
    return any(f'unknown field \\"{field}\\"' in w for w in response.headers.get_list("warning"))


def test_apply_names_unknown_fields_of_an_accepted_item(api):
    response = api.post(APPLY, params={"dryRun": "All"}, json=_list(BLOOM))
    assert response.status_code == 200, response.text
    assert _warned(response, "spec.nodeName"), response.headers
    assert "nodeName" not in response.json()["items"][0]["object"]["spec"]


def test_apply_names_unknown_fields_of_a_refused_item(api):
    response = api.post(APPLY, params={"dryRun": "All"}, json=_list(INCOME))
    assert response.status_code == 422
    assert "exactly one of [ART, PodSpec, ComponentExtensionSpec]" in response.json()["message"]
    assert _warned(response, "spec.explainer.alibi"), response.headers


def test_create_names_unknown_fields_of_a_refused_object(api):
    response = api.post(ISVCS, params={"dryRun": "All"}, json=yaml.safe_load(INCOME))
    assert response.status_code == 422
    assert _warned(response, "spec.explainer.alibi"), response.headers


def test_apply_takes_field_validation_and_dry_run_as_other_writes_do(api):
    strict = api.post(APPLY, params={"fieldValidation": "Strict"}, json=_list(BLOOM))
    assert strict.status_code == 400
    assert 'unknown field "spec.nodeName"' in strict.json()["message"]
    # A dryRun value other than All is refused, not taken as a real write.
    wrong = api.post(APPLY, params={"dryRun": "true"}, json=_list(BLOOM))
    assert wrong.status_code == 400
    assert 'dryRun: Unsupported value: "true"' in wrong.json()["message"]
    assert api.get(f"{ISVCS}/torchserve-bloom-560m").status_code == 404
