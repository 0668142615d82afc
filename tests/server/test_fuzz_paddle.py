"""The paddle runtime fuzzed with hypothesis: any shape, datatype and values sent to small Paddle models
(paddle_models.py, built in a process of their own) is an answer or a 4xx, and the server serves on.
Bounded to a few seconds."""

from __future__ import annotations

import importlib.util
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.paddle_models import write_models
from tests.server.processes import serve
from tests.server.test_fuzz_rest import datatypes, dumps, json_values

# Looked for, never imported here: a test worker that has imported TensorFlow would crash on it.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("paddle") is None, reason="the paddle runtime needs Paddle"
)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
values = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 3, -1, 1e308, "a", True, None]),
)
shapes = st.one_of(
    st.lists(st.integers(min_value=0, max_value=5), max_size=4),
    st.lists(st.integers(min_value=-2, max_value=2**33), max_size=3),
)
tensors = st.builds(
    lambda shape, datatype, data: {"name": "x", "shape": shape, "datatype": datatype, "data": data},
    shapes,
    datatypes,
    st.lists(values, max_size=24) | json_values,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = write_models(tmp_path_factory.mktemp("paddle"), ("linear", "lookup"))
    server = serve("--model-dir", str(models["linear"].parent), "--nthread", "2")
    yield server
    server.stop()


@FUZZ
@given(model=st.sampled_from(["linear", "lookup"]), tensor=tensors, v1=st.booleans())
def test_any_tensor_is_answered_without_a_server_error(server, model, tensor, v1):
    if v1:
        response = httpx.post(
            f"{server.url}/v1/models/{model}:predict",
            content=dumps({"instances": tensor["data"]}),
            timeout=30,
        )
    else:
        response = httpx.post(
            f"{server.url}/v2/models/{model}/infer", content=dumps({"inputs": [tensor]}), timeout=30
        )
    assert response.status_code < 500, response.text
    assert httpx.get(f"{server.url}/v2/health/live", timeout=30).status_code == 200


@pytest.mark.parametrize("value", [9.3e18, 1e300, -1e19])
def test_a_number_past_an_id_inputs_int64_is_a_client_error(server, value):
    response = httpx.post(f"{server.url}/v1/models/lookup:predict", json={"instances": [value]}, timeout=30)
    assert response.status_code == 400, response.text
    assert "not an array of int64" in response.json()["error"]
