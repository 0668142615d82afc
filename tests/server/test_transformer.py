"""A transformer in front of a predictor: the default predict forwards over REST (V1 and V2) and gRPC
(KServe's `grpc-v2`)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

TRANSFORMER = """
from modelplane.server import InferRequest, Model


class Transformer(Model):
    def load(self):
        self.ready = True
        return True

    def preprocess(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            return payload
        return {"instances": payload["rows"]}

    def postprocess(self, result, headers=None):
        if isinstance(result, dict):
            return {**result, "via": "transformer"}
        return result


# Turns V1 rows into an InferRequest and leaves the predictor's V2 answer as it is.
class V1RowsToInferRequest(Model):
    def load(self):
        self.ready = True
        return True

    def preprocess(self, payload, headers=None):
        import numpy as np

        from modelplane.server import InferInput

        rows = np.asarray(payload["rows"], dtype=np.float32)
        tensor = InferInput("input-0", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        return InferRequest(model_name=self.name, infer_inputs=[tensor])


class PassThrough(Model):
    def load(self):
        self.ready = True
        return True


# A predictor that answers every other call UNAVAILABLE (503), the first among them.
class UnavailableEveryOtherCall(Model):
    def load(self):
        self.calls = 0
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        import numpy as np

        from modelplane.server import InferOutput, InferResponse, ServerNotReady

        self.calls += 1
        if self.calls % 2:
            raise ServerNotReady("not yet: try again")
        answer = InferOutput("calls", [1], "INT64")
        answer.set_data_from_numpy(np.asarray([self.calls]))
        return InferResponse(response_id="", model_name=self.name, infer_outputs=[answer])


# Turns V1 rows into a V2 request written as a dict, as KServe's transformers may.
class V2DictTransformer(Model):
    def load(self):
        self.ready = True
        return True

    def preprocess(self, payload, headers=None):
        rows = payload["rows"]
        return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}]}

    def postprocess(self, result, headers=None):
        return {"predictions": result.outputs[0].data}
"""


@pytest.fixture(scope="module")
def transformer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("transformer") / "transformer.py"
    path.write_text(TRANSFORMER)
    return path


def transformer_before(
    predictor,
    transformer_file,
    protocol: str,
    cls: str = "Transformer",
    flag: str = "--predictor-protocol",
    host: str | None = None,
    more: tuple[str, ...] = (),
    ready_status: int = 200,
):
    """A transformer of `predictor`'s REST port (its gRPC port for `grpc-v2`), or of `host`."""
    address = host or f"127.0.0.1:{predictor.grpc_port if protocol == 'grpc-v2' else predictor.http_port}"
    return serve(
        "--model-class",
        f"{transformer_file}:{cls}",
        "--model-name",
        "iris",
        "--predictor-host",
        address,
        flag,
        protocol,
        *more,
        grpc=False,
        ready_status=ready_status,
    )


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_transformer_forwards_to_its_predictor(iris_server, transformer_file, protocol):
    transformer = transformer_before(iris_server, transformer_file, protocol)
    try:
        if protocol == "v1":
            response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
            assert response.json() == {"predictions": [1, 1], "via": "transformer"}
            unknown = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": [[1, 2]]})
            assert unknown.status_code == 400
            assert "features" in unknown.json()["error"]
        else:
            body = {
                "id": "t1",
                "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}],
            }
            response = httpx.post(transformer.url + "/v2/models/iris/infer", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["outputs"][0]["data"] == [1, 1]
            assert response.json()["id"] == "t1"
    finally:
        transformer.stop()


def test_a_v2_request_written_as_a_dict_is_passed_on_to_the_predictor(iris_server, transformer_file):
    """KServe's transformer speaking V2 posts the dict its preprocess returns to /infer, and hands the
    answer to postprocess as an InferResponse."""
    transformer = transformer_before(iris_server, transformer_file, "v2", cls="V2DictTransformer")
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}
    finally:
        transformer.stop()


@pytest.mark.parametrize("cls", ["V1RowsToInferRequest", "V2DictTransformer"])
def test_grpc_v2_calls_the_predictors_model_infer(iris_server, transformer_file, cls):
    """KServe's `--protocol grpc-v2`: the predictor's gRPC port answers; the answer reaches postprocess
    as an InferResponse. Only the predictor's gRPC port is given, so a REST call could not succeed."""
    transformer = transformer_before(iris_server, transformer_file, "grpc-v2", cls, "--protocol")
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 200, response.text
        if cls == "V2DictTransformer":
            assert response.json() == {"predictions": [1, 1]}
        else:
            (output,) = response.json()["outputs"]
            assert (output["shape"], output["data"]) == ([2], [1, 1])
    finally:
        transformer.stop()


def test_grpc_v2_reaches_a_predictor_named_by_its_http_port(iris_server, transformer_file):
    """As a Kubernetes Service's port 80 reaches the predictor's HTTP port: gRPC is served there too."""
    address = f"127.0.0.1:{iris_server.http_port}"
    transformer = transformer_before(None, transformer_file, "grpc-v2", "V2DictTransformer", host=address)
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}
    finally:
        transformer.stop()


def test_grpc_v2_passes_the_predictors_status_on(iris_server, transformer_file):
    """A tensor the predictor refuses is its INVALID_ARGUMENT, a 400 to the transformer's REST client;
    a predictor that is not there is a 502; a V2 request from a V2 client crosses as gRPC too."""
    transformer = transformer_before(iris_server, transformer_file, "grpc-v2")
    try:
        body = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
        refused = httpx.post(transformer.url + "/v2/models/iris/infer", json=body)
        assert refused.status_code == 400, refused.text
        assert "INVALID_ARGUMENT" in refused.json()["error"]
        body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
        # A header gRPC metadata cannot carry (not ASCII) is not passed on, and fails nothing.
        headers = {"x-request-id": "caf\u00e9".encode("latin-1")}
        answered = httpx.post(transformer.url + "/v2/models/iris/infer", json=body, headers=headers)
        assert answered.status_code == 200, answered.text
        assert answered.json()["outputs"][0]["data"] == [1, 1]
        v1 = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert v1.status_code == 500 and "grpc-v2" in v1.json()["error"], v1.text
    finally:
        transformer.stop()
    from modelplane.local.ports import free_loopback_port

    nobody = transformer_before(
        None, transformer_file, "grpc-v2", "V1RowsToInferRequest", host=f"127.0.0.1:{free_loopback_port()}"
    )
    try:
        response = httpx.post(nobody.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 502, response.text
        assert "cannot reach" in response.json()["error"]
    finally:
        nobody.stop()


def test_kserves_protocol_flag_chooses_the_protocol_spoken_to_the_predictor(iris_server, transformer_file):
    transformer = transformer_before(iris_server, transformer_file, "v2", "V2DictTransformer", "--protocol")
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.json() == {"predictions": [1, 1]}
    finally:
        transformer.stop()


def test_unreachable_predictor_is_502(transformer_file):
    from modelplane.local.ports import free_loopback_port

    transformer = serve(
        "--model-class",
        f"{transformer_file}:Transformer",
        "--model-name",
        "iris",
        "--predictor-host",
        f"127.0.0.1:{free_loopback_port()}",
        grpc=False,
    )
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 502
        assert "cannot reach" in response.json()["error"]
    finally:
        transformer.stop()


def test_a_v2_answer_to_a_v1_request_is_sent_as_v2_json(iris_server, transformer_file):
    """A transformer that turns a V1 request into a V2 one and leaves the answer as it came: KServe
    sends the InferResponse's V2 JSON to the V1 client."""
    transformer = transformer_before(iris_server, transformer_file, "v1", cls="V1RowsToInferRequest")
    try:
        response = httpx.post(transformer.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 200, response.text
        (output,) = response.json()["outputs"]
        assert (output["shape"], output["data"]) == ([2], [1, 1])
    finally:
        transformer.stop()


def test_a_predictor_slower_than_the_request_timeout_is_504(test_models_server, transformer_file):
    """KServe's `--predictor_request_timeout_seconds` bounds the wait for the predictor's answer."""
    transformer = serve(
        "--model-class",
        f"{transformer_file}:PassThrough",
        "--model-name",
        "slow",
        "--predictor-host",
        f"127.0.0.1:{test_models_server.http_port}",
        "--predictor_request_timeout_seconds",
        "1",
        grpc=False,
    )
    try:
        response = httpx.post(transformer.url + "/v1/models/slow:predict", json={"seconds": 5}, timeout=60)
        assert response.status_code == 504, response.text
        assert "did not answer within 1s" in response.json()["error"]
    finally:
        transformer.stop()


def test_a_predictor_error_reaches_a_grpc_client_with_its_code(iris_server, transformer_file):
    """A request the predictor refuses (400) is INVALID_ARGUMENT over gRPC, as over REST it is a 400:
    not UNAVAILABLE, which a client would retry."""
    transformer = serve(
        "--model-class",
        f"{transformer_file}:Transformer",
        "--model-name",
        "iris",
        "--predictor-host",
        f"127.0.0.1:{iris_server.http_port}",
    )
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{transformer.grpc_port}")
    try:
        tensor = triton_grpc.InferInput("input-0", [1, 2], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 2), dtype=np.float32))
        with pytest.raises(triton_grpc.InferenceServerException) as refused:
            client.infer("iris", [tensor])
        assert refused.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
        assert "answered 400" in refused.value.message()
    finally:
        client.close()
        transformer.stop()


def test_binary_tensors_cross_the_hop_to_the_predictor(iris_server, transformer_file):
    """The predictor's answer in the binary extension: its JSON length header is read off the hop."""
    import numpy as np
    import tritonclient.http as triton

    transformer = transformer_before(iris_server, transformer_file, "v2")
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
        tensor = triton.InferInput("input-0", [2, 4], "FP32")
        tensor.set_data_from_numpy(np.asarray(IRIS_ROWS, dtype=np.float32), binary_data=True)
        output = triton.InferRequestedOutput("output-0", binary_data=True)
        result = client.infer("iris", [tensor], outputs=[output])
        assert result.as_numpy("output-0").tolist() == [1, 1]
    finally:
        transformer.stop()


def test_a_classification_asked_of_a_transformer_is_made_once(transformer_file, tmp_path, iris):
    """The predictor answers with its scores; the transformer's answer is the one classified."""
    import joblib
    import tritonclient.http as triton
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "model.joblib")
    predictor = serve("--model-dir", str(tmp_path), "--model-name", "iris", "--predict-proba", grpc=False)
    try:
        transformer = transformer_before(predictor, transformer_file, "v2")
        try:
            client = triton.InferenceServerClient(f"127.0.0.1:{transformer.http_port}")
            tensor = triton.InferInput("input-0", [2, 4], "FP32")
            tensor.set_data_from_numpy(np.asarray(IRIS_ROWS, dtype=np.float32))
            output = triton.InferRequestedOutput("output-0", binary_data=False, class_count=1)
            result = client.infer("iris", [tensor], outputs=[output])
            answer = result.get_output("output-0")
            assert (answer["datatype"], answer["shape"]) == ("BYTES", [2, 1])
            # Classified once, by the transformer (which has no labels of its own): "value:index".
            assert [item.split(":")[1:] for item in answer["data"]] == [["1"], ["1"]]
        finally:
            transformer.stop()
    finally:
        predictor.stop()


EXAMPLE_VERBS = Path(__file__).with_name("example_verbs.py")


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_tf_servings_example_verbs_are_passed_on_as_v1_whatever_the_protocol(protocol):
    """`:classify` and `:regress` have no V2 form: the transformer passes them on to the predictor's
    verb of the same name, between its preprocess and postprocess, as it passes predict on."""
    predictor = serve("--model-class", f"{EXAMPLE_VERBS}:ExampleVerbs", "--model-name", "iris", grpc=False)
    try:
        plain = httpx.post(predictor.url + "/v1/models/iris:regress", json={"examples": [{"x": 1}]})
        assert plain.json() == {"results": [1.0]}
        transformer = transformer_before(predictor, EXAMPLE_VERBS, protocol, cls="TimesTen")
        try:
            url = transformer.url + "/v1/models/iris:regress"
            answer = httpx.post(url, json={"examples": [{"x": 1}, {"x": 2}]})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"results": [10.0, 20.0], "via": "transformer"}
        finally:
            transformer.stop()
    finally:
        predictor.stop()


def test_a_predictor_that_takes_no_connection_yet_is_tried_again_as_told(transformer_file):
    """KServe's `--predictor_request_retries`: the predictor's port opens half a second after the call;
    with retries the call gets through, without them it is a 502."""
    import http.server
    import threading

    from modelplane.local.ports import free_loopback_port

    class Predictor(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["content-length"]))
            body = b'{"predictions": [1, 1]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_loopback_port()
    host = f"127.0.0.1:{port}"
    patient = transformer_before(
        None, transformer_file, "v1", host=host, more=("--predictor_request_retries", "10")
    )
    impatient = transformer_before(None, transformer_file, "v1", host=host)
    late: list[http.server.HTTPServer] = []

    def open_late():
        time.sleep(0.5)
        late.append(http.server.HTTPServer(("127.0.0.1", port), Predictor))
        late[0].serve_forever()

    try:
        refused = httpx.post(impatient.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert refused.status_code == 502, refused.text
        opener = threading.Thread(target=open_late, daemon=True)
        opener.start()
        answer = httpx.post(patient.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [1, 1], "via": "transformer"}
    finally:
        patient.stop()
        impatient.stop()
        if late:
            late[0].shutdown()
            late[0].server_close()


def test_a_grpc_predictor_that_answers_unavailable_is_asked_again_as_told(transformer_file):
    """Over gRPC a retry is gRPC's retry policy, on UNAVAILABLE: one retry gets the second answer."""
    predictor = serve(
        "--model-class", f"{transformer_file}:UnavailableEveryOtherCall", "--model-name", "iris"
    )
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}]}
    patient = transformer_before(
        predictor, transformer_file, "grpc-v2", more=("--predictor-request-retries", "1")
    )
    try:
        answer = httpx.post(patient.url + "/v2/models/iris/infer", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [2]
        impatient = transformer_before(predictor, transformer_file, "grpc-v2")
        try:
            refused = httpx.post(impatient.url + "/v2/models/iris/infer", json=body)
            assert refused.status_code == 503, refused.text
            assert "UNAVAILABLE" in refused.json()["error"] and "try again" in refused.json()["error"]
        finally:
            impatient.stop()
    finally:
        patient.stop()
        predictor.stop()


@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc-v2"])
def test_a_transformer_told_to_check_its_predictor_is_ready_only_while_its_predictor_is(
    iris_server, transformer_file, protocol
):
    """KServe's `--enable_predictor_health_check`: the model's and the server's readiness are the
    predictor's too, asked in the transformer's protocol; without the flag a transformer is ready alone."""
    from modelplane.local.ports import free_loopback_port

    nowhere = f"127.0.0.1:{free_loopback_port()}"
    checking = ("--enable_predictor_health_check",)
    alone = transformer_before(
        None, transformer_file, protocol, host=nowhere, more=checking, ready_status=503
    )
    unchecked = transformer_before(None, transformer_file, protocol, host=nowhere)
    with_predictor = transformer_before(iris_server, transformer_file, protocol, more=checking)
    try:
        for path in ("/v2/health/ready", "/v2/models/iris/ready", "/v1/models/iris"):
            assert httpx.get(alone.url + path).status_code == 503, path
            assert httpx.get(unchecked.url + path).status_code == 200, path
            assert httpx.get(with_predictor.url + path).status_code == 200, path
        refused = httpx.get(alone.url + "/v2/models/iris/ready").json()["error"]
        assert (
            refused == f"Model with name iris is not ready. Its predictor {nowhere} does not have it ready."
        )
    finally:
        for transformer in (alone, unchecked, with_predictor):
            transformer.stop()
