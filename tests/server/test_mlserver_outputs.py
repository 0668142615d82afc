"""MLServer's sklearn runtime answers the outputs a V2 request names after the estimator's methods
(`predict`, `predict_proba`, `transform`); modelplane's sklearn runtime answers them the same way."""

from __future__ import annotations

import httpx
import joblib
import numpy as np
import pytest

from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

INPUT = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [v for row in IRIS_ROWS for v in row]}


@pytest.fixture(scope="module")
def iris_server(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", grpc=False)
    yield server
    server.stop()


def infer(server, name: str, outputs: list[dict]) -> httpx.Response:
    body = {"inputs": [INPUT], "outputs": outputs}
    return httpx.post(f"{server.url}/v2/models/{name}/infer", json=body)


def test_predict_proba_is_answered_under_its_name(iris_server, sklearn_dir):
    estimator = joblib.load(sklearn_dir / "model.joblib")
    answer = infer(iris_server, "iris", [{"name": "predict_proba"}])
    assert answer.status_code == 200, answer.text
    [output] = answer.json()["outputs"]
    assert output["name"] == "predict_proba"
    assert output["shape"] == [2, 3]
    assert np.allclose(output["data"], estimator.predict_proba(np.array(IRIS_ROWS)).ravel())


def test_predict_and_predict_proba_together_in_the_order_asked(iris_server, sklearn_dir):
    estimator = joblib.load(sklearn_dir / "model.joblib")
    answer = infer(iris_server, "iris", [{"name": "predict_proba"}, {"name": "predict"}])
    assert answer.status_code == 200, answer.text
    outputs = answer.json()["outputs"]
    assert [output["name"] for output in outputs] == ["predict_proba", "predict"]
    assert outputs[1]["data"] == estimator.predict(np.array(IRIS_ROWS)).tolist()


def test_predict_proba_labels_its_classes(iris_server):
    answer = infer(iris_server, "iris", [{"name": "predict_proba", "parameters": {"classification": 1}}])
    assert answer.status_code == 200, answer.text
    [output] = answer.json()["outputs"]
    assert all(entry.count(":") == 2 for entry in output["data"])


def test_an_estimator_without_the_method_is_a_400(tmp_path, iris):
    from sklearn.linear_model import LinearRegression

    X, y = iris
    joblib.dump(LinearRegression().fit(X, y), tmp_path / "model.joblib")
    server = serve("--model-dir", str(tmp_path), "--model-name", "reg", grpc=False)
    try:
        answer = infer(server, "reg", [{"name": "predict_proba"}])
        assert answer.status_code == 400
        assert "predict_proba" in answer.json()["error"]
        assert infer(server, "reg", [{"name": "transform"}]).status_code == 400
    finally:
        server.stop()


def test_a_text_pipeline_takes_its_strings_with_content_type_str(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["great film", "loved it", "awful film", "hated it"]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 1, 0, 0])
    joblib.dump(pipeline, tmp_path / "model.joblib")
    server = serve("--model-dir", str(tmp_path), "--model-name", "reviews", grpc=False)
    try:
        body = {
            "parameters": {"content_type": "str"},
            "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["loved it", "hated it"]}],
        }
        answer = httpx.post(f"{server.url}/v2/models/reviews/infer", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [1, 0]
    finally:
        server.stop()
