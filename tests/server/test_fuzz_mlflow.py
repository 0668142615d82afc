"""MLflow's scoring routes and its V2/V1 paths fuzzed with hypothesis: whatever body and content type a
client sends, a mistake of its own is a 4xx and the server serves on. Bounded to a few seconds."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.processes import REPO_ROOT, serve
from tests.server.test_fuzz_rest import dumps, json_values, v1_bodies, v2_bodies

pytest.importorskip("mlflow")

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
scoring_bodies = st.one_of(
    st.binary(max_size=100),
    json_values.map(dumps),
    st.fixed_dictionaries(
        {},
        optional={
            key: json_values
            | st.just({"columns": IRIS_COLUMNS, "data": [[1.0, 2.0, 3.0, 4.0]]})
            | st.just([dict.fromkeys(IRIS_COLUMNS, 1.0)])
            for key in ("dataframe_split", "dataframe_records", "instances", "inputs", "params")
        },
    ).map(dumps),
    st.lists(st.lists(st.sampled_from(["1.0", "a", "", '"x"', "1e999"]), max_size=5), max_size=3).map(
        lambda rows: "\n".join([",".join(IRIS_COLUMNS)] + [",".join(row) for row in rows]).encode()
    ),
)
content_types = st.sampled_from(
    ["application/json", "text/csv", "application/x-parquet", "application/json; format=pandas-split",
     "text/plain", "", "application/json; charset=latin-1", "text/csv; charset=utf-8"]
)  # fmt: skip


@pytest.fixture(scope="module")
def iris_alone(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    subprocess.run([sys.executable, "-m", "tests.server.mlflow_models", str(root)], cwd=REPO_ROOT, check=True)
    server = serve("--model-dir", str(root / "iris"), "--model-name", "iris", ready_timeout=120)
    yield server
    server.stop()


@FUZZ
@given(body=scoring_bodies, content_type=content_types)
def test_any_invocation_is_answered_without_a_server_error(iris_alone, body, content_type):
    response = httpx.post(
        f"{iris_alone.url}/invocations", content=body, headers={"content-type": content_type}, timeout=30
    )
    assert response.status_code < 500, response.text


@FUZZ
@given(body=st.one_of(v1_bodies.map(dumps), v2_bodies.map(dumps), st.binary(max_size=100)))
def test_any_v1_or_v2_request_is_answered_without_a_server_error(iris_alone, body):
    for path in ("/v1/models/iris:predict", "/v2/models/iris/infer"):
        response = httpx.post(iris_alone.url + path, content=body, timeout=30)
        assert response.status_code < 500, response.text
    assert httpx.get(f"{iris_alone.url}/ping", timeout=30).status_code == 200
