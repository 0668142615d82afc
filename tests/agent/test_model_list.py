"""Reading KServe's models.json: what the operator writes is what the agent reads; an entry that cannot
be a model folder or has no storageUri is left out, saying why; a document that is not a list is refused."""

from __future__ import annotations

import json

import pytest

from modelplane.agent.model_list import ModelListError, WantedModel, parse_model_list, spec_digest
from modelplane.kube.trained_models import MODELS_KEY, model_config


def trained_model(name: str, uri: str, memory: str = "64Mi") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "inferenceService": "mms",
            "model": {"storageUri": uri, "framework": "sklearn", "memory": memory},
        },
    }


def test_what_the_operator_lists_is_what_the_agent_reads():
    isvc = {"metadata": {"name": "mms", "namespace": "default"}}
    listed = [trained_model("iris", "s3://models/iris"), trained_model("other", "gs://b/o")]
    config = model_config(isvc, "default", listed)
    models, skipped = parse_model_list(config["data"][MODELS_KEY])
    assert skipped == []
    assert sorted(models) == ["iris", "other"]
    spec = {"storageUri": "s3://models/iris", "framework": "sklearn", "memory": "64Mi"}
    assert models["iris"] == WantedModel("s3://models/iris", spec_digest(spec))


def test_a_changed_spec_changes_the_digest():
    first = parse_model_list(
        json.dumps([{"modelName": "m", "modelSpec": {"storageUri": "s3://a", "memory": "1Mi"}}])
    )
    second = parse_model_list(
        json.dumps([{"modelName": "m", "modelSpec": {"storageUri": "s3://a", "memory": "2Mi"}}])
    )
    assert first[0]["m"].digest != second[0]["m"].digest


def test_entries_that_cannot_be_models_are_left_out():
    document = [
        {"modelName": "../../etc", "modelSpec": {"storageUri": "s3://a"}},
        {"modelName": "nouri", "modelSpec": {"framework": "sklearn"}},
        "not an object",
        {"modelName": "good", "modelSpec": {"storageUri": "s3://good"}},
        {"modelName": "good", "modelSpec": {"storageUri": "s3://again"}},
    ]
    models, skipped = parse_model_list(json.dumps(document))
    assert list(models) == ["good"] and models["good"].storage_uri == "s3://good"
    assert [why.split(":")[0] for why in skipped] == ["entry 0", "model nouri", "entry 2", "model good"]


@pytest.mark.parametrize("text", ["[{", '{"modelName": "x"}', "null"])
def test_a_document_that_is_not_a_list_is_refused(text):
    with pytest.raises(ModelListError):
        parse_model_list(text)
