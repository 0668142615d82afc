"""KServe's ART explainer (`modelplane serve --runtime art`): SquareAttack against a real predictor
process, KServe's answer, clear refusals, and a missing library reported on the explainer alone."""

from __future__ import annotations

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from tests.server.processes import REPO_ROOT, serve
from tests.telemetry.otlp_receiver import OtlpReceiver


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """sklearn's bundled 8x8 digits (KServe's ART sample attacks MNIST the same way), pixels in [0, 1]."""
    images, labels = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("digits")
    joblib.dump(LogisticRegression(max_iter=2000).fit(images / 16.0, labels), folder / "model.joblib")
    return folder, images / 16.0, labels


@pytest.fixture(scope="module")
def predictor(digits_model):
    server = serve("--model-dir", str(digits_model[0]), "--model-name", "digits", grpc=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def explainer(predictor):
    server = serve(
        "--runtime=art",
        "--model-name=digits",
        f"--predictor-host=127.0.0.1:{predictor.http_port}",
        "--nb-classes=10",
        "--max-iter=20",
        grpc=False,
    )
    yield server
    server.stop()


def image(pixels) -> list:
    return np.asarray(pixels).reshape(1, 8, 8, 1).tolist()


def test_square_attack_answers_as_kserves_explainer(explainer, digits_model):
    _, images, labels = digits_model
    answer = httpx.post(
        f"{explainer.url}/v1/models/digits:explain",
        json={"instances": [image(images[0]), [int(labels[0])]]},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    explanation = answer.json()["explanations"]
    assert set(explanation) == {"adversarial_example", "L2 error", "adversarial_prediction", "prediction"}
    assert np.asarray(explanation["adversarial_example"]).shape == (1, 8, 8, 1)
    assert explanation["prediction"] == int(labels[0])
    assert isinstance(explanation["adversarial_prediction"], int)
    assert explanation["L2 error"] >= 0


def test_a_traced_explanations_spans_go_without_waiting_for_another(predictor, digits_model):
    """The explainer's queries run on a worker thread, each on that thread's own loop: their client spans
    (and the request's, after them) go within the schedule delay, not when the next explanation runs."""
    _, images, labels = digits_model
    receiver = OtlpReceiver().start()
    explainer = serve(
        "--runtime=art",
        "--model-name=digits",
        f"--predictor-host=127.0.0.1:{predictor.http_port}",
        "--nb-classes=10",
        "--max-iter=5",
        grpc=False,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    trace_id = "5af7651916cd43dd8448eb211c80319c"
    try:
        answer = httpx.post(
            f"{explainer.url}/v1/models/digits:explain",
            json={"instances": [image(images[0]), [int(labels[0])]]},
            headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text

        def whole(spans) -> bool:
            names = {span.name for span in spans}
            return {"POST /v1/models/digits:explain", "explain", "POST /v1/models/digits:predict"} <= names

        spans = receiver.wait_for_trace(trace_id, whole, timeout=5)
    finally:
        explainer.stop()
        receiver.stop()
    (explain,) = [span for span in spans if span.name == "explain"]
    queries = [span for span in spans if span.kind == "client"]
    assert queries and {span.parent_id for span in queries} == {explain.span_id}


def test_tabular_rows_are_refused_with_what_the_attack_needs(explainer):
    answer = httpx.post(
        f"{explainer.url}/v1/models/digits:explain",
        json={"instances": [[[6.8, 2.8, 4.8, 1.4]], [1]]},
        timeout=60,
    )
    assert answer.status_code == 400
    assert "SquareAttack attacks images" in answer.json()["error"]
    malformed = httpx.post(
        f"{explainer.url}/v1/models/digits:explain", json={"instances": [1, 2, 3]}, timeout=60
    )
    assert malformed.status_code == 400


def test_the_predictors_errors_reach_the_client_with_their_status(explainer, predictor):
    """KServe's ARTModel answers every failure 500 ("Failed to explain ..."); here a predictor's refusal
    keeps its status and message, and a predictor out of reach is a 502 naming it."""
    too_small = np.zeros((1, 5, 5, 1)).tolist()  # 25 features to a model of 64
    refused = httpx.post(
        f"{explainer.url}/v1/models/digits:explain", json={"instances": [too_small, [0]]}, timeout=60
    )
    assert refused.status_code == 400
    assert "answered 400" in refused.json()["error"] and "64 features" in refused.json()["error"]
    unreachable = serve(
        "--runtime=art", "--model-name=digits", "--predictor-host=127.0.0.1:9", "--max-iter=5", grpc=False
    )
    try:
        answer = httpx.post(
            f"{unreachable.url}/v1/models/digits:explain",
            json={"instances": [image([0] * 64), [0]]},
            timeout=60,
        )
        assert answer.status_code == 502
        assert answer.json()["error"].startswith("cannot reach http://127.0.0.1:9/v1/models/digits:predict")
    finally:
        unreachable.stop()


def test_without_the_library_the_explainer_is_not_ready_and_says_why(tmp_path):
    shadow = tmp_path / "art"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'art'\")\n")
    server = serve(
        "--runtime=art",
        "--model-name=digits",
        "--predictor-host=127.0.0.1:9",
        grpc=False,
        env={"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}"},
        ready_status=503,
    )
    try:
        (entry,) = httpx.post(f"{server.url}/v2/repository/index").json()
        assert entry["state"] == "UNAVAILABLE"
        assert 'pip install "modelplane[art]"' in entry["reason"]
        answer = httpx.post(f"{server.url}/v1/models/digits:explain", json={"instances": []})
        assert answer.status_code == 503 and "adversarial-robustness-toolbox" in answer.json()["error"]
    finally:
        server.stop()


def test_an_unknown_attack_is_a_load_failure_that_says_which_exist(predictor):
    server = serve(
        "--runtime=art",
        "--model-name=digits",
        f"--predictor-host=127.0.0.1:{predictor.http_port}",
        "--adversary-type=FastGradient",
        grpc=False,
        ready_status=503,
    )
    try:
        (entry,) = httpx.post(f"{server.url}/v2/repository/index").json()
        assert "it runs SquareAttack" in entry["reason"]
    finally:
        server.stop()
