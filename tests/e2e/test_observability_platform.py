"""End to end on `modelplane up`: payload logging to a CloudEvents receiver (REST and gRPC), KServe's ART explainer
(also behind a transformer), a custom explainer, and an explainer whose library is missing, which
leaves its service Ready and its predictor serving."""

from __future__ import annotations

import json

import grpc
import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import (
    REPO_ROOT,
    PlatformProcess,
    kill_leftovers,
    running_platform,
    wait_until,
)
from tests.telemetry.cloudevents_receiver import CloudEventsReceiver

EXAMPLES = REPO_ROOT / "examples" / "observability"
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
SKLEARN_IRIS = {"sklearn": {"storageUri": "pvc://examples/sklearn-iris"}}
ART = {"art": {"type": "SquareAttack", "config": {"nb_classes": "10", "max_iter": "20"}}}


def isvc(name: str, spec: dict, annotations: dict | None = None) -> dict:
    metadata = {"name": name, **({"annotations": annotations} if annotations else {})}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": spec,
    }


def host(name: str) -> str:
    return f"{name}.default.localhost"


def digit() -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return {"instances": [(digits.data[0] / 16).reshape(1, 8, 8, 1).tolist(), [int(digits.target[0])]]}


@pytest.fixture(scope="module")
def receiver():
    receiver = CloudEventsReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-observe")
    example_models(home / "pvc" / "examples")
    yield home
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


@pytest.fixture(scope="module")
def platform(home, receiver):
    services = [
        isvc(
            "iris-logged",
            {
                "predictor": {
                    **SKLEARN_IRIS,
                    "logger": {
                        "mode": "all",
                        "url": receiver.url,
                        "metadataHeaders": ["x-tenant"],
                        "metadataAnnotations": ["team"],
                    },
                }
            },
            annotations={"team": "fraud", "serving.kserve.io/enable-prometheus-scraping": "true"},
        ),
        yaml.safe_load((EXAMPLES / "art-explainer.yaml").read_text()),
        isvc(
            "digits-t",
            {
                "transformer": yaml.safe_load(
                    (REPO_ROOT / "examples" / "transformer-predictor.yaml").read_text()
                )["spec"]["transformer"],
                "predictor": {"sklearn": {"storageUri": "pvc://examples/sklearn-digits"}},
                "explainer": ART,
            },
        ),
        yaml.safe_load((EXAMPLES / "custom-explainer.yaml").read_text()),
    ]
    manifest = home / "services.yaml"
    manifest.write_text(yaml.safe_dump_all(services))
    with running_platform(home) as platform:
        platform.cli("apply", "-f", str(manifest))
        platform.wait_ready("iris-logged", "digits", "digits-t", "iris-explained")
        yield platform


def status(platform: PlatformProcess, name: str) -> dict:
    return json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout)["status"]


def conditions(platform: PlatformProcess, name: str) -> dict[str, dict]:
    return {c["type"]: c for c in status(platform, name)["conditions"]}


def test_a_logged_predictor_sends_each_request_and_answer_to_the_receiver(platform, receiver):
    ok = platform.request("POST", host("iris-logged"), "/v1/models/iris-logged:predict", json=IRIS)
    assert ok.status_code == 200, ok.text
    bad = platform.request(
        "POST", host("iris-logged"), "/v1/models/iris-logged:predict", json={"instances": [[1]]}
    )
    assert bad.status_code == 400
    request_ids = {ok.headers["x-request-id"], bad.headers["x-request-id"]}
    events = wait_until(
        lambda: (
            [e for e in receiver.events if e.get_id() in request_ids] if len(receiver.events) >= 4 else None
        ),
        "four payload events",
        platform,
    )
    assert len(events) == 4
    responses = {e.get_id(): e for e in events if e.get_type() == "org.kubeflow.serving.inference.response"}
    assert responses[ok.headers["x-request-id"]].get_data() == {"predictions": [1]}
    assert responses[bad.headers["x-request-id"]].get_extension("statuscode") == "400"
    for event in events:
        assert event.get_extension("inferenceservicename") == "iris-logged"
        assert event.get_extension("component") == "predictor"
        assert json.loads(event.get_extension("annotations")) == {"team": "fraud"}


def test_a_logged_predictors_grpc_calls_are_logged_too(platform, receiver):
    request = pb.ModelInferRequest(model_name="iris-logged")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend(
        IRIS["instances"][0]
    )
    target = platform.gateway_url.removeprefix("http://")
    with grpc.insecure_channel(target, options=[("grpc.default_authority", host("iris-logged"))]) as channel:
        answer = InferenceStub(channel).ModelInfer(
            request, metadata=[("x-request-id", "grpc-logged")], timeout=60
        )
    assert answer.model_name == "iris-logged"

    def both_events():
        found = [e for e in receiver.events if e.get_id() == "grpc-logged"]
        return found if len(found) == 2 else None

    events = wait_until(both_events, "the gRPC call's two events", platform)
    response = next(e for e in events if e.get_type() == "org.kubeflow.serving.inference.response")
    assert response.get_extension("grpcmethod") == "/inference.GRPCInferenceService/ModelInfer"
    assert (response.get_extension("statuscode"), response.get_extension("grpcstatus")) == ("200", "0")
    assert response.get_extension("revision") == "iris-logged-predictor-00001"
    assert {e.get_extension("inferenceservicename") for e in events} == {"iris-logged"}


def test_the_art_explainer_answers_explain_through_the_gateway(platform):
    answer = platform.request("POST", host("digits"), "/v1/models/digits:explain", json=digit())
    assert answer.status_code == 200, answer.text
    explanation = answer.json()["explanations"]
    assert set(explanation) == {"adversarial_example", "L2 error", "adversarial_prediction", "prediction"}
    assert np.asarray(explanation["adversarial_example"]).shape == (1, 8, 8, 1)
    assert explanation["prediction"] == 0


def test_the_art_explainer_answers_behind_a_transformer(platform):
    answer = platform.request("POST", host("digits-t"), "/v1/models/digits-t:explain", json=digit())
    assert answer.status_code == 200, answer.text
    assert answer.json()["explanations"]["prediction"] == 0
    assert conditions(platform, "digits-t")["ExplainerReady"]["status"] == "True"


def test_a_custom_explainer_queries_its_predictor(platform):
    answer = platform.request("POST", host("iris-explained"), "/v1/models/iris-explained:explain", json=IRIS)
    assert answer.status_code == 200, answer.text
    (explanation,) = answer.json()["explanations"]
    assert explanation["prediction"] == 1
    assert all(0 <= feature < 4 for feature in explanation["sensitive_features"])


def platform_metrics(platform: PlatformProcess) -> dict[tuple[str, tuple], float]:
    """The platform's /metrics, parsed by prometheus_client, by (sample name, labels)."""
    answer = httpx.get(platform.api_url + "/metrics", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(found: dict, metric: str, **labels) -> float:
    """The sum of a metric's samples that have these labels (whatever their others)."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == metric and wanted <= set(sample_labels)
    )


def test_the_platforms_metrics_count_every_hop(platform):
    before = platform_metrics(platform)
    for _ in range(5):
        answer = platform.request("POST", host("iris-logged"), "/v1/models/iris-logged:predict", json=IRIS)
        assert answer.status_code == 200
    platform.cli("get", "isvc", "iris-logged")
    after = platform_metrics(platform)

    def moved(metric: str, **labels) -> float:
        return total(after, metric, **labels) - total(before, metric, **labels)

    # The gateway, per host and revision.
    assert moved("modelplane_gateway_requests_total", host=host("iris-logged"), code="200") == 5
    assert moved("modelplane_gateway_request_duration_seconds_count", host=host("iris-logged")) == 5
    # The replicas of a service that asks to be scraped, labelled with where they run.
    replica = {"namespace": "default", "inferenceservice": "iris-logged", "component": "predictor"}
    assert moved("modelplane_requests_total", model_name="iris-logged", code="200", **replica) == 5
    assert moved("request_predict_seconds_count", model_name="iris-logged", **replica) == 5
    assert total(after, "modelplane_scrape_up", **replica) == 1
    assert total(after, "modelplane_requests_total", inferenceservice="digits") == 0  # not asked for
    # The control plane: the API request just made, reconciles, the store, the replicas' lives.
    assert moved("apiserver_request_total", verb="GET", resource="inferenceservices", code="200") >= 1
    assert (
        total(after, "controller_runtime_reconcile_total", controller="inferenceservice", result="success")
        > 0
    )
    assert total(after, "controller_runtime_reconcile_time_seconds_count", controller="inferenceservice") > 0
    assert total(after, "workqueue_adds_total", name="inferenceservice") > 0
    assert total(after, "modelplane_store_operations_total", operation="apply", outcome="ok") >= 1
    assert total(after, "modelplane_replica_starts_total", namespace="default") >= 8  # one per replica
    assert total(after, "process_resident_memory_bytes") > 0


class WithoutART(PlatformProcess):
    """`modelplane up` (and so every replica) on a machine where the ART package cannot be imported."""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "PYTHONPATH": f"{self.home / 'no-art'}:{REPO_ROOT}"}


@pytest.fixture(scope="module")
def platform_without_art(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-no-art")
    example_models(home / "pvc" / "examples")
    shadow = home / "no-art" / "art"  # a package that cannot be imported, where ART would be
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'art'\")\n")
    manifest = home / "no-art.yaml"
    manifest.write_text(yaml.safe_dump(isvc("no-art", {"predictor": SKLEARN_IRIS, "explainer": ART})))
    platform = WithoutART(home).start()
    try:
        platform.cli("apply", "-f", str(manifest))
        platform.cli("wait", "--for=condition=Ready", "isvc/no-art", "--timeout=300s")
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def test_an_explainer_without_its_library_is_not_ready_alone(platform_without_art):
    platform = platform_without_art
    found = wait_until(
        lambda: (c := conditions(platform, "no-art"))["ExplainerReady"]["status"] == "False" and c,
        "ExplainerReady False",
        platform,
    )
    assert 'pip install "modelplane[art]"' in found["ExplainerReady"]["message"]
    assert found["Ready"]["status"] == "True" and found["PredictorReady"]["status"] == "True"
    predicted = platform.request("POST", host("no-art"), "/v1/models/no-art:predict", json=IRIS)
    assert predicted.json() == {"predictions": [1]}
    explained = platform.request("POST", host("no-art"), "/v1/models/no-art:explain", json=digit())
    assert explained.status_code == 503
    assert "the explainer of default/no-art does not serve" in explained.json()["error"]
    assert "adversarial-robustness-toolbox" in explained.json()["error"]
