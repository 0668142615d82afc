from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.server.processes import serve, start_models_server

IRIS_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


@pytest.fixture(scope="session")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory, iris):
    X, y = iris
    folder = tmp_path_factory.mktemp("sklearn")
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), folder / "model.joblib")
    return folder


@pytest.fixture(scope="module")
def iris_server(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def test_models_server():
    """The test models of tests/server/models.py, each under its own name."""
    server = start_models_server()
    yield server
    server.stop()


def iris_array():
    return np.array(IRIS_ROWS, dtype=np.float32)
