"""Answers as MLServer's runtimes give them (`--v2-outputs mlserver`, the default for a model folder with
a model-settings.json, and what the MLServer image runs): the output is named after what answers it
(`predict`, `predict_proba`), a one-dimensional answer is a column, and outputs carry their content
type. Without model-settings.json the answer stays KServe's `output-0`."""

from __future__ import annotations

import json

import httpx
import joblib
import numpy as np
import pytest

from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

INPUT = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [v for row in IRIS_ROWS for v in row]}


def infer(server, name: str, outputs: list[str] | None = None) -> httpx.Response:
    body = {"inputs": [INPUT]}
    if outputs is not None:
        body["outputs"] = [{"name": output} for output in outputs]
    return httpx.post(f"{server.url}/v2/models/{name}/infer", json=body)


def serving(folder, name: str, *flags: str):
    return serve("--model-dir", str(folder), "--model-name", name, *flags, grpc=False)


@pytest.fixture
def mlserver_sklearn_dir(tmp_path, sklearn_dir):
    (tmp_path / "model.joblib").write_bytes((sklearn_dir / "model.joblib").read_bytes())
    (tmp_path / "model-settings.json").write_text(
        json.dumps({"implementation": "mlserver_sklearn.SKLearnModel"})
    )
    return tmp_path


def test_a_model_folder_with_model_settings_answers_predict_as_mlserver(mlserver_sklearn_dir):
    estimator = joblib.load(mlserver_sklearn_dir / "model.joblib")
    server = serving(mlserver_sklearn_dir, "iris")
    try:
        answer = infer(server, "iris")
        assert answer.status_code == 200, answer.text
        [output] = answer.json()["outputs"]
        assert output["name"] == "predict"
        assert output["shape"] == [2, 1]
        assert output["parameters"] == {"content_type": "np"}
        assert output["data"] == estimator.predict(np.array(IRIS_ROWS)).tolist()
        both = infer(server, "iris", ["predict", "predict_proba"])
        assert [output["name"] for output in both.json()["outputs"]] == ["predict", "predict_proba"]
        assert both.json()["outputs"][1]["shape"] == [2, 3]
        refused = infer(server, "iris", ["output-0"])
        assert refused.status_code == 400
        assert refused.json()["error"] == (
            "SKLearnModel only supports 'predict', 'predict_proba' and 'transform' as outputs "
            "(output-0 was received)"
        )
    finally:
        server.stop()


def test_the_flag_chooses_either_way(mlserver_sklearn_dir, sklearn_dir):
    server = serving(mlserver_sklearn_dir, "iris", "--v2-outputs", "kserve")
    try:
        [output] = infer(server, "iris").json()["outputs"]
        assert (output["name"], output["shape"]) == ("output-0", [2])
    finally:
        server.stop()
    server = serving(sklearn_dir, "iris", "--v2-outputs", "mlserver")
    try:
        [output] = infer(server, "iris").json()["outputs"]
        assert (output["name"], output["shape"]) == ("predict", [2, 1])
    finally:
        server.stop()


def test_predict_fn_of_model_settings_chooses_the_default_output(mlserver_sklearn_dir):
    settings = {"parameters": {"extra": {"predict_fn": "predict_proba"}}}
    (mlserver_sklearn_dir / "model-settings.json").write_text(json.dumps(settings))
    server = serving(mlserver_sklearn_dir, "iris")
    try:
        [output] = infer(server, "iris").json()["outputs"]
        assert (output["name"], output["shape"]) == ("predict_proba", [2, 3])
        server.stop()
        assert "parameters.extra" not in server.log()  # read, so not logged as ignored
    finally:
        server.stop()


def test_xgboost_answers_as_mlservers_xgboost_runtime(tmp_path, iris):
    import xgboost as xgb

    X, y = iris
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    classifier.save_model(str(tmp_path / "model.json"))
    server = serving(tmp_path, "flowers", "--v2-outputs", "mlserver")
    try:
        answer = infer(server, "flowers")
        assert answer.status_code == 200, answer.text
        [output] = answer.json()["outputs"]
        # XGBClassifier's predict: the labels (KServe's xgbserver answers the booster's probabilities).
        assert output["name"] == "predict"
        assert output["data"] == classifier.predict(np.array(IRIS_ROWS)).tolist()
        answer = infer(server, "flowers", ["predict_proba", "predict"])
        assert answer.status_code == 200, answer.text
        proba, labels = answer.json()["outputs"]
        assert proba["name"] == "predict_proba" and proba["shape"] == [2, 3]
        assert np.allclose(proba["data"], classifier.predict_proba(np.array(IRIS_ROWS)).ravel())
        refused = infer(server, "flowers", ["transform"])
        assert refused.status_code == 400
        assert "XGBoostModel only supports 'predict' and 'predict_proba'" in refused.json()["error"]
    finally:
        server.stop()


def test_an_xgboost_booster_from_xgboost_train_is_a_regressor_without_predict_proba(tmp_path, iris):
    import xgboost as xgb

    X, y = iris
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y), 5)
    booster.save_model(str(tmp_path / "model.json"))
    server = serving(tmp_path, "flowers", "--v2-outputs", "mlserver")
    try:
        [output] = infer(server, "flowers").json()["outputs"]
        assert (output["name"], output["shape"]) == ("predict", [2, 3])
        refused = infer(server, "flowers", ["predict_proba"])
        assert refused.status_code == 400
        assert "XGBRegressor models do not support 'predict_proba'" in refused.json()["error"]
    finally:
        server.stop()


def test_lightgbm_answers_predict_whatever_is_asked(tmp_path, iris):
    """MLServer's LightGBMModel answers its one output, `predict`, whatever outputs a request names."""
    import lightgbm as lgb
    import tritonclient.grpc as triton_grpc

    X, y = iris
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, y), 5)
    booster.save_model(str(tmp_path / "model.bst"))
    expected = booster.predict(np.array(IRIS_ROWS)).ravel()
    server = serve("--model-dir", str(tmp_path), "--model-name", "flowers", "--v2-outputs", "mlserver")
    try:
        for outputs in (["predict"], ["predict_proba"], ["predict_proba", "transform"]):
            answer = infer(server, "flowers", outputs)
            assert answer.status_code == 200, answer.text
            [output] = answer.json()["outputs"]
            assert (output["name"], output["shape"]) == ("predict", [2, 3])
            assert np.allclose(output["data"], expected)
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        tensor = triton_grpc.InferInput("x", [2, 4], "FP64")
        tensor.set_data_from_numpy(np.array(IRIS_ROWS))
        asked = [triton_grpc.InferRequestedOutput("predict_proba")]
        response = client.infer("flowers", [tensor], outputs=asked)
        [output] = response.get_response().outputs
        assert output.name == "predict"
        assert np.allclose(response.as_numpy("predict").ravel(), expected)
    finally:
        server.stop()
