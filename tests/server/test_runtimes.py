"""Each built-in runtime, serving a model the test trains itself, through a real server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys

import httpx
import joblib
import numpy as np
import pytest

from modelplane.runtimes.base import ModelMissingError, find_model_file, require
from modelplane.runtimes.detect import detect_runtime
from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

V2_BODY = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}


@pytest.fixture(scope="module")
def xgboost_dir(tmp_path_factory, iris):
    import xgboost as xgb

    X, y = iris
    folder = tmp_path_factory.mktemp("xgboost")
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 3, "max_depth": 3}, xgb.DMatrix(X, label=y), 10
    )
    booster.save_model(str(folder / "model.bst"))
    return folder


@pytest.fixture(scope="module")
def lightgbm_dir(tmp_path_factory, iris):
    import lightgbm as lgb

    X, y = iris
    folder = tmp_path_factory.mktemp("lightgbm")
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(X, label=y), 20).save_model(str(folder / "model.bst"))
    return folder


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory, iris):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    folder = tmp_path_factory.mktemp("onnx")
    model = LogisticRegression(max_iter=1000).fit(X, y)
    onnx_model = to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    (folder / "model.onnx").write_bytes(onnx_model.SerializeToString())
    return folder


def predict_v1(server, name: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{name}:predict", json={"instances": IRIS_ROWS})


def test_xgboost(xgboost_dir):
    assert detect_runtime(xgboost_dir) == "xgboost"
    server = serve("--model-dir", str(xgboost_dir), "--model-name", "xgb", grpc=False)
    try:
        assert predict_v1(server, "xgb").json() == {"predictions": [1.0, 1.0]}
        output = httpx.post(server.url + "/v2/models/xgb/infer", json=V2_BODY).json()["outputs"][0]
        assert (output["datatype"], output["data"]) == ("FP32", [1.0, 1.0])
        assert_rows_of_the_wrong_width_are_refused(server, "xgb")
    finally:
        server.stop()


def assert_rows_of_the_wrong_width_are_refused(server, name: str) -> None:
    """A booster given fewer features answers nonsense (XGBoost) or fails as if at fault (LightGBM)."""
    for rows in ([[1.0, 2.0, 3.0]], [[1.0]], [[1.0, 2.0, 3.0, 4.0, 5.0]]):
        response = httpx.post(f"{server.url}/v1/models/{name}:predict", json={"instances": rows})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == (
            f"the input does not fit model {name}: it takes rows of 4 features, got {len(rows[0])}"
        )
    no_features = {"inputs": [{"name": "x", "shape": [2**31, 0], "datatype": "FP32", "data": []}]}
    response = httpx.post(f"{server.url}/v2/models/{name}/infer", json=no_features)
    assert response.status_code == 400, response.text
    assert "it takes rows of 4 features, got 0" in response.json()["error"]


def test_lightgbm(lightgbm_dir):
    assert detect_runtime(lightgbm_dir) == "lightgbm"
    server = serve("--model-dir", str(lightgbm_dir), "--model-name", "lgb", grpc=False)
    try:
        predictions = np.array(predict_v1(server, "lgb").json()["predictions"])
        assert predictions.shape == (2, 3)
        assert predictions.argmax(axis=1).tolist() == [1, 1]
        records = [dict(zip([f"Column_{i}" for i in range(4)], row, strict=True)) for row in IRIS_ROWS]
        by_name = httpx.post(server.url + "/v1/models/lgb:predict", json={"instances": records})
        assert np.array(by_name.json()["predictions"]).argmax(axis=1).tolist() == [1, 1]
        assert_rows_of_the_wrong_width_are_refused(server, "lgb")
    finally:
        server.stop()


def test_onnx(onnx_dir):
    server = serve("--model-dir", str(onnx_dir), "--model-name", "onnx", "--runtime", "onnx", grpc=False)
    try:
        assert predict_v1(server, "onnx").json()["predictions"] == [1, 1]
        body = {"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
        outputs = httpx.post(server.url + "/v2/models/onnx/infer", json=body).json()["outputs"]
        assert outputs[0]["name"] == "label" and outputs[0]["data"] == [1, 1]
        assert outputs[1]["name"] == "probabilities" and outputs[1]["shape"] == [2, 3]
        metadata = httpx.get(server.url + "/v2/models/onnx").json()
        assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
        bad = {"inputs": [{"name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
        assert httpx.post(server.url + "/v2/models/onnx/infer", json=bad).status_code == 400
    finally:
        server.stop()


def test_sklearn_probabilities(sklearn_dir):
    server = serve(
        "--model-dir", str(sklearn_dir), "--model-name", "iris", grpc=False, env={"PREDICT_PROBA": "true"}
    )
    try:
        probabilities = np.array(predict_v1(server, "iris").json()["predictions"])
        assert probabilities.shape == (2, 3)
        assert np.allclose(probabilities.sum(axis=1), 1)
    finally:
        server.stop()


def test_sklearn_mixed_dataframe_input(tmp_path):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "size": [1, 2, 3, 4]})
    pipeline = make_pipeline(
        ColumnTransformer([("onehot", OneHotEncoder(), ["colour"])], remainder="passthrough"),
        LinearRegression(),
    ).fit(frame, [1.0, 2.0, 3.0, 4.0])
    joblib.dump(pipeline, tmp_path / "model.joblib")
    server = serve("--model-dir", str(tmp_path), "--model-name", "mixed", grpc=False)
    try:
        body = {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["green"]},
                {"name": "size", "shape": [1], "datatype": "INT32", "data": [4]},
            ],
        }
        output = httpx.post(server.url + "/v2/models/mixed/infer", json=body).json()["outputs"][0]
        assert output["data"] == pytest.approx(
            pipeline.predict(pd.DataFrame({"colour": ["green"], "size": [4]}))
        )
    finally:
        server.stop()


def test_model_file_selection(tmp_path, sklearn_dir):
    with pytest.raises(ModelMissingError):
        find_model_file(tmp_path, (".joblib",))
    shutil.copy(sklearn_dir / "model.joblib", tmp_path / "a.joblib")
    assert find_model_file(tmp_path, (".joblib", ".pkl")).name == "a.joblib"
    shutil.copy(sklearn_dir / "model.joblib", tmp_path / "b.pkl")
    with pytest.raises(RuntimeError, match="More than one model file"):
        find_model_file(tmp_path, (".joblib", ".pkl"))


def test_a_folder_of_model_folders_is_a_repository(tmp_path, sklearn_dir, xgboost_dir):
    shutil.copytree(sklearn_dir, tmp_path / "iris")
    shutil.copytree(xgboost_dir, tmp_path / "boost")
    (tmp_path / "notes").mkdir()  # a folder with no model in it is skipped
    server = serve("--model-dir", str(tmp_path), grpc=False)
    try:
        assert sorted(httpx.get(server.url + "/v2/models").json()["models"]) == ["boost", "iris"]
        assert predict_v1(server, "iris").json() == {"predictions": [1, 1]}
        assert predict_v1(server, "boost").json() == {"predictions": [1.0, 1.0]}
        assert httpx.post(server.url + "/v2/repository/models/iris/unload").status_code == 200
        assert predict_v1(server, "iris").status_code == 404
        shutil.copytree(sklearn_dir, tmp_path / "late")
        assert httpx.post(server.url + "/v2/repository/models/late/load").json() == {
            "name": "late",
            "load": True,
        }
        assert predict_v1(server, "late").json() == {"predictions": [1, 1]}
        assert httpx.post(server.url + "/v2/repository/models/iris/load").status_code == 200
        assert httpx.post(server.url + "/v2/repository/models/absent/load").status_code == 404
    finally:
        server.stop()


def test_a_multi_model_server_starts_empty_and_loads_models_by_name(tmp_path, sklearn_dir):
    # As a multi-model replica runs: the runtime's arguments, an empty folder, MULTI_MODEL_SERVER=true.
    server = serve(
        "--model-dir",
        str(tmp_path),
        "--model-name",
        "mms",
        "--runtime",
        "sklearn",
        grpc=False,
        env={"MULTI_MODEL_SERVER": "true"},
    )
    try:
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200
        assert httpx.get(server.url + "/v2/models").json() == {"models": []}
        assert httpx.post(server.url + "/v2/repository/models/iris/load").status_code == 404
        shutil.copytree(sklearn_dir, tmp_path / "iris")
        assert httpx.post(server.url + "/v2/repository/models/iris/load", timeout=60).json() == {
            "name": "iris",
            "load": True,
        }
        assert predict_v1(server, "iris").json() == {"predictions": [1, 1]}
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "model.joblib").write_bytes(b"this is not a pickle")
        assert httpx.post(server.url + "/v2/repository/models/bad/load", timeout=60).status_code == 503
        # A model that failed to load does not make the server unready.
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200
        assert httpx.post(server.url + "/v2/repository/models/iris/unload").status_code == 200
        assert predict_v1(server, "iris").status_code == 404
    finally:
        server.stop()


def test_a_multi_model_server_loads_the_model_folders_it_finds_at_start(tmp_path, sklearn_dir):
    shutil.copytree(sklearn_dir, tmp_path / "iris")
    (tmp_path / ".iris.partial-x").mkdir()  # a fetch under way
    server = serve("--model-dir", str(tmp_path), "--multi-model", grpc=False)
    try:
        assert httpx.get(server.url + "/v2/models").json() == {"models": ["iris"]}
        assert predict_v1(server, "iris").json() == {"predictions": [1, 1]}
    finally:
        server.stop()


def test_model_that_fails_to_load_leaves_the_server_up(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"this is not a pickle")
    server = serve(
        "--model-dir", str(tmp_path), "--model-name", "bad", grpc=False, ready_path="/v2/health/live"
    )
    try:
        for _ in range(100):
            response = httpx.get(server.url + "/v2/models/bad/ready")
            if "Failed to load" in response.text:
                break
        assert response.status_code == 503
        assert "Failed to load" in response.json()["error"]
    finally:
        server.stop()


def test_custom_model_class(tmp_path):
    (tmp_path / "my_model.py").write_text(
        "from modelplane.server import Model\n"
        "class Doubler(Model):\n"
        "    def __init__(self, name, model_dir=None):\n"
        "        super().__init__(name)\n"
        "        self.model_dir = model_dir\n"
        "    def load(self):\n"
        "        self.ready = True\n"
        "        return True\n"
        "    async def predict(self, payload, headers=None):\n"
        "        return {'predictions': [2 * x for x in payload['instances']], 'dir': self.model_dir}\n"
    )
    server = serve(
        "--model-class",
        f"{tmp_path}/my_model.py:Doubler",
        "--model-name",
        "double",
        "--model-dir",
        str(tmp_path),
        grpc=False,
    )
    try:
        response = httpx.post(server.url + "/v1/models/double:predict", json={"instances": [1, 2]})
        assert response.json() == {"predictions": [2, 4], "dir": str(tmp_path)}
    finally:
        server.stop()


def test_command_line_mistakes_are_one_line_errors(tmp_path):
    (tmp_path / "notes.md").write_text("not a model")
    cases = [
        (["--model-dir", str(tmp_path / "absent")], "does not exist"),
        (["--model-dir", str(tmp_path)], "no model file found"),
        (["--model-dir", str(tmp_path / "notes.md")], f"{tmp_path / 'notes.md'} is not a model file"),
        (["--model-dir", str(tmp_path), "--runtime", "caffe"], "unknown runtime 'caffe'"),
        (["--model-class", "nowhere:Thing"], "cannot import module 'nowhere'"),
        (["--model-class", "modelplane:Missing"], "has no class named 'Missing'"),
    ]
    for args, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", "serve", *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_missing_library_names_the_extra():
    with pytest.raises(ImportError, match=r'pip install "modelplane\[tensorrt\]"'):
        require("surely_not_installed_module", "tensorrt")


def test_a_server_told_to_stop_while_its_model_loads_stops_without_waiting_for_the_load(tmp_path):
    (tmp_path / "slow_model.py").write_text(
        "import time\n"
        "from modelplane.server import Model\n"
        "class TakesAnHour(Model):\n"
        "    def __init__(self, name, model_dir=None):\n"
        "        super().__init__(name)\n"
        "    def load(self):\n"
        "        time.sleep(3600)\n"
    )
    server = serve(
        "--model-class",
        f"{tmp_path}/slow_model.py:TakesAnHour",
        "--model-name",
        "slow",
        grpc=False,
        ready_path="/v2/health/live",
    )
    try:
        assert httpx.get(server.url + "/v2/models/slow/ready").status_code == 503
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(120) == 0  # not after the hour-long load
    finally:
        server.stop()


def test_predict_proba_leaves_estimators_without_it_on_predict(tmp_path, iris):
    from sklearn.linear_model import LinearRegression

    from modelplane.runtimes.sklearn import SKLearnModel

    X, y = iris
    regressor = LinearRegression().fit(X, y)
    joblib.dump(regressor, tmp_path / "model.joblib")
    model = SKLearnModel("regressor", str(tmp_path), predict_proba=True)
    assert model.load()
    answer = asyncio.run(model.predict({"instances": IRIS_ROWS}))
    assert np.allclose(answer["predictions"], regressor.predict(np.array(IRIS_ROWS)))


def test_instances_in_the_column_forms_kserve_reads(lightgbm_dir):
    """KServe's servers make each object instance a DataFrame: {column: {index: value}} (its lgbserver
    example), {column: [values]}, or a list of row objects."""
    from modelplane.protocol.errors import InvalidInput
    from modelplane.runtimes.lightgbm import LightGBMModel

    model = LightGBMModel("lgb", str(lightgbm_dir))
    model.load()
    columns = [f"Column_{i}" for i in range(4)]
    by_index = {name: {"0": IRIS_ROWS[0][i]} for i, name in enumerate(columns)}
    by_list = {name: [row[i] for row in IRIS_ROWS] for i, name in enumerate(columns)}
    as_rows = [dict(zip(columns, row, strict=True)) for row in IRIS_ROWS]
    expected = asyncio.run(model.predict({"instances": IRIS_ROWS}))["predictions"]
    cases = (([by_index], [0]), ([by_list], [0, 1]), ([as_rows], [0, 1]), ([by_index, by_list], [0, 0, 1]))
    for instances, rows in cases:
        predictions = asyncio.run(model.predict({"instances": instances}))["predictions"]
        assert np.allclose(predictions, expected[rows])
    ragged = {"Column_0": [1.0, 2.0], "Column_1": [1.0]}
    with pytest.raises(InvalidInput, match="instances do not form a table"):
        asyncio.run(model.predict({"instances": [ragged]}))


def test_text_files_beside_a_model_are_not_model_files(tmp_path, lightgbm_dir, sklearn_dir):
    from modelplane.runtimes.lightgbm import LightGBMModel

    lightgbm_folder = tmp_path / "lightgbm"
    shutil.copytree(lightgbm_dir, lightgbm_folder)
    (lightgbm_folder / "README.txt").write_text("iris, 20 rounds\n")
    assert detect_runtime(lightgbm_folder) == "lightgbm"
    assert LightGBMModel("lgb", str(lightgbm_folder)).load()
    sklearn_folder = tmp_path / "sklearn"
    shutil.copytree(sklearn_dir, sklearn_folder)
    (sklearn_folder / "requirements.txt").write_text("scikit-learn\n")
    assert detect_runtime(sklearn_folder) == "sklearn"


@pytest.fixture(scope="module")
def lightgbm_categorical(tmp_path_factory):
    """A booster trained on a DataFrame with a `category` column, and that DataFrame's first rows."""
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "f1": rng.normal(size=300),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], 300)),
            "f2": rng.normal(size=300),
        }
    )
    label = (frame["colour"] == "red") * 2.0 + (frame["colour"] == "green") * 1.0 + frame["f1"] * 0.1
    params = {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(frame, label=label), 20)
    folder = tmp_path_factory.mktemp("lightgbm-categorical")
    booster.save_model(str(folder / "model.bst"))
    assert "pandas_categorical:" in (folder / "model.bst").read_text()
    return folder, booster


def test_lightgbm_category_columns_are_given_the_training_categories(lightgbm_categorical):
    """The values of a column trained as a pandas `category` arrive as strings (V1 objects, V2 `pd`
    BYTES inputs); they are coded with the training categories, and an unseen one is missing (NaN)."""
    import pandas as pd

    folder, booster = lightgbm_categorical
    rows = [
        {"colour": "red", "f2": 0.0, "f1": 1.0},
        {"colour": "blue", "f2": 0.5, "f1": -1.0},
        {"colour": "purple", "f2": 0.0, "f1": 0.0},
    ]
    frame = pd.DataFrame(rows)[["f1", "colour", "f2"]]
    frame["colour"] = pd.Categorical(["red", "blue", None], categories=["blue", "green", "red"])
    expected = booster.predict(frame)
    assert len(set(expected.round(6))) == 3
    v2 = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "colour", "shape": [3], "datatype": "BYTES", "data": [r["colour"] for r in rows]},
            {"name": "f1", "shape": [3], "datatype": "FP64", "data": [r["f1"] for r in rows]},
            {"name": "f2", "shape": [3], "datatype": "FP64", "data": [r["f2"] for r in rows]},
        ],
    }
    server = serve("--model-dir", str(folder), "--model-name", "lgb", grpc=False)
    try:
        response = httpx.post(server.url + "/v1/models/lgb:predict", json={"instances": rows})
        assert response.status_code == 200, response.text
        assert np.allclose(response.json()["predictions"], expected)
        response = httpx.post(server.url + "/v2/models/lgb/infer", json=v2)
        assert response.status_code == 200, response.text
        assert np.allclose(response.json()["outputs"][0]["data"], expected)
    finally:
        server.stop()


def test_lightgbm_categories_are_paired_only_when_the_model_says_how(tmp_path, lightgbm_categorical):
    """An ordered `category` column is saved with its categories but trained as numeric codes, so the
    saved categories no longer pair one to one with the categorical features: nothing is converted."""
    import lightgbm as lgb
    import pandas as pd

    from modelplane.runtimes.lightgbm import training_categories, with_training_categories

    folder, _ = lightgbm_categorical
    booster = lgb.Booster(model_file=str(folder / "model.bst"))
    assert training_categories(booster) == {"colour": ["blue", "green", "red"]}
    frame = with_training_categories(
        pd.DataFrame({"colour": ["red", "pink"], "f1": [1.0, 2.0]}), training_categories(booster)
    )
    assert frame["colour"].cat.codes.tolist() == [2, -1]
    size = pd.Categorical(["S", "M", "L"] * 20, categories=["S", "M", "L"], ordered=True)
    colour = pd.Categorical(["red", "blue", "blue", "red"] * 15)
    mixed = pd.DataFrame({"size": size, "colour": colour, "f1": np.arange(60.0)})
    params = {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(mixed, label=np.arange(60.0)), 2).save_model(str(tmp_path / "m.bst"))
    mixed_booster = lgb.Booster(model_file=str(tmp_path / "m.bst"))
    assert len(mixed_booster.pandas_categorical) == 2
    assert training_categories(mixed_booster) == {}


def test_a_body_with_both_instances_and_inputs_is_read_from_inputs_as_kserve_reads_it(lightgbm_dir):
    from modelplane.runtimes.base import v1_instance_list
    from modelplane.runtimes.lightgbm import LightGBMModel

    model = LightGBMModel("lgb", str(lightgbm_dir))
    model.load()
    both = {"instances": IRIS_ROWS[:1], "inputs": IRIS_ROWS}
    expected = asyncio.run(model.predict({"instances": IRIS_ROWS}))["predictions"]
    assert np.allclose(asyncio.run(model.predict(both))["predictions"], expected)
    assert v1_instance_list({"inputs": ["b", "c"], "instances": ["a"]}) == ["b", "c"]
