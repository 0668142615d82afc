"""What each component's `logger` asks of the gateway, and the logger URLs it cannot send to."""

from __future__ import annotations

import pytest

from modelplane.control.payload_logging import payload_log_specs
from modelplane.local.api.admission import default_admission
from modelplane.local.api.errors import Invalid
from modelplane.local.api.unhonored_fields import unhonored_fields
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
        ("s3://bucket/logs", "payload logs go to http://, https:// or file:// URLs"),
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
    for url in ("http://sink.default.svc.cluster.local", "https://sink:8443/events", "file:///tmp/p.jsonl"):
        resource = isvc(
            {"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": {"mode": "all", "url": url}}}
        )
        assert admit(resource, None, [])["spec"]["predictor"]["logger"]["url"] == url


def test_blob_storage_logging_is_accepted_and_said_not_acted_on():
    logger = {
        "mode": "all",
        "storage": {"path": "/logs", "parameters": {"type": "s3"}, "key": "k"},
        "batchSize": 10,
        "marshallerUrl": "http://m",
    }
    resource = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m"}, "logger": logger}})
    paths = [field.path for field in unhonored_fields(resource)]
    assert paths == [
        "spec.predictor.logger.storage",
        "spec.predictor.logger.batchSize",
        "spec.predictor.logger.marshallerUrl",
    ]
