"""TrainedModel webhook rules."""

from __future__ import annotations

import pytest

from modelplane.api import FieldError, admit

from .helpers import fields, messages, rejection, sample


def trained_model(
    name: str = "model1", storage_uri: str = "s3://bucket/model", memory: object = "256Mi"
) -> dict:
    resource = sample("trained-model.yaml")
    resource["metadata"]["name"] = name
    resource["spec"]["model"]["storageUri"] = storage_uri
    resource["spec"]["model"]["memory"] = memory
    return resource


@pytest.mark.parametrize(
    "uri", ["s3://b/m", "gs://b/m", "https://h/m", "http://h/m", "file:///m", "/models/m", "pvc://claim/m"]
)
def test_supported_storage_uris(uri):
    admit(trained_model(storage_uri=uri))


def test_unsupported_storage_uri():
    assert rejection(trained_model(storage_uri="hdfs://claim/m")).errors[0] == FieldError(
        "spec.model.storageUri",
        'the Trained Model "model1" storageUri field is invalid. The storage uri must start with one of the prefixes: '
        's3://, gs://, https://, http://, file://, /, pvc://. (the storage uri given is "hdfs://claim/m")',
    )


def test_name_format():
    assert rejection(trained_model(name="my.model")).errors == [
        FieldError(
            "metadata.name",
            'the Trained Model "my.model" is invalid: a Trained Model name must consist of alphanumeric characters, '
            "'_', or '-'. (e.g. \"my-Name\" or \"abc_123\", regex used for validation is '^[a-zA-Z0-9_-]+$')",
        )
    ]


def test_names_also_follow_the_api_server_rule():
    # Underscores pass the webhook but not the API server, as in Kubernetes.
    error = rejection(trained_model(name="my_model")).errors[0]
    assert error.path == "metadata.name"
    assert error.message.startswith('Invalid value: "my_model": a lowercase RFC 1123 subdomain')


def test_required_fields():
    resource = trained_model()
    del resource["spec"]["model"]["framework"]
    del resource["spec"]["inferenceService"]
    assert fields(resource) == ["spec.inferenceService", "spec.model.framework"]


def test_memory_is_immutable():
    old = admit(trained_model(memory="256Mi"))
    assert messages(trained_model(memory="512Mi"), old=old) == [
        'the Trained Model "model1" memory field is immutable. The memory was "256Mi" but it is updated to "512Mi"'
    ]


def test_memory_in_another_unit_is_the_same_memory():
    old = admit(trained_model(memory="1Gi"))
    admit(trained_model(memory="1024Mi"), old=old)
    admit(trained_model(memory=1073741824), old=old)


def test_memory_must_be_a_quantity():
    assert fields(trained_model(memory="lots")) == ["spec.model.memory"]


def test_memory_must_not_be_negative():
    assert messages(trained_model(memory="-1Gi")) == [
        'Invalid value: "-1Gi": must be greater than or equal to 0'
    ]
    admit(trained_model(memory="0"))
