"""TF Serving's gRPC API (KServe's `grpc-v1`) on `modelplane serve`'s gRPC port, spoken to with the
stubs of the tensorflow-serving-api package over grpcio, for the SavedModels of tensorflow_models.py
(and an sklearn model beside them, which the API does not serve)."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from tests.server.processes import serve
from tests.server.tensorflow_models import WEIGHTS, write_models


class _Lazy:
    """A module imported when first used. Every test module is imported by every test worker, and
    TensorFlow imported beside torch crashes the worker: TensorFlow is only imported by the tests that
    use it (as in tensorflow_models.py)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # pytest's collection asks for `__test__`: no import for that
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)


tf = _Lazy("tensorflow")
classification_pb2 = _Lazy("tensorflow_serving.apis.classification_pb2")
get_model_metadata_pb2 = _Lazy("tensorflow_serving.apis.get_model_metadata_pb2")
get_model_status_pb2 = _Lazy("tensorflow_serving.apis.get_model_status_pb2")
inference_pb2 = _Lazy("tensorflow_serving.apis.inference_pb2")
input_pb2 = _Lazy("tensorflow_serving.apis.input_pb2")
model_service_pb2_grpc = _Lazy("tensorflow_serving.apis.model_service_pb2_grpc")
predict_pb2 = _Lazy("tensorflow_serving.apis.predict_pb2")
prediction_service_pb2_grpc = _Lazy("tensorflow_serving.apis.prediction_service_pb2_grpc")
regression_pb2 = _Lazy("tensorflow_serving.apis.regression_pb2")

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
SCORES = np.array(ROWS, dtype=np.float32) @ WEIGHTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, sklearn_dir):
    root = tmp_path_factory.mktemp("tensorflow-grpc")
    write_models(root)
    shutil.copytree(sklearn_dir, root / "iris")
    server = serve("--model-dir", str(root))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def prediction(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(
    model: str, signature: str = "", output_filter=(), **inputs
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def rest_predict(server, model: str, body: dict) -> dict:
    response = httpx.post(f"{server.url}/v1/models/{model}:predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def refused(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    return caught.value


def test_predict_answers_as_the_rest_predict_does(server, prediction):
    rows = np.array(ROWS, dtype=np.float32)
    response = prediction.Predict(predict_request("dense", x=rows))
    assert (response.model_spec.name, response.model_spec.version.value) == ("dense", 2)
    assert response.model_spec.signature_name == "serving_default"
    assert list(response.outputs) == ["scores"]
    scores = response.outputs["scores"]
    # As TF Serving answers: the values in the dtype's repeated field, which clients read directly.
    assert scores.dtype == tf.float32.as_datatype_enum and not scores.tensor_content
    assert [dim.size for dim in scores.tensor_shape.dim] == [2, 3]
    assert len(scores.float_val) == 6
    rest = rest_predict(server, "dense", {"inputs": ROWS})["outputs"]
    assert tf.make_ndarray(scores).tolist() == np.array(rest, dtype=np.float32).tolist()
    assert np.allclose(tf.make_ndarray(scores), 2 * SCORES, rtol=1e-5)


def test_several_inputs_and_outputs(server, prediction):
    a = np.array([[1, 2, 3], [0, 0, 1]], dtype=np.float32)
    b = np.array([10, -1], dtype=np.int64)
    response = prediction.Predict(predict_request("pair", a=a, b=b))
    assert sorted(response.outputs) == ["doubled", "total"]
    rest = rest_predict(server, "pair", {"inputs": {"a": a.tolist(), "b": b.tolist()}})["outputs"]
    assert tf.make_ndarray(response.outputs["doubled"]).tolist() == rest["doubled"]
    assert tf.make_ndarray(response.outputs["total"]).tolist() == rest["total"]
    counted = 'modelplane_requests_total{code="0",model_name="pair",protocol="grpc"}'
    assert counted in httpx.get(f"{server.url}/metrics").text  # counted as V2's gRPC calls are


def test_a_named_signature_and_strings(server, prediction):
    rows = np.array(ROWS, dtype=np.float32)
    labels = prediction.Predict(predict_request("dense", "label", x=rows))
    assert labels.model_spec.signature_name == "label"
    assert list(labels.outputs["label"].int64_val) == SCORES.argmax(axis=1).tolist()
    text = prediction.Predict(predict_request("text", text=np.array([b"\x00\xffz", b"ab"], dtype=object)))
    assert list(text.outputs["upper_bytes"].string_val) == [b"\x00\xffZ", b"AB"]
    assert list(text.outputs["length"].int_val) == [3, 2]
    count = prediction.Predict(predict_request("text", "count", text=np.array([b"a", b"b"], dtype=object)))
    assert tf.make_ndarray(count.outputs["count"]).tolist() == 2  # a scalar: shape []
    assert not count.outputs["count"].tensor_shape.dim


def test_a_large_input_and_answer(prediction):
    rows = np.random.default_rng(1).normal(size=(5000, 4)).astype(np.float32)  # past INLINE_ELEMENTS
    response = prediction.Predict(predict_request("dense", x=rows))
    assert np.allclose(tf.make_ndarray(response.outputs["scores"]), 2 * rows @ WEIGHTS, rtol=1e-4, atol=1e-5)


def test_output_filter_answers_only_the_outputs_named(prediction):
    a = np.array([[1, 2, 3]], dtype=np.float32)
    b = np.array([10], dtype=np.int64)
    response = prediction.Predict(predict_request("pair", output_filter=["total"], a=a, b=b))
    assert list(response.outputs) == ["total"]
    assert list(response.outputs["total"].float_val) == [16.0]
    error = refused(prediction.Predict, predict_request("pair", output_filter=["nope"], a=a, b=b))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature 'serving_default' has no output named 'nope'" in error.details()


@pytest.mark.parametrize(
    ("model", "signature", "inputs", "message"),
    [
        ("dense", "", {"x": np.array(ROWS, dtype=np.float64)}, "input 'x' is FP64 but signature"),
        ("dense", "", {"x": np.zeros((2, 5), dtype=np.float32)}, "input 'x' has shape [2, 5] but signature"),
        ("dense", "", {"y": np.zeros((2, 4), dtype=np.float32)}, "has no input named 'y'; its inputs are: x"),
        ("pair", "", {"a": np.zeros((1, 3), dtype=np.float32)}, "needs input(s) 'b'"),
        ("dense", "nope", {"x": np.zeros((1, 4), dtype=np.float32)}, "has no signature 'nope'"),
    ],
)
def test_bad_inputs_are_invalid_argument_saying_what_is_wrong(prediction, model, signature, inputs, message):
    error = refused(prediction.Predict, predict_request(model, signature, **inputs))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()


def test_unknown_models_and_versions_are_not_found(prediction):
    x = np.zeros((1, 4), dtype=np.float32)
    error = refused(prediction.Predict, predict_request("missing", x=x))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    request = predict_request("dense", x=x)
    request.model_spec.version.value = 1
    error = refused(prediction.Predict, request)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "no version 1 (it serves version 2)" in error.details()
    request.model_spec.version.value = 2
    assert prediction.Predict(request).model_spec.version.value == 2


def test_a_model_that_is_not_tensorflow_is_refused_with_why(prediction):
    error = refused(prediction.Predict, predict_request("iris", x=np.zeros((1, 4), dtype=np.float32)))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "model iris is not a TensorFlow SavedModel" in error.details()
    assert "inference.GRPCInferenceService/ModelInfer" in error.details()


def test_get_model_metadata_gives_the_saved_models_signatures(server, prediction):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "dense"
    response = prediction.GetModelMetadata(request)
    assert (response.model_spec.name, response.model_spec.version.value) == ("dense", 2)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert [dim.size for dim in default.inputs["x"].tensor_shape.dim] == [-1, 4]
    assert list(default.outputs) == ["scores"]
    assert signatures.signature_def["label"].outputs["label"].dtype == tf.int64.as_datatype_enum
    rest = httpx.get(f"{server.url}/v1/models/dense/metadata").json()["metadata"]["signature_def"]
    assert sorted(signatures.signature_def) == sorted(rest["signature_def"])

    request.metadata_field[:] = ["signature_def", "other"]
    error = refused(prediction.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'metadata_field must be ["signature_def"]' in error.details()


def test_get_model_status_says_available(channel):
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "dense"
    (status,) = models.GetModelStatus(request).model_version_status
    assert status.version == 2
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    request.model_spec.name = "missing"
    assert refused(models.GetModelStatus, request).code() == grpc.StatusCode.NOT_FOUND


def examples_input(context: dict | None, *examples: dict):
    """A tensorflow.serving.Input of tf.Examples of float (x) and int64 (k) features."""

    def example(features: dict):
        built = tf.train.Example()
        for name, values in features.items():
            kind = "float_list" if isinstance(values[0], float) else "int64_list"
            getattr(built.features.feature[name], kind).value.extend(values)
        return built

    given = input_pb2.Input()
    if context is None:
        given.example_list.examples.extend(example(features) for features in examples)
    else:
        given.example_list_with_context.context.CopyFrom(example(context))
        given.example_list_with_context.examples.extend(example(features) for features in examples)
    return given


def test_classify_answers_as_the_rest_classify_does(server, prediction):
    request = classification_pb2.ClassificationRequest(
        input=examples_input({"k": [1]}, {"x": [1.0, 2.0]}, {"x": [0.5, -1.0], "k": [0]})
    )
    request.model_spec.name = "examples"
    response = prediction.Classify(request)
    assert response.model_spec.name == "examples" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    rest = httpx.post(
        f"{server.url}/v1/models/examples:classify",
        json={"context": {"k": 1}, "examples": [{"x": [1.0, 2.0]}, {"x": [0.5, -1.0], "k": 0}]},
    ).json()["results"]
    classifications = response.result.classifications
    assert [[c.label for c in row.classes] for row in classifications] == [
        [c[0] for c in row] for row in rest
    ]
    scores = np.array([[c.score for c in row.classes] for row in classifications], dtype=np.float32)
    assert scores.tolist() == np.array([[c[1] for c in row] for row in rest], dtype=np.float32).tolist()


def test_regress_with_a_named_signature(prediction):
    request = regression_pb2.RegressionRequest(input=examples_input(None, {"x": [1.0, 2.0], "k": [2]}))
    request.model_spec.name = "examples_tf2"
    request.model_spec.signature_name = "regress"
    response = prediction.Regress(request)
    assert response.model_spec.signature_name == "regress"
    assert [regression.value for regression in response.result.regressions] == [5.0]


@pytest.mark.parametrize(
    ("call", "model", "signature", "message"),
    [
        ("Classify", "examples", "", "Input is empty."),
        ("Classify", "examples", "nope", "No signature was found with the name: nope"),
        ("Regress", "examples", "", "Expected one output Tensor."),
        ("Regress", "dense", "", "No regression inputs found in SignatureDef: inputs {"),
    ],
)
def test_classify_and_regress_refusals_are_invalid_argument(prediction, call, model, signature, message):
    message_class = {
        "Classify": classification_pb2.ClassificationRequest,
        "Regress": regression_pb2.RegressionRequest,
    }
    request = message_class[call]()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    if message != "Input is empty.":
        request.input.CopyFrom(examples_input(None, {"x": [1.0, 2.0]}))
    error = refused(getattr(prediction, call), request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()


def test_classify_of_a_model_that_is_not_tensorflow_is_refused_with_why(server, prediction):
    request = classification_pb2.ClassificationRequest(input=examples_input(None, {"x": [1.0]}))
    request.model_spec.name = "iris"
    assert refused(prediction.Classify, request).code() == grpc.StatusCode.UNIMPLEMENTED
    response = httpx.post(f"{server.url}/v1/models/iris:classify", json={"examples": [{"x": [1.0]}]})
    assert response.status_code == 501
    assert response.json() == {
        "error": "model iris does not serve TF Serving's :classify (it reads tf.Example inputs, which only "
        "TensorFlow SavedModels served by the tensorflow runtime take)"
    }


def multi_inference_request(tasks: list[tuple[str, str, str]], example: dict):
    """Tasks of (model, signature, method) on one example."""
    request = inference_pb2.MultiInferenceRequest(input=examples_input(None, example))
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name, task.model_spec.signature_name = model, signature
    return request


def test_multi_inference_answers_each_task_as_its_own_call_does(prediction):
    tasks = [("examples", "", "classify"), ("examples", "regress", "regress")]
    request = multi_inference_request(tasks, {"x": [1.0, 2.0], "k": [2]})
    response = prediction.MultiInference(request)
    classify, regress = response.results
    assert classify.model_spec.name == "examples" and classify.model_spec.version.value == 1
    assert classify.model_spec.signature_name == "serving_default"
    assert regress.model_spec.signature_name == "regress"
    alone = classification_pb2.ClassificationRequest(input=request.input)
    alone.model_spec.name = "examples"
    assert classify.classification_result == prediction.Classify(alone).result
    alone = regression_pb2.RegressionRequest(input=request.input)
    alone.model_spec.name, alone.model_spec.signature_name = "examples", "regress"
    assert regress.regression_result == prediction.Regress(alone).result
    assert len(regress.regression_result.regressions) == 1


@pytest.mark.parametrize(
    ("tasks", "code", "message"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, "Expected at least one task"),
        (
            [("examples", "", "classify"), ("", "regress", "regress")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Found ModelSpec with an empty model name.",
        ),
        (
            [("examples", "", "classify"), ("examples_tf2", "regress", "regress")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            [("examples", "", "classify"), ("examples", "serving_default", "classify")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Duplicate evaluation of signature: serving_default",
        ),
        (
            [("examples", "", "predict")],
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (
            [("examples", "nope", "classify")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "No signature was found with the name: nope",
        ),
        ([("missing", "", "classify")], grpc.StatusCode.NOT_FOUND, "missing"),
    ],
)
def test_multi_inference_refusals_say_why_in_tf_servings_words(prediction, tasks, code, message):
    error = refused(prediction.MultiInference, multi_inference_request(tasks, {"x": [1.0, 2.0]}))
    assert error.code() == code
    assert message in error.details()


def test_v2_grpc_still_answers_beside_it(server):
    import tritonclient.grpc as triton_grpc

    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    x = triton_grpc.InferInput("x", [2, 4], "FP32")
    x.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
    assert np.allclose(client.infer("dense", [x]).as_numpy("scores"), 2 * SCORES, rtol=1e-5)


def test_a_server_without_tensorflow_models_says_so(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            error = refused(stub.Predict, predict_request("iris", x=np.zeros((1, 4), dtype=np.float32)))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "this server holds none" in error.details()
        # Nor did it import TensorFlow to say so (which reading the message would have).
        assert "tensorflow" not in (Path("/proc") / str(server.process.pid) / "maps").read_text()
    finally:
        server.stop()


EXAMPLE_VERBS = Path(__file__).with_name("example_verbs.py")


def test_a_transformer_passes_classify_and_regress_on_over_grpc_too():
    """TF Serving's Classify and Regress reach any model that serves the verbs from REST's JSON: the
    tf.Examples become that JSON (the context apart, a one-value feature its value), the transformer
    passes it on to its predictor between its preprocess and postprocess, and the answer's `results`
    become the gRPC answer."""
    predictor = serve("--model-class", f"{EXAMPLE_VERBS}:ExampleVerbs", "--model-name", "iris")
    try:
        transformer = serve(
            "--model-class",
            f"{EXAMPLE_VERBS}:TimesTen",
            "--model-name",
            "iris",
            "--predictor-host",
            f"127.0.0.1:{predictor.http_port}",
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{transformer.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = regression_pb2.RegressionRequest(
                    input=examples_input(None, {"x": [1.5]}, {"x": [2.0]})
                )
                request.model_spec.name = "iris"
                answer = stub.Regress(request)
                assert [r.value for r in answer.result.regressions] == [15.0, 20.0]
                assert (answer.model_spec.name, answer.model_spec.signature_name) == (
                    "iris",
                    "serving_default",
                )
                given = examples_input({"k": [2]}, {"x": [1.1]})
                request = classification_pb2.ClassificationRequest(input=given)
                request.model_spec.name = "iris"
                (classes,) = stub.Classify(request).result.classifications
                assert [(c.label, round(c.score, 4)) for c in classes.classes] == [("x", 11.0)]
                tasks = [("iris", "", "classify"), ("iris", "regress", "regress")]
                classify, regress = stub.MultiInference(multi_inference_request(tasks, {"x": [0.5]})).results
                assert classify.classification_result.classifications[0].classes[0].score == 5.0
                assert [r.value for r in regress.regression_result.regressions] == [5.0]
            # The predictor, which serves the verbs itself, answers them over gRPC as well.
            with grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = regression_pb2.RegressionRequest(input=examples_input(None, {"x": [3.0]}))
                request.model_spec.name = "iris"
                assert [r.value for r in stub.Regress(request).result.regressions] == [3.0]
        finally:
            transformer.stop()
    finally:
        predictor.stop()
