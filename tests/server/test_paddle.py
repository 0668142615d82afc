"""The paddle runtime: small Paddle models (paddle_models.py, in Paddle 3's format and in Paddle 2's, which
KServe's paddleserver loads) served by a real `modelplane serve`, spoken to in V1, in V2 with
tritonclient.http and over gRPC with tritonclient.grpc, with the requests and answers of KServe's
paddleserver: the first input in, the first output back."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from modelplane.runtimes.base import ModelMissingError
from modelplane.runtimes.detect import detect_runtime
from modelplane.runtimes.paddle_program import find_paddle_files
from tests.server.paddle_models import REPO_ROOT, TABLE, linear, write_models
from tests.server.processes import serve
from tests.server.processes import v1_predict as predict
from tests.server.processes import v2_infer as infer

# Looked for, never imported here: a test worker that has imported TensorFlow would crash on it.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("paddle") is None,
    reason='the paddle runtime needs Paddle: pip install "modelplane[paddle]"',
)

ROWS = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]
LINEAR_MODELS = ["linear", "linear-pdmodel"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return write_models(tmp_path_factory.mktemp("paddle"))


@pytest.fixture(scope="module")
def server(models):
    """One server for every model: the folder is a repository, each subfolder a model, found by its
    `.pdiparams` (no --runtime)."""
    root = models["linear"].parent
    server = serve("--model-dir", str(root), "--nthread", "2")
    yield server
    server.stop()


def test_paddle_folders_are_detected_in_either_format(models):
    for folder in models.values():
        assert detect_runtime(folder) == "paddle"
    assert find_paddle_files(models["linear"]).program.name == "model.json"
    assert find_paddle_files(models["linear-pdmodel"]).program.name == "model.pdmodel"


def test_a_program_is_found_as_kserve_s_paddleserver_finds_it(tmp_path):
    (tmp_path / "weights.pdiparams").write_bytes(b"")
    with pytest.raises(ModelMissingError, match=r"a \.pdmodel \(Paddle 2\) or a \.json \(Paddle 3\)"):
        find_paddle_files(tmp_path)
    (tmp_path / "program.json").write_text("{}")
    assert find_paddle_files(tmp_path).program.name == "program.json"  # the folder's only one
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RuntimeError, match="More than one .json"):
        find_paddle_files(tmp_path)
    (tmp_path / "weights.json").write_text("{}")
    assert find_paddle_files(tmp_path).program.name == "weights.json"  # named as the parameters are
    (tmp_path / "a.pdmodel").write_bytes(b"")
    (tmp_path / "b.pdmodel").write_bytes(b"")
    with pytest.raises(RuntimeError, match="More than one .pdmodel"):
        find_paddle_files(tmp_path)


@pytest.mark.parametrize("model", LINEAR_MODELS)
def test_v1_answers_the_first_output_as_predictions(server, model):
    response = predict(server, model, {"instances": ROWS})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], linear(ROWS), rtol=1e-6)


@pytest.mark.parametrize("model", LINEAR_MODELS)
def test_v2_json_answers_output_0(server, model):
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROWS}]}
    response = infer(server, model, body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("output-0", [2, 3], "FP32")
    np.testing.assert_allclose(output["data"], linear(ROWS).ravel(), rtol=1e-6)


def test_v2_rest_with_tritonclient_and_metadata(server):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    rows = triton_http.InferInput("x", [2, 4], "FP32")
    rows.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
    result = client.infer("linear", [rows])
    np.testing.assert_allclose(result.as_numpy("output-0"), linear(ROWS), rtol=1e-6)
    # The input under the predictor's name, the output under the answer's (the program calls it
    # fetch_name_0), with the shapes and datatypes the program declares.
    metadata = client.get_model_metadata("linear")
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]
    legacy = client.get_model_metadata("linear-pdmodel")
    assert (legacy["inputs"], legacy["outputs"]) == (metadata["inputs"], metadata["outputs"])
    # The output metadata names is one a request can ask for.
    (named,) = metadata["outputs"]
    asked = client.infer("linear", [rows], outputs=[triton_http.InferRequestedOutput(named["name"])])
    np.testing.assert_allclose(asked.as_numpy(named["name"]), linear(ROWS), rtol=1e-6)


def test_grpc_with_tritonclient(server):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert all(client.is_model_ready(name) for name in (*LINEAR_MODELS, "lookup"))
    rows = triton_grpc.InferInput("x", [2, 4], "FP32")
    rows.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
    result = client.infer("linear-pdmodel", [rows])
    np.testing.assert_allclose(result.as_numpy("output-0"), linear(ROWS), rtol=1e-6)
    metadata = client.get_model_metadata("lookup", as_json=True)
    assert metadata["inputs"] == [{"name": "ids", "datatype": "INT64", "shape": ["-1"]}]

    wide = triton_grpc.InferInput("x", [1, 5], "FP32")
    wide.set_data_from_numpy(np.ones((1, 5), dtype=np.float32))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("linear", [wide])
    assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
    assert "second dimension" in caught.value.message()


def test_an_input_of_another_datatype_is_fed_as_the_model_takes_it(server):
    """KServe's paddleserver sends float32 whatever the model takes; an int64 input gets int64 here."""
    response = predict(server, "lookup", {"instances": [0, 3.0]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [TABLE[0].tolist(), TABLE[3].tolist()]}


@pytest.mark.parametrize("model", LINEAR_MODELS)
def test_an_input_the_model_cannot_take_is_a_400(server, model):
    response = predict(server, model, {"instances": [[1.0, 2.0, 3.0]]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(f"the input does not fit model {model}: The input's second dimension")
    assert "[Hint" not in error and "In user code" not in error
    body = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}
    assert infer(server, model, body).status_code == 400
    assert predict(server, model, {"instances": [["a", "b", "c", "d"]]}).status_code == 400
    assert predict(server, model, {"instances": []}).status_code == 400
    # The server is still there, and still right.
    np.testing.assert_allclose(
        predict(server, model, {"instances": ROWS}).json()["predictions"], linear(ROWS)
    )


@pytest.mark.parametrize("model", ["lookup", "lookup-padded"])
@pytest.mark.parametrize("outside", [-1, 5, -2, 10**9])
def test_an_id_out_of_the_table_is_a_400(server, model, outside):
    """Paddle itself refuses some of these, but answers whatever memory -1 points at, and where the table
    has a padding row it checks no id at all (10**9 crashes the process)."""
    expected = f"input ids indexes an embedding table of 5 rows: expected >= 0 and < 5, but got {outside}"
    response = predict(server, model, {"instances": [0, outside]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == f"the input does not fit model {model}: {expected}"
    body = {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [outside, 1]}]}
    response = infer(server, model, body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    # The server is still there, and still right.
    padding = model == "lookup-padded"
    expected_rows = [[0.0, 0.0] if padding else TABLE[0].tolist(), TABLE[4].tolist()]
    assert predict(server, model, {"instances": [0, 4]}).json() == {"predictions": expected_rows}


def test_a_model_of_several_inputs_fails_to_load_saying_why(tmp_path):
    """Its other inputs would never be fed."""
    write_models(tmp_path, ("pair",))
    server = serve("--model-dir", str(tmp_path / "pair"), ready_path="/v2/health/live")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (model,) = httpx.post(f"{server.url}/v2/repository/index", json={}, timeout=30).json()
            if "reason" in model:
                break
            time.sleep(0.2)
    finally:
        server.stop()
    assert model["state"] == "UNAVAILABLE"
    expected = "model.json takes 2 inputs (a, b): the paddle runtime feeds a request to a model's one input"
    assert expected in model["reason"]


def test_sigterm_drains_the_server_paddle_does_not_abort_it(models):
    """Paddle installs its own SIGTERM handler as it is imported, which aborts the process; the server's
    is put back, so a SIGTERM drains and exits 0."""
    server = serve("--model-dir", str(models["linear"].parent))
    try:
        assert predict(server, "linear", {"instances": ROWS}).status_code == 200
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.log()
    assert "stopping: draining requests in flight" in server.log()
    assert "Termination signal" not in server.log()


def test_paddle_is_refused_beside_tensorflow_rather_than_crashing(models):
    """Paddle's library, loaded after TensorFlow's, crashes the process (SIGSEGV): a server that has loaded
    a TensorFlow model refuses a Paddle one, and goes on."""
    script = (
        "import sys, tensorflow\n"
        "from modelplane.runtimes.paddle import PaddleModel\n"
        "try:\n"
        "    PaddleModel('linear', sys.argv[1]).load()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(models["linear"])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr
    assert "Paddle cannot be loaded into a server that has loaded TensorFlow" in found.stdout


@pytest.mark.parametrize("model", ["lookup-reshaped", "lookup-cast"])
@pytest.mark.parametrize("outside", [-1, 5, 10**9])
def test_ids_that_reach_a_table_through_a_reshape_or_a_cast_are_checked_too(server, model, outside):
    """A reshape or a cast keeps the feed's values: an id outside the padded table (which Paddle does not
    check, and 10**9 crashes the process) is still the input's, and a 400."""
    rows = [[0, outside]] if model == "lookup-reshaped" else [0, outside]
    response = predict(server, model, {"instances": rows})
    assert response.status_code == 400, response.text
    assert f"expected >= 0 and < 5, but got {outside}" in response.json()["error"]
    good = [[0, 4]] if model == "lookup-reshaped" else [0, 4]
    assert predict(server, model, {"instances": good}).json() == {
        "predictions": [[0.0, 0.0], TABLE[4].tolist()]
    }


def test_a_nan_id_sent_as_binary_is_a_400(server):
    """JSON has no NaN, but a binary tensor does: a float id that is not a number is outside the table."""
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    ids = triton_http.InferInput("ids", [2], "FP32")
    ids.set_data_from_numpy(np.asarray([0.0, np.nan], dtype=np.float32), binary_data=True)
    with pytest.raises(InferenceServerException) as refused:
        client.infer("lookup-cast", [ids])
    assert refused.value.status() == "400"
    assert "expected >= 0 and < 5, but got nan" in refused.value.message()
