"""End to end on `modelplane up`: a scraped InferenceService's replicas are read at the metrics path of
its runtime's `prometheus.kserve.io/path` unless the service sets its own, as KServe's pods get the
runtime's annotations under the service's; a `prometheus.kserve.io/port` other than the replica's HTTP
port cannot be honored, and the status says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.platform_process import PlatformProcess, running_platform

PATH_ECHO = Path(__file__).with_name("path_echo_metrics.py")
SCRAPE = {"serving.kserve.io/enable-prometheus-scraping": "true"}
RUNTIME = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "ServingRuntime",
    "metadata": {"name": "paged", "namespace": "default"},
    "spec": {
        "annotations": {"prometheus.kserve.io/path": "/runtime-metrics", "prometheus.kserve.io/port": "9400"},
        "supportedModelFormats": [{"name": "paged", "autoSelect": True}],
        "containers": [
            {"name": "kserve-container", "image": "example/paged:v1", "command": ["python", str(PATH_ECHO)]}
        ],
    },
}


def service(name: str, annotations: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "paged"}}}},
    }


SERVICES = [
    service("runtime-paged", SCRAPE),
    service(
        "own-paged",
        {**SCRAPE, "prometheus.kserve.io/path": "own-metrics", "prometheus.kserve.io/port": "8080"},
    ),
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    with running_platform(tmp_path_factory.mktemp("mp-scrape-runtime")) as running:
        running.apply(RUNTIME)
        running.apply(*SERVICES)
        running.wait_ready("runtime-paged", "own-paged", timeout="240s")
        yield running


def scraped_paths(platform: PlatformProcess) -> dict[str, set[str]]:
    """Per service, the paths its replicas were read at by the platform's /metrics."""
    answer = httpx.get(platform.api_url + "/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "scraped_path":
                found.setdefault(sample.labels["inferenceservice"], set()).add(sample.labels["path"])
    return found


def fields_honored(platform: PlatformProcess, name: str) -> dict:
    status = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout)["status"]
    return next((c for c in status["conditions"] if c["type"] == "FieldsHonored"), {})


def test_the_runtimes_metrics_path_is_scraped_unless_the_service_sets_its_own(platform):
    assert scraped_paths(platform) == {"runtime-paged": {"/runtime-metrics"}, "own-paged": {"/own-metrics"}}


def test_a_metrics_port_other_than_the_replicas_http_port_is_said_not_acted_on(platform):
    unhonored = fields_honored(platform, "runtime-paged")
    assert unhonored.get("status") == "False"
    assert "ServingRuntime paged: spec.annotations[prometheus.kserve.io/port]" in unhonored["message"]
    assert "scraped at their HTTP port" in unhonored["message"]
    assert (
        fields_honored(platform, "own-paged").get("status") != "False"
    )  # its own port, 8080, is the HTTP port
