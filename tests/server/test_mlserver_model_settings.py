"""An MLServer model folder's `model-settings.json`, read by the sklearn, xgboost and lightgbm runtimes:
what it says is acted on, or said in the log to be ignored."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

INPUT = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [v for row in IRIS_ROWS for v in row]}


def test_version_uri_metadata_and_content_type_are_acted_on(tmp_path, sklearn_dir):
    shutil.copy(sklearn_dir / "model.joblib", tmp_path / "iris-v2.joblib")
    shutil.copy(sklearn_dir / "model.joblib", tmp_path / "old.pkl")  # the uri picks one of two
    settings = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "platform": "sklearn",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        "parameters": {"uri": "./iris-v2.joblib", "version": "v2", "content_type": "np"},
        "max_batch_size": 8,
        "parallel_workers": 2,
    }
    (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    # What modelplane up runs for KServe's kserve-mlserver runtime when mlserver is not installed.
    server = serve("--model-dir", str(tmp_path), "--model-name", "iris", "--runtime", "sklearn", grpc=False)
    try:
        metadata = httpx.get(f"{server.url}/v2/models/iris").json()
        assert metadata["versions"] == ["v2"]
        assert metadata["platform"] == "sklearn"
        assert metadata["inputs"] == settings["inputs"]
        assert metadata["outputs"] == settings["outputs"]
        answer = httpx.post(f"{server.url}/v2/models/iris/versions/v2/infer", json={"inputs": [INPUT]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "v2"
        server.stop()
        assert "model-settings.json: parallel_workers" in server.log()
        assert "adaptive batching needs both max_batch_size above 1 and max_batch_time" in server.log()
    finally:
        server.stop()


def test_a_model_settings_file_that_is_not_json_is_refused(tmp_path, sklearn_dir):
    shutil.copy(sklearn_dir / "model.joblib", tmp_path / "model.joblib")
    (tmp_path / "model-settings.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="model-settings.json is not valid JSON"):
        serve("--model-dir", str(tmp_path), "--model-name", "iris", grpc=False)


def test_model_settings_json_is_not_taken_for_an_xgboost_model(tmp_path, iris):
    import xgboost as xgb

    X, y = iris
    booster = xgb.train({"objective": "multi:softmax", "num_class": 3}, xgb.DMatrix(X, label=y), 5)
    booster.save_model(str(tmp_path / "model.json"))
    (tmp_path / "model-settings.json").write_text(json.dumps({"name": "flowers"}))
    for runtime in ([], ["--runtime", "xgboost"]):
        server = serve("--model-dir", str(tmp_path), "--model-name", "flowers", *runtime, grpc=False)
        try:
            answer = httpx.post(f"{server.url}/v2/models/flowers/infer", json={"inputs": [INPUT]})
            assert answer.status_code == 200, answer.text
        finally:
            server.stop()
