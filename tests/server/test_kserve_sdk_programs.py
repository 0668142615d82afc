"""Programs written with KServe's SDK, their imports changed from `kserve` to `modelplane.server` and
nothing else, run as KServe runs them: `python model.py --model_name ... --http_port ...`."""

from __future__ import annotations

import sys

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from modelplane.local.ports import free_loopback_port
from modelplane.server import InferOutput, Model, ModelServer, PredictorConfig
from tests.server.conftest import IRIS_ROWS
from tests.server.processes import ServerProcess, serve

# KServe's custom model sample, as its docs write it.
CUSTOM_MODEL = """
import argparse
from typing import Dict, Union

import numpy as np
from modelplane.server import (
    Model,
    ModelServer,
    model_server,
    InferRequest,
    InferOutput,
    InferResponse,
    logging,
)
from modelplane.server import generate_uuid


class CustomModel(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name
        self.ready = False
        self.load()

    def load(self):
        self.ready = True

    def start(self):
        self.factor = 2

    def preprocess(self, payload: Union[Dict, InferRequest], headers: Dict[str, str] = None):
        if isinstance(payload, Dict):
            headers["request-type"] = "v1"
            return np.asarray(payload["instances"], dtype=np.float32)
        return payload.inputs[0].as_numpy()

    async def predict(self, input_tensor, headers=None, response_headers=None):
        result = input_tensor * self.factor
        response_headers["x-model"] = self.name
        if headers.get("request-type") == "v1":
            return {"predictions": result.tolist()}
        output = InferOutput(name="output-0", shape=list(result.shape), datatype="FP32", data=result)
        return InferResponse(model_name=self.name, infer_outputs=[output], response_id=generate_uuid())


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    model = CustomModel(args.model_name)
    model.load()
    ModelServer().start([model])
"""

# KServe's transformer samples: the predictor's host and protocol set on the model by their names.
TRANSFORMER = """
import argparse

from modelplane.server import Model, ModelServer, model_server


class Transformer(Model):
    def __init__(self, name, predictor_host, protocol):
        super().__init__(name)
        self.predictor_host = predictor_host
        self.protocol = protocol
        self.ready = True

    def preprocess(self, payload, headers=None):
        rows = payload["rows"]
        return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}]}

    def postprocess(self, result, headers=None):
        return {"predictions": result.outputs[0].data}


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    model = Transformer(args.model_name, predictor_host=args.predictor_host, protocol=args.protocol)
    ModelServer().start([model])
"""

# A transformer that only passes requests on, started with KServe's flags.
PASS_THROUGH = """
import argparse

from modelplane.server import Model, ModelServer, model_server

parser = argparse.ArgumentParser(parents=[model_server.parser])
parser.add_argument("--return_response_headers", action="store_true")
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    ModelServer().start([Model(args.model_name, return_response_headers=args.return_response_headers)])
"""

# The errors of `kserve.errors`, and Python's NotImplementedError, raised as KServe's users raise them.
RAISING = """
import numpy as np

from modelplane.server import InferenceError, InferOutput, Model, ModelNotFound, UnsupportedProtocol


class Raising(Model):
    def predict(self, payload, headers=None):
        kind = payload["raise"] if isinstance(payload, dict) else payload.inputs[0].as_string()[0]
        if kind == "not-implemented":
            raise NotImplementedError("no predict for this")
        if kind == "protocol":
            raise UnsupportedProtocol("v3")
        if kind == "inference":
            raise InferenceError("the model gave up", status="ABORTED")
        if kind == "not-found":
            raise ModelNotFound()
        if kind == "bad-output":
            InferOutput("scores", [2], "FP32").set_data_from_numpy(np.zeros(3, np.float32))
        return {"predictions": []}
"""

# A program that leaves logging to ModelServer, as KServe's does when the program set up none.
LOGGING = """
from modelplane.server import Model, ModelServer, logging


class Quiet(Model):
    def load(self):
        logging.logger.info("the weights are in")
        self.ready = True
        return self.ready


if __name__ == "__main__":
    ModelServer().start([Quiet("quiet")])
"""


def run_program(path, *flags: str, grpc_port: bool = True) -> ServerProcess:
    http_port = free_loopback_port()
    grpc = free_loopback_port() if grpc_port else None
    ports = [
        f"--http_port={http_port}",
        *(["--grpc_port", str(grpc)] if grpc else ["--enable_grpc", "false"]),
    ]
    server = ServerProcess([sys.executable, str(path), *flags, *ports], http_port, grpc)
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        raise
    return server


def test_kserves_custom_model_sample_runs_with_kserves_flags(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(CUSTOM_MODEL)
    server = run_program(path, "--model_name", "custom")
    try:
        v1 = httpx.post(server.url + "/v1/models/custom:predict", json={"instances": [[1, 2]]})
        assert v1.status_code == 200, v1.text
        assert v1.json() == {"predictions": [[2.0, 4.0]]}
        assert v1.headers["x-model"] == "custom"
        body = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}
        v2 = httpx.post(server.url + "/v2/models/custom/infer", json=body)
        assert v2.json()["outputs"][0]["data"] == [2.0, 4.0]
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        tensor = triton_grpc.InferInput("x", [2], "FP32")
        tensor.set_data_from_numpy(np.array([1, 2], np.float32))
        assert client.infer("custom", [tensor]).as_numpy("output-0").tolist() == [2.0, 4.0]
    finally:
        server.stop()


def test_kserves_transformer_sample_speaks_the_protocol_it_sets(iris_server, tmp_path):
    path = tmp_path / "transformer.py"
    path.write_text(TRANSFORMER)
    host = f"127.0.0.1:{iris_server.http_port}"
    server = run_program(
        path, "--model_name", "iris", "--predictor_host", host, "--protocol", "v2", grpc_port=False
    )
    try:
        response = httpx.post(server.url + "/v1/models/iris:predict", json={"rows": IRIS_ROWS})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}
    finally:
        server.stop()


def test_kserves_predictor_request_timeout_bounds_the_wait_for_the_predictor(test_models_server, tmp_path):
    path = tmp_path / "transformer.py"
    path.write_text(PASS_THROUGH)
    host = f"127.0.0.1:{test_models_server.http_port}"
    flags = ("--model_name", "slow", "--predictor_host", host, "--predictor_request_timeout_seconds", "1")
    server = run_program(path, *flags, grpc_port=False)
    try:
        response = httpx.post(server.url + "/v1/models/slow:predict", json={"seconds": 5}, timeout=60)
        assert response.status_code == 504, response.text
        assert "did not answer within 1s" in response.json()["error"]
    finally:
        server.stop()


@pytest.mark.parametrize("returned", [True, False])
def test_a_transformer_returns_its_predictors_headers_when_kserve_would(
    test_models_server, tmp_path, returned
):
    """KServe's `Model(name, return_response_headers=True)` passes the predictor's response headers back
    to the client (but for the framing, which the transformer's own answer has)."""
    path = tmp_path / "transformer.py"
    path.write_text(PASS_THROUGH)
    flags = ["--model_name", "headers", "--predictor_host", f"127.0.0.1:{test_models_server.http_port}"]
    server = run_program(path, *flags, *(["--return_response_headers"] if returned else []), grpc_port=False)
    try:
        body = {"instances": [["x-model-version", "7"]]}
        response = httpx.post(server.url + "/v1/models/headers:predict", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": 1}
        assert response.headers.get("x-model-version") == ("7" if returned else None)
        assert response.headers.get_list("content-type") == ["application/json"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def raising_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("raising") / "raising.py"
    path.write_text(RAISING)
    server = serve("--model-class", f"{path}:Raising", "--model-name", "raising")
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("not-implemented", 501, grpc.StatusCode.UNIMPLEMENTED, "no predict for this"),
        ("protocol", 501, grpc.StatusCode.UNIMPLEMENTED, "Unsupported protocol v3."),
        ("inference", 500, grpc.StatusCode.INTERNAL, "[ABORTED] the model gave up"),
        ("not-found", 404, grpc.StatusCode.NOT_FOUND, "Model with name None does not exist."),
        (
            "bad-output",
            500,
            grpc.StatusCode.INTERNAL,
            "input 'scores': array of shape [3] does not match shape [2]",
        ),
    ],
)
def test_kserves_errors_answer_kserves_status(raising_server, kind, status, code, message):
    response = httpx.post(raising_server.url + "/v1/models/raising:predict", json={"raise": kind})
    assert response.status_code == status
    assert response.json() == {"error": message}
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{raising_server.grpc_port}")
    tensor = triton_grpc.InferInput("raise", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([kind.encode()], dtype=np.object_))
    with pytest.raises(triton_grpc.InferenceServerException) as failure:
        client.infer("raising", [tensor])
    assert failure.value.status() == f"StatusCode.{code.name}"
    assert message in failure.value.message()


def test_a_datatype_written_in_lower_case_is_kserves_upper_case():
    output = InferOutput("o", [2], "fp32")
    output.set_data_from_numpy(np.zeros(2, np.float32), binary_data=False)
    assert output.datatype == "FP32"


def test_modelserver_takes_kserves_keyword_arguments():
    server = ModelServer(
        http_port=0,
        grpc_port=0,
        workers=1,
        enable_grpc=False,
        enable_docs_url=False,
        max_threads=4,
        max_asyncio_workers=2,
        enable_latency_logging=True,
        grace_period=5,
        timeout_keep_alive=30,
        predictor_config=PredictorConfig("predictor:8080", "v2"),
    )
    assert server.grpc_port is None
    assert server.grace_seconds == 5
    assert server.limits.idle_timeout == 30
    assert server.max_asyncio_workers == 2
    model = Model("t")
    server.predictor_config.apply_to(model)
    assert (model.predictor_host, model.protocol) == ("predictor:8080", "v2")


def test_a_predictor_protocol_modelplane_does_not_speak_is_refused_before_serving():
    model = Model("t")
    model.predictor_host, model.protocol = "predictor:8081", "grpc-v1"
    with pytest.raises(ValueError, match="'grpc-v1' is not served .* use one of v1, v2, grpc-v2"):
        ModelServer(http_port=free_loopback_port(), grpc_port=None).start([model])


def test_tls_is_refused_rather_than_served_plain():
    with pytest.raises(ValueError, match="does not serve TLS"):
        ModelServer(http_port=0, grpc_port=None, ssl_certfile="cert.pem", ssl_keyfile="key.pem")


def test_kserves_settings_that_change_nothing_are_warned(caplog):
    from modelplane.server import ModelServer

    with caplog.at_level("WARNING", logger="modelplane.server"):
        ModelServer(http_port=8080, grpc_port=8081, workers=1, max_threads=8, enable_docs_url=True)
        ModelServer(http_port=8080, grpc_port=8081, workers=1)
    assert [r.getMessage() for r in caplog.records] == [
        "ModelServer: max_threads=8 is accepted but not acted on: gRPC runs on the event loop",
        "ModelServer: enable_docs_url=True is accepted but not acted on: there is no /docs",
    ]


def test_kserves_predictor_settings_reach_the_transformer_without_a_warning(caplog):
    config = PredictorConfig("predictor:8080", predictor_request_retries=3, predictor_health_check=True)
    with caplog.at_level("WARNING", logger="modelplane.server"):
        ModelServer(http_port=8080, grpc_port=None, predictor_config=config)
    assert caplog.records == []
    model = Model("t")
    config.apply_to(model)
    assert (model.predictor_request_retries, model.predictor_health_check) == (3, True)


@pytest.mark.parametrize("configure", ["true", "false"])
def test_modelserver_sets_up_logging_unless_told_not_to(tmp_path, configure):
    path = tmp_path / "model.py"
    path.write_text(LOGGING)
    server = run_program(path, "--configure_logging", configure)
    server.stop()
    assert ("the weights are in" in server.log()) == (configure == "true"), server.log()


def test_kserves_message_limit_flags_reach_modelserver(monkeypatch):
    argv = ["model.py", "--grpc_max_receive_message_length=4096", "--grpc_max_send_message_length=2048"]
    monkeypatch.setattr(sys, "argv", argv)
    server = ModelServer()
    assert (server.grpc_max_message_length, server.grpc_max_send_message_length) == (4096, 2048)
    monkeypatch.setattr(sys, "argv", ["model.py"])
    server = ModelServer(grpc_max_message_length=1000)
    assert (server.grpc_max_message_length, server.grpc_max_send_message_length) == (1000, 1000)


UNHEALTHY = """
from modelplane.server import Model


class Unhealthy(Model):
    def load(self):
        self.ready = True
        return True

    async def healthy(self):
        return False
"""


def test_a_model_that_says_it_is_not_healthy_is_not_ready_on_any_route(tmp_path):
    """KServe's `healthy()`: loaded (`ready`), and still not ready while it says it is unhealthy."""
    path = tmp_path / "unhealthy.py"
    path.write_text(UNHEALTHY)
    server = serve("--model-class", f"{path}:Unhealthy", "--model-name", "sick", ready_status=503)
    try:
        for route in ("/v1/models/sick", "/v2/models/sick/ready", "/v2/health/ready"):
            answer = httpx.get(server.url + route)
            assert answer.status_code == 503, (route, answer.text)
        assert httpx.get(server.url + "/v1/models/sick").json()["error"] == (
            "Model with name sick is not ready. It is not healthy."
        )
    finally:
        server.stop()
