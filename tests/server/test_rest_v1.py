"""V1 REST against a real server process."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc as triton_grpc
from sklearn.datasets import load_iris
from tritonclient.utils import InferenceServerException

from tests.server.conftest import IRIS_ROWS


def test_liveness_and_model_list(iris_server):
    assert httpx.get(iris_server.url + "/").json() == {"status": "alive"}
    assert httpx.get(iris_server.url + "/v1/models").json() == {"models": ["iris"]}
    assert httpx.get(iris_server.url + "/v1/models/iris").json() == {"name": "iris", "ready": True}


def test_predict_iris(iris_server):
    response = httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": [1, 1]}


def test_a_large_body_of_instances_is_predicted_as_a_small_one(iris_server):
    # Over a MiB: its instances are read straight into one array (protocol/lean_json.py).
    rows = load_iris().data.tolist() * 600
    body = orjson.dumps({"instances": rows})
    assert len(body) > 1 << 20
    large = httpx.post(iris_server.url + "/v1/models/iris:predict", content=body, timeout=60)
    small = httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": rows[:150]})
    assert large.status_code == 200, large.text
    assert large.json()["predictions"] == small.json()["predictions"] * 600
    ragged = orjson.dumps({"instances": rows + [[1.0, 2.0]]})
    refused = httpx.post(iris_server.url + "/v1/models/iris:predict", content=ragged, timeout=60)
    assert refused.status_code == 400 and "regular array" in refused.json()["error"]


def test_a_model_of_ones_own_gets_large_instances_as_lists(test_models_server):
    rows = [[0.5, 1.5, 2.5, 3.5]] * 100_000
    response = httpx.post(
        test_models_server.url + "/v1/models/instances-kind:predict", json={"instances": rows}, timeout=60
    )
    assert response.json() == {"predictions": ["list", 100_000]}


def test_predict_with_curl_default_form_content_type(iris_server):
    response = httpx.post(
        iris_server.url + "/v1/models/iris:predict",
        content=orjson.dumps({"instances": IRIS_ROWS}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.json() == {"predictions": [1, 1]}


def test_unknown_model_is_404(iris_server):
    response = httpx.post(iris_server.url + "/v1/models/nope:predict", json={"instances": IRIS_ROWS})
    assert response.status_code == 404
    assert response.json() == {"error": "Model with name nope does not exist."}
    assert httpx.get(iris_server.url + "/v1/models/nope").status_code == 404


def test_client_faults_are_400_with_a_reason(iris_server):
    url = iris_server.url + "/v1/models/iris:predict"
    cases = {
        b"{not json": "Unrecognized request format",
        b"": "empty",
        b'{"instances": 5}': 'Expected "instances" to be a list',
        b'{"foo": 1}': "instances",
        b'{"instances": [[1, 2, 3]]}': "features",
        b'{"instances": [[1, 2], [1]]}': "regular array",
        b'{"instances": [["a", "b", "c", "d"]]}': "does not fit",
    }
    for body, fragment in cases.items():
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        assert fragment in response.json()["error"], (body, response.json())


@pytest.mark.parametrize(
    ("instances", "fragment"),
    [
        ([[{"sepal_length": 5.1}, 2.8, 4.8, 1.4]], "must hold nothing but objects"),
        ([[{"a": 1}, [1, 2]]], "must hold nothing but objects"),
        ([[{"a": 1}], [{"a": 2}, None]], "must hold nothing but objects"),
    ],
)
def test_a_list_of_row_objects_with_other_values_is_400(iris_server, instances, fragment):
    response = httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": instances})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_unknown_route_and_wrong_method(iris_server):
    assert httpx.get(iris_server.url + "/nowhere").status_code == 404
    wrong = httpx.get(iris_server.url + "/v1/models/iris:predict")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    wrong = httpx.post(iris_server.url + "/v2/models/iris/ready")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
    wrong = httpx.delete(iris_server.url + "/v2/repository/index")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST")
    assert httpx.post(iris_server.url + "/v1/models/iris:unknownverb", json={}).status_code == 404


def test_explain_without_explainer_is_501(iris_server):
    response = httpx.post(iris_server.url + "/v1/models/iris:explain", json={"instances": IRIS_ROWS})
    assert response.status_code == 501
    assert "explainer" in response.json()["error"]


def test_metrics_count_requests_per_model_and_stage(iris_server):
    def predictions_timed() -> float:
        text = httpx.get(iris_server.url + "/metrics").text
        prefix = 'request_predict_seconds_count{model_name="iris"}'
        found = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    before = predictions_timed()
    httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS})
    wrong_width = httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": [[1.0, 2.0]]})
    assert wrong_width.status_code == 400
    assert predictions_timed() == before + 2  # a predict that fails is timed too, as in KServe
    text = httpx.get(iris_server.url + "/metrics").text
    assert 'modelplane_requests_total{code="200",model_name="iris",protocol="v1"}' in text
    assert 'modelplane_request_duration_seconds_bucket{le="0.005",model_name="iris",protocol="v1"}' in text


def test_requests_for_names_the_server_does_not_hold_share_one_label(iris_server):
    """A label per made-up name would grow the metrics (and every scrape) without bound."""

    def unknown_count() -> float:
        text = httpx.get(iris_server.url + "/metrics").text
        found = [line for line in text.splitlines() if line.startswith("modelplane_requests_total{")]
        return sum(float(line.rsplit(" ", 1)[1]) for line in found if 'model_name=""' in line)

    before = unknown_count()
    for number in range(5):
        httpx.post(f"{iris_server.url}/v1/models/made-up-{number}:predict", json={"instances": IRIS_ROWS})
        httpx.post(f"{iris_server.url}/v2/models/made-up-{number}/infer", json={"inputs": []})
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{iris_server.grpc_port}")
    tensor = triton_grpc.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), "float32"))
    for number in range(5):
        with pytest.raises(InferenceServerException, match="made-up-grpc"):
            client.infer(f"made-up-grpc-{number}", [tensor])
    assert unknown_count() == before + 15
    assert "made-up" not in httpx.get(iris_server.url + "/metrics").text


def test_custom_model_stages_and_response_headers(test_models_server):
    response = httpx.post(
        test_models_server.url + "/v1/models/stages:predict",
        json={"instances": [1, 2]},
        headers={"x-request-id": "abc"},
    )
    assert response.status_code == 200
    assert response.headers["prediction-time-latency"] == "1.5"
    assert response.json() == {
        "predictions": [1, 2],
        "trail": ["preprocess", "predict", "postprocess"],
        "request_id": "abc",
    }


def test_explain_on_a_model_that_has_one(test_models_server):
    response = httpx.post(test_models_server.url + "/v1/models/echo:explain", json={"instances": [[1]]})
    assert response.json() == {"explanations": [[1]]}


def test_datetime_output_is_iso_text(test_models_server):
    response = httpx.post(test_models_server.url + "/v1/models/datetime:predict", json={"instances": [1]})
    assert response.json() == {"predictions": ["2024-01-02T03:04:05"]}


def test_model_bug_is_500_with_the_error(test_models_server):
    response = httpx.post(test_models_server.url + "/v1/models/buggy:predict", json={"instances": [1]})
    assert response.status_code == 500
    assert response.json() == {"error": "ZeroDivisionError : division by zero"}


def test_a_slow_sync_model_does_not_block_other_requests(test_models_server):
    finished = []

    def slow_call():
        httpx.post(test_models_server.url + "/v1/models/slow:predict", json={"seconds": 5}, timeout=60)
        finished.append("slow")

    thread = threading.Thread(target=slow_call)
    thread.start()
    time.sleep(0.5)  # the slow prediction is on a worker thread by now
    # The loop keeps answering meanwhile: an answer blocked behind the model would come after it.
    response = httpx.post(
        test_models_server.url + "/v1/models/echo:predict", json={"instances": [1]}, timeout=60
    )
    assert response.status_code == 200
    assert finished == []
    thread.join()
    assert finished == ["slow"]


def test_model_that_failed_to_load_is_not_ready_and_says_why(test_models_server):
    url = test_models_server.url
    assert httpx.get(url + "/").status_code == 200
    response = httpx.get(url + "/v1/models/broken")
    assert response.status_code == 503
    assert "weights are corrupt" in response.json()["error"]
    response = httpx.post(url + "/v1/models/broken:predict", json={"instances": [1]})
    assert response.status_code == 503
    assert httpx.get(url + "/v1/models/sleepy").status_code == 503
