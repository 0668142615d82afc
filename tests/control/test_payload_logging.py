"""What each component's `logger` asks of the gateway, and the logger URLs it cannot send to."""

from __future__ import annotations

import sys

import pytest

from modelplane.control.payload_logging import payload_log_specs
from modelplane.local.api.admission import default_admission
from modelplane.local.api.errors import Invalid
from modelplane.local.api.unhonored_fields import unhonored_fields
from modelplane.telemetry.payload_blob import BlobLogTarget
from modelplane.telemetry.payload_events import PayloadLogSpec


def isvc(spec: dict, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ml", "annotations": annotations or {}},
        "spec": spec,
    }


def default_url(component: str) -> str:
    return f"file:///logs/{component}.jsonl"


def test_each_component_with_a_logger_gets_its_spec():
    resource = isvc(
        {
            "predictor": {
                "sklearn": {"storageUri": "pvc://m"},
                "logger": {
                    "url": "http://sink:8080/",
                    "mode": "response",
                    "metadataHeaders": ["X-Tenant"],
                    "metadataAnnotations": ["team", "tier", "absent"],
                },
                "annotations": {"tier": "gold"},
            },
            "transformer": {"containers": [{"name": "t", "image": "x"}], "logger": {"mode": "all"}},
            "explainer": {"art": {"type": "SquareAttack"}},
        },
        annotations={"team": "fraud", "tier": "bronze"},
    )
    specs = payload_log_specs(resource, default_url)
    assert specs == {
        "predictor": PayloadLogSpec(
            url="http://sink:8080/",
            mode="response",
            inference_service="iris",
            namespace="ml",
            component="predictor",
            metadata_headers=("X-Tenant",),
            annotations=(("team", "fraud"), ("tier", "gold")),
        ),
        "transformer": PayloadLogSpec(
            url="file:///logs/transformer.jsonl",
            mode="all",
            inference_service="iris",
            namespace="ml",
            component="transformer",
        ),
    }
    assert not specs["predictor"].logs_requests and specs["predictor"].logs_responses


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://host/logs", "payload logs go to http://, https://, file://, s3://, gs:// or abfs:// URLs"),
        ("abfs://account.blob.core.windows.net/logs", "abfs://<container>@<account>.dfs.core.windows.net"),
        ("file://relative/path.jsonl", "absolute path"),
        ("file:///var/log/", "names a file, not a folder"),
    ],
)
def test_a_logger_url_the_gateway_cannot_send_to_is_refused(url, problem):
    admit = default_admission()
    resource = isvc(
        {"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": {"mode": "all", "url": url}}}
    )
    with pytest.raises(Invalid) as refused:
        admit(resource, None, [])
    assert "spec.predictor.logger.url" in str(refused.value) and problem in str(refused.value)


def test_a_logger_url_the_gateway_can_send_to_is_admitted():
    admit = default_admission()
    for url in (
        "http://sink.default.svc.cluster.local",
        "https://sink:8443/events",
        "file:///tmp/p.jsonl",
        "s3://bucket/logs",
        "gs://bucket",
        "abfs://logs@account.dfs.core.windows.net/payloads",
    ):
        resource = isvc(
            {"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": {"mode": "all", "url": url}}}
        )
        assert admit(resource, None, [])["spec"]["predictor"]["logger"]["url"] == url


def test_blob_fields_beside_a_url_that_is_not_a_bucket_are_said_not_acted_on():
    logger = {
        "mode": "all",
        "url": "http://sink:8080/",
        "storage": {"path": "/logs", "parameters": {"type": "s3"}, "key": "k"},
        "batchSize": 10,
        "marshallerUrl": "http://m",
    }
    resource = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": logger}})
    paths = [field.path for field in unhonored_fields(resource)]
    assert paths == [
        "spec.predictor.logger.storage",
        "spec.predictor.logger.marshallerUrl",
        "spec.predictor.logger.batchSize",
    ]
    logger["url"] = "s3://bucket/logs"  # with a bucket, they are what writes there
    assert unhonored_fields(resource) == []


def test_a_bucket_logger_gets_its_storage_config_path_format_and_batches():
    logger = {
        "url": "s3://bucket/logs",
        "storage": {
            "key": "logs-key",
            "path": "2026",
            "parameters": {"format": "csv", "region": "eu-west-1"},
            "serviceAccountName": "sa",
        },
        "batchSize": 50,
        "batchInterval": "1m30s",
        "marshallerUrl": "http://marshaller:9083/marshal",
    }
    resource = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": logger}})
    asked = []

    def storage_config(namespace: str, key: str) -> dict:
        asked.append((namespace, key))
        return {"type": "s3", "access_key_id": "id", "secret_access_key": "secret", "region": "us-east-1"}

    blob = payload_log_specs(resource, default_url, storage_config)["predictor"].blob
    assert asked == [("ml", "logs-key")]
    assert blob == BlobLogTarget(
        path="2026",
        format="csv",
        batch_size=50,
        batch_interval=90.0,
        marshaller_url="http://marshaller:9083/marshal",
        config=(
            ("access_key_id", "id"),
            ("region", "eu-west-1"),  # the parameters over the key's document
            ("secret_access_key", "secret"),
            ("type", "s3"),
        ),
    )
    warned = [field.path for field in unhonored_fields(resource)]
    assert warned == ["spec.predictor.logger.storage.serviceAccountName"]
    plain = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": {"url": "gs://b"}}})
    assert payload_log_specs(plain, default_url, storage_config)["predictor"].blob == BlobLogTarget()


@pytest.mark.parametrize(
    ("fields", "path", "problem"),
    [
        (
            {"storage": {"key": "k", "path": "p", "parameters": {"format": "avro"}}},
            "storage.parameters.format",
            "json, csv, parquet",
        ),
        ({"batchSize": -1}, "batchSize", "0 or more"),
        ({"batchInterval": "soon"}, "batchInterval", "is not a duration"),
        ({"marshallerUrl": "ftp://m/x"}, "marshallerUrl", "http:// or https://"),
    ],
)
def test_blob_fields_that_cannot_be_acted_on_are_refused(fields, path, problem):
    logger = {"mode": "all", "url": "s3://bucket/logs", **fields}
    resource = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": logger}})
    with pytest.raises(Invalid) as refused:
        default_admission()(resource, None, [])
    assert f"spec.predictor.logger.{path}" in str(refused.value) and problem in str(refused.value)


def test_parquet_without_pyarrow_is_refused_unless_a_marshaller_writes_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # what a missing package looks like
    storage = {"key": "k", "path": "p", "parameters": {"format": "parquet"}}
    logger = {"mode": "all", "url": "s3://bucket/logs", "storage": storage}
    resource = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": logger}})
    with pytest.raises(Invalid) as refused:
        default_admission()(resource, None, [])
    assert "spec.predictor.logger.storage.parameters.format" in str(refused.value)
    assert "pip install 'modelplane[parquet]'" in str(refused.value)
    logger["marshallerUrl"] = "http://marshaller.default/"
    default_admission()(resource, None, [])
