"""The V2 parameters a real `modelplane serve` is sent, over REST and gRPC: each is acted on, refused with
a 400 / INVALID_ARGUMENT, or named in the answer as ignored; none is dropped without a word.

Triton's classification extension first: a requested output's `parameters.classification` asks for its
top classes as BYTES strings "value:index[:label]", one row of them per batch entry.
"""

from __future__ import annotations

import grpc
import httpx
import joblib
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve

Tensor = pb.ModelInferRequest.InferInputTensor
Requested = pb.ModelInferRequest.InferRequestedOutputTensor

SCORES = np.array([[0.1, 0.7, 0.2, 0.05], [0.5, 0.1, 0.3, 0.9]], dtype=np.float32)
# The top two of each row, as Triton writes them: the value as C's "%f" writes it, then the index.
TOP_TWO = [["0.700000:1", "0.200000:2"], ["0.900000:3", "0.500000:0"]]


def infer(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=60)


def scores_body(**output_parameters) -> dict:
    return {
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": SCORES.ravel().tolist()}],
        "outputs": [{"name": "x", "parameters": output_parameters}],
    }


def http_client(server) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")


def grpc_client(server) -> triton_grpc.InferenceServerClient:
    return triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def http_scores() -> triton_http.InferInput:
    tensor = triton_http.InferInput("x", [2, 4], "FP32")
    tensor.set_data_from_numpy(SCORES, binary_data=True)
    return tensor


def grpc_scores() -> triton_grpc.InferInput:
    tensor = triton_grpc.InferInput("x", [2, 4], "FP32")
    tensor.set_data_from_numpy(SCORES)
    return tensor


def texts(array: np.ndarray) -> list:
    return np.vectorize(lambda item: item.decode() if isinstance(item, bytes) else item, otypes=[object])(
        array
    ).tolist()


@pytest.fixture()
def models_stub(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        yield InferenceStub(channel)


@pytest.fixture(scope="module")
def species(tmp_path_factory, iris):
    """An sklearn classifier of iris species by name, answering with predict_proba: its classes are the
    labels of its output's columns."""
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    estimator = LogisticRegression(max_iter=1000).fit(X, names)
    folder = tmp_path_factory.mktemp("species")
    joblib.dump(estimator, folder / "model.joblib")
    server = serve("--model-dir", str(folder), "--model-name", "species", "--predict-proba")
    server.estimator = estimator
    yield server
    server.stop()


# -- classification -------------------------------------------------------------------------------


def test_classification_over_rest_json(test_models_server):
    result = http_client(test_models_server).infer(
        "echo",
        [http_scores()],
        outputs=[triton_http.InferRequestedOutput("x", binary_data=False, class_count=2)],
    )
    output = result.get_output("x")
    assert (output["datatype"], output["shape"]) == ("BYTES", [2, 2])
    assert output["data"] == [item for row in TOP_TWO for item in row]
    assert texts(result.as_numpy("x")) == TOP_TWO


def test_classification_over_rest_binary(test_models_server):
    result = http_client(test_models_server).infer(
        "echo",
        [http_scores()],
        outputs=[triton_http.InferRequestedOutput("x", binary_data=True, class_count=2)],
    )
    output = result.get_output("x")
    assert (output["datatype"], output["shape"]) == ("BYTES", [2, 2])
    assert "binary_data_size" in output["parameters"]
    assert result.as_numpy("x").tolist() == [[item.encode() for item in row] for row in TOP_TWO]


def test_classification_over_grpc(test_models_server):
    result = grpc_client(test_models_server).infer(
        "echo", [grpc_scores()], outputs=[triton_grpc.InferRequestedOutput("x", class_count=2)]
    )
    output = result.get_output("x")
    assert (output.datatype, list(output.shape)) == ("BYTES", [2, 2])
    assert texts(result.as_numpy("x")) == TOP_TWO


def test_classification_over_grpc_typed_and_raw_contents(models_stub):
    wanted = Requested(name="x")
    wanted.parameters["classification"].int64_param = 2
    typed = pb.ModelInferRequest(
        model_name="echo",
        inputs=[
            Tensor(
                name="x",
                datatype="FP32",
                shape=[2, 4],
                contents=pb.InferTensorContents(fp32_contents=SCORES.ravel().tolist()),
            )
        ],
        outputs=[wanted],
    )
    response = models_stub.ModelInfer(typed)
    assert (response.outputs[0].datatype, list(response.outputs[0].shape)) == ("BYTES", [2, 2])
    assert [item.decode() for item in response.outputs[0].contents.bytes_contents] == sum(TOP_TWO, [])

    raw = pb.ModelInferRequest(
        model_name="echo",
        inputs=[Tensor(name="x", datatype="FP32", shape=[2, 4])],
        raw_input_contents=[SCORES.tobytes()],
        outputs=[wanted],
    )
    response = models_stub.ModelInfer(raw)
    expected = b"".join(len(item).to_bytes(4, "little") + item.encode() for item in sum(TOP_TWO, []))
    assert response.raw_output_contents[0] == expected


def test_classification_shapes_counts_and_ties(test_models_server):
    # An output of one dimension is one set of scores (unbatched): shape [count].
    body = {
        "inputs": [{"name": "x", "shape": [3], "datatype": "UINT8", "data": [255, 0, 200]}],
        "outputs": [{"name": "x", "parameters": {"classification": 2}}],
    }
    output = infer(test_models_server, "echo", body).json()["outputs"][0]
    assert (output["datatype"], output["shape"], output["data"]) == ("BYTES", [2], ["255:0", "200:2"])

    # A count above the number of classes gives every class; equal values keep their index order.
    body = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [3, 7, 7, -1]}],
        "outputs": [{"name": "x", "parameters": {"classification": 10}}],
    }
    output = infer(test_models_server, "echo", body).json()["outputs"][0]
    assert (output["shape"], output["data"]) == ([1, 4], ["7:1", "7:2", "3:0", "-1:3"])

    # Several dimensions after the batch are one row of scores per batch entry.
    body = {
        "inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP64", "data": [0.25, 1.5, -2.0, 1.0]}],
        "outputs": [{"name": "x", "parameters": {"classification": 1}}],
    }
    output = infer(test_models_server, "echo", body).json()["outputs"][0]
    assert (output["shape"], output["data"]) == ([1, 1], ["1.500000:1"])


def test_classification_applies_only_to_the_output_that_asks(test_models_server):
    body = {
        "inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [0.5, 0.25, 0.75]},
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [0.5, 0.25, 0.75]},
        ],
        "outputs": [{"name": "a", "parameters": {"classification": 1}}, {"name": "b"}],
    }
    outputs = infer(test_models_server, "echo", body).json()["outputs"]
    assert [(o["name"], o["datatype"], o["shape"], o["data"]) for o in outputs] == [
        ("a", "BYTES", [1, 1], ["0.750000:2"]),
        ("b", "FP32", [1, 3], [0.5, 0.25, 0.75]),
    ]


def test_classification_labels_are_the_models_classes(species):
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    probabilities = species.estimator.predict_proba(rows)
    expected = [
        [f"{row[i]:f}:{i}:{species.estimator.classes_[i]}" for i in np.argsort(-row, kind="stable")[:2]]
        for row in probabilities
    ]
    tensor = triton_http.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(rows)
    result = http_client(species).infer(
        "species", [tensor], outputs=[triton_http.InferRequestedOutput("output-0", class_count=2)]
    )
    assert texts(result.as_numpy("output-0")) == expected
    assert expected[0][0].endswith(":versicolor")

    tensor = triton_grpc.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(rows)
    result = grpc_client(species).infer(
        "species", [tensor], outputs=[triton_grpc.InferRequestedOutput("output-0", class_count=2)]
    )
    assert texts(result.as_numpy("output-0")) == expected


@pytest.mark.parametrize("value", ["2", 2.0, 2.5, 0, -1, True])
def test_a_classification_that_is_not_a_positive_integer_is_400(test_models_server, value):
    response = infer(test_models_server, "echo", scores_body(classification=value))
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "output 'x': parameter 'classification' must be a positive integer (the number of classes), got "
    )


def test_a_classification_that_is_not_a_positive_integer_is_invalid_argument_over_grpc(
    test_models_server, models_stub
):
    for setter, value in [
        ("string_param", "2"),
        ("double_param", 2.0),
        ("bool_param", True),
        ("int64_param", 0),
        ("int64_param", -3),
    ]:
        wanted = Requested(name="x")
        setattr(wanted.parameters["classification"], setter, value)
        request = pb.ModelInferRequest(
            model_name="echo",
            inputs=[Tensor(name="x", datatype="FP32", shape=[1])],
            raw_input_contents=[np.float32(1).tobytes()],
            outputs=[wanted],
        )
        with pytest.raises(grpc.RpcError) as caught:
            models_stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, setter
        assert "parameter 'classification' must be a positive integer" in caught.value.details()
    client = grpc_client(test_models_server)
    with pytest.raises(InferenceServerException, match="must be a positive integer"):
        client.infer("echo", [grpc_scores()], outputs=[triton_grpc.InferRequestedOutput("x", class_count=-2)])


@pytest.mark.parametrize(
    ("tensor", "datatype"),
    [
        ({"shape": [2], "datatype": "BYTES", "data": ["a", "b"]}, "BYTES"),
        ({"shape": [2], "datatype": "BOOL", "data": [True, False]}, "BOOL"),
    ],
)
def test_classifying_an_output_that_is_not_numbers_is_400(test_models_server, tensor, datatype):
    body = {
        "inputs": [{"name": "x", **tensor}],
        "outputs": [{"name": "x", "parameters": {"classification": 1}}],
    }
    response = infer(test_models_server, "echo", body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"class result not available for output 'x' due to unsupported type '{datatype}'"
    )


def test_classifying_a_half_precision_output_is_invalid_argument_over_grpc(test_models_server):
    tensor = triton_grpc.InferInput("x", [2], "FP16")
    tensor.set_data_from_numpy(np.array([1.0, 2.0], dtype=np.float16))
    with pytest.raises(InferenceServerException, match="unsupported type 'FP16'") as caught:
        grpc_client(test_models_server).infer(
            "echo", [tensor], outputs=[triton_grpc.InferRequestedOutput("x", class_count=1)]
        )
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


# -- the other parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["input", "output"])
def test_shared_memory_is_refused_not_ignored(test_models_server, where):
    client = http_client(test_models_server)
    tensor = triton_http.InferInput("x", [2, 4], "FP32")
    wanted = triton_http.InferRequestedOutput("x", binary_data=False)
    if where == "input":
        tensor.set_shared_memory("region", SCORES.nbytes)
    else:
        tensor.set_data_from_numpy(SCORES, binary_data=False)
        wanted.set_shared_memory("region", SCORES.nbytes)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("echo", [tensor], outputs=[wanted])
    assert caught.value.status() == "400"
    assert f"{where} 'x': parameter 'shared_memory_region'" in caught.value.message()
    assert "shared-memory extension" in caught.value.message()

    # The data sent along with the region is not taken in its place.
    body = {
        "inputs": [
            {
                "name": "x",
                "shape": [1],
                "datatype": "FP32",
                "data": [1.0],
                "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 4},
            }
        ]
    }
    response = infer(test_models_server, "echo", body)
    assert response.status_code == 400


def test_shared_memory_is_invalid_argument_over_grpc(models_stub):
    tensor = Tensor(name="x", datatype="FP32", shape=[1])
    tensor.parameters["shared_memory_region"].string_param = "region"
    tensor.parameters["shared_memory_byte_size"].int64_param = 4
    with pytest.raises(grpc.RpcError) as caught:
        models_stub.ModelInfer(pb.ModelInferRequest(model_name="echo", inputs=[tensor]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'x': parameter 'shared_memory_region'" in caught.value.details()


def test_a_sequence_is_refused_over_rest_and_grpc(test_models_server):
    with pytest.raises(InferenceServerException, match="sequence") as caught:
        http_client(test_models_server).infer("echo", [http_scores()], sequence_id=7, sequence_start=True)
    assert caught.value.status() == "400"
    with pytest.raises(InferenceServerException, match="sequence") as caught:
        grpc_client(test_models_server).infer("echo", [grpc_scores()], sequence_id=7, sequence_end=True)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    # Flags that ask for no sequence ask for nothing.
    body = {**scores_body(), "parameters": {"sequence_id": 0, "sequence_start": False}}
    assert infer(test_models_server, "echo", body).status_code == 200
    body = {**scores_body(), "parameters": {"sequence_start": "yes"}}
    response = infer(test_models_server, "echo", body)
    assert response.status_code == 400
    assert "'sequence_start' must be true or false" in response.json()["error"]


def test_triton_reserved_parameters_are_refused(test_models_server):
    body = {**scores_body(), "parameters": {"triton_enable_empty_final_response": True}}
    response = infer(test_models_server, "echo", body)
    assert response.status_code == 400
    assert "parameter keys starting with 'triton_' are reserved" in response.json()["error"]


def test_a_priority_is_accepted_and_the_answer_says_it_was_ignored(test_models_server):
    result = http_client(test_models_server).infer("echo", [http_scores()], priority=2)
    said = result.get_response()["parameters"]["ignored_parameters"]
    assert "parameter 'priority' of the request" in said
    result = grpc_client(test_models_server).infer("echo", [grpc_scores()], priority=2)
    said = result.get_response().parameters["ignored_parameters"].string_param
    assert "parameter 'priority' of the request" in said


def test_the_timeout_parameter_ends_a_request_that_runs_past_it(test_models_server):
    slow = {
        "parameters": {"seconds": 2.0, "timeout": 200_000},  # Triton's timeout is in microseconds
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}],
    }
    response = infer(test_models_server, "slow", slow)
    assert response.status_code == 504
    assert "timeout" in response.json()["error"]
    quick = {**slow, "parameters": {"seconds": 0.0, "timeout": 30_000_000}}
    assert infer(test_models_server, "slow", quick).status_code == 200

    request = pb.ModelInferRequest(
        model_name="slow",
        inputs=[Tensor(name="x", datatype="FP32", shape=[1])],
        raw_input_contents=[np.float32(1).tobytes()],
    )
    request.parameters["seconds"].double_param = 2.0
    request.parameters["timeout"].int64_param = 200_000
    with (
        grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        InferenceStub(channel).ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    for value in ("1000", -1, 1.5):
        body = {**quick, "parameters": {"timeout": value}}
        response = infer(test_models_server, "slow", body)
        assert response.status_code == 400, value
        assert "parameter 'timeout' must be" in response.json()["error"]


def test_binary_data_output_chooses_raw_or_typed_contents_over_grpc(models_stub):
    typed = pb.ModelInferRequest(
        model_name="echo",
        inputs=[
            Tensor(
                name="x", datatype="INT32", shape=[2], contents=pb.InferTensorContents(int_contents=[1, 2])
            )
        ],
    )
    typed.parameters["binary_data_output"].bool_param = True
    response = models_stub.ModelInfer(typed)
    assert np.frombuffer(response.raw_output_contents[0], dtype="<i4").tolist() == [1, 2]

    raw = pb.ModelInferRequest(
        model_name="echo",
        inputs=[Tensor(name="x", datatype="INT32", shape=[2])],
        raw_input_contents=[np.array([1, 2], dtype="<i4").tobytes()],
    )
    raw.parameters["binary_data_output"].bool_param = False
    response = models_stub.ModelInfer(raw)
    assert not response.raw_output_contents
    assert list(response.outputs[0].contents.int_contents) == [1, 2]

    # An output's own binary_data says the same for that output; gRPC sends every output one way.
    wanted = Requested(name="x")
    wanted.parameters["binary_data"].bool_param = True
    typed = pb.ModelInferRequest(model_name="echo", inputs=typed.inputs, outputs=[wanted])
    response = models_stub.ModelInfer(typed)
    assert np.frombuffer(response.raw_output_contents[0], dtype="<i4").tolist() == [1, 2]

    both = pb.ModelInferRequest(
        model_name="echo",
        inputs=[
            Tensor(name="a", datatype="INT32", shape=[1], contents=pb.InferTensorContents(int_contents=[1])),
            Tensor(name="b", datatype="INT32", shape=[1], contents=pb.InferTensorContents(int_contents=[2])),
        ],
        outputs=[wanted, Requested(name="b")],
    )
    both.outputs[0].name = "a"
    with pytest.raises(grpc.RpcError) as caught:
        models_stub.ModelInfer(both)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "binary_data" in caught.value.details()

    flag = pb.ModelInferRequest(model_name="echo", inputs=typed.inputs)
    flag.parameters["binary_data_output"].string_param = "true"
    with pytest.raises(grpc.RpcError) as caught:
        models_stub.ModelInfer(flag)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'binary_data_output' must be true or false" in caught.value.details()


def test_a_built_in_runtime_names_the_parameters_it_did_not_read(iris_server, test_models_server):
    body = {
        "parameters": {"threshold": 0.5, "signature_name": "serving_default"},
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": IRIS_ROWS,
                "parameters": {"unit": "cm"},
            }
        ],
        "outputs": [{"name": "output-0", "parameters": {"binary_data": False, "scale": 2}}],
    }
    response = infer(iris_server, "iris", body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["outputs"][0]["data"] == [1, 1]
    assert answer["parameters"] == {
        "ignored_parameters": "parameter 'threshold' of the request: model iris does not read it; "
        "parameter 'signature_name' of the request: model iris does not read it; "
        "parameter 'unit' of input 'input-0': model iris does not read it; "
        "parameter 'scale' of output 'output-0': model iris does not read it"
    }

    # What the runtime reads, it reads: no word about it.
    body = {
        "parameters": {"content_type": "pd", "binary_data_output": False},
        "inputs": [
            {"name": f"f{i}", "shape": [2], "datatype": "FP32", "data": [row[i] for row in IRIS_ROWS]}
            for i in range(4)
        ],
    }
    response = infer(iris_server, "iris", body)
    assert response.status_code == 200
    assert response.json()["parameters"] is None

    # Over gRPC too.
    client = grpc_client(iris_server)
    tensor = triton_grpc.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(np.array(IRIS_ROWS, dtype=np.float32))
    result = client.infer("iris", [tensor], parameters={"threshold": "high"})
    said = result.get_response().parameters["ignored_parameters"].string_param
    assert said == "parameter 'threshold' of the request: model iris does not read it"

    # A custom model is given every parameter, and decides: the server says nothing of them.
    body = {
        "parameters": {"threshold": 0.5},
        "inputs": [
            {"name": "x", "shape": [1], "datatype": "INT32", "data": [1], "parameters": {"unit": "cm"}}
        ],
        "outputs": [{"name": "x", "parameters": {"scale": 2}}],
    }
    assert infer(test_models_server, "echo", body).json()["parameters"] == {"threshold": 0.5}


def test_a_content_type_the_runtime_does_not_know_is_read_by_datatype(iris_server):
    """As MLServer: a request's content type without a codec is ignored (and logged, not answered)."""
    plain = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
    response = infer(iris_server, "iris", {**plain, "parameters": {"content_type": "base64"}})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == infer(iris_server, "iris", plain).json()["outputs"]


def test_content_type_str_needs_a_bytes_input(iris_server):
    body = {
        "parameters": {"content_type": "str"},
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}],
    }
    response = infer(iris_server, "iris", body)
    assert response.status_code == 400
    assert "BYTES" in response.json()["error"]
