"""The conversions KServe's V2 types have (`to_rest`, `from_bytes`, `to_grpc`, `from_grpc`, `from_rest`,
`to_dict`, `==`), on modelplane's: what they write is what KServe 0.21's write for the same tensors (the
literals below were checked against KServe's own classes), and modelplane's server decoders read it
back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.v2_grpc import request_from_grpc
from modelplane.protocol.v2_rest import decode_request, decode_response
from modelplane.server import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

NUMBERS = np.arange(4, dtype=np.float32).reshape(2, 2)
WORDS = ["x", "yé"]


def _binary_request() -> InferRequest:
    numbers = InferInput("a", [2, 2], "FP32")
    numbers.set_data_from_numpy(NUMBERS)  # binary_data=True, KServe's default
    return InferRequest(
        "m", [numbers, InferInput("s", [2], "BYTES", WORDS)], request_id="1", parameters={"k": 1}
    )


def _binary_response() -> InferResponse:
    numbers = InferOutput("o", [2], "INT64")
    numbers.set_data_from_numpy(np.array([5, 6]))
    words = InferOutput("b", [2], "BYTES")
    words.set_data_from_numpy(np.array([b"p", "q"], dtype=np.object_))
    return InferResponse("r1", "m", [numbers, words], use_binary_outputs=True)


def test_a_request_with_a_binary_tensor_is_the_body_kserve_writes():
    body, json_length = _binary_request().to_rest()
    assert body == (
        b'{"id":"1","model_name":"m","inputs":[{"name":"a","shape":[2,2],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":16}},{"name":"s","shape":[2],"datatype":"BYTES",'
        b'"data":["x","y\xc3\xa9"]}],"parameters":{"k":1}}'
        b"\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@\x00\x00@@"
    )
    assert json_length == 204
    decoded = decode_request(body, json_length, "m")
    assert np.array_equal(decoded.inputs[0].as_numpy(), NUMBERS)
    assert decoded.inputs[1].as_string() == WORDS
    assert InferRequest.from_bytes(body, json_length, "m").inputs[0].as_numpy().tolist() == NUMBERS.tolist()


def test_a_request_of_json_tensors_is_kserves_dict_and_json_can_write_it():
    numbers = InferInput("a", [2, 2], "FP32")
    numbers.set_data_from_numpy(NUMBERS, binary_data=False)
    request = InferRequest(
        "m",
        [numbers, InferInput("s", [2], "BYTES", WORDS)],
        request_id="2",
        request_outputs=[RequestedOutput("o", {"binary_data": True})],
    )
    document, json_length = request.to_rest()
    assert json_length is None
    assert document == {
        "id": "2",
        "model_name": "m",
        "inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [0.0, 1.0, 2.0, 3.0]},
            {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["x", "yé"]},
        ],
        "outputs": [{"name": "o", "parameters": {"binary_data": True}}],
    }
    decoded = decode_request(json.dumps(document).encode(), None, "m")
    assert np.array_equal(decoded.inputs[0].as_numpy(), NUMBERS)
    assert decoded.request_outputs == [RequestedOutput("o", {"binary_data": True})]
    assert InferRequest("m", [numbers]).to_rest()[0]["id"]  # one is made up, as KServe's


def test_a_request_to_grpc_and_back():
    message = _binary_request().to_grpc()
    assert isinstance(message, pb.ModelInferRequest)
    assert [bytes(raw) for raw in message.raw_input_contents] == [
        NUMBERS.tobytes(),
        b"\x01\x00\x00\x00x\x03\x00\x00\x00y\xc3\xa9",
    ]
    for decoded in (request_from_grpc(message)[0], InferRequest.from_grpc(message)):
        assert decoded.from_grpc is True and decoded.use_binary_outputs is True
        assert (decoded.id, decoded.parameters) == ("1", {"k": 1})
        assert np.array_equal(decoded.inputs[0].as_numpy(), NUMBERS)
        assert decoded.inputs[1].as_string() == WORDS
    assert InferRequest.from_grpc(message) == InferRequest.from_grpc(message)
    # Read from raw contents, it goes on raw (REST's binary extension), as KServe's does.
    body, json_length = InferRequest.from_grpc(message).to_rest()
    assert json_length is not None and decode_request(body, json_length, "m").inputs[1].as_string() == WORDS


def test_a_request_of_json_tensors_to_grpc_uses_contents():
    request = InferRequest(
        "m", [InferInput("n", [3], "INT64", [1, 2, 3]), InferInput("s", [2], "BYTES", WORDS)]
    )
    message = request.to_grpc()
    assert not message.raw_input_contents
    assert list(message.inputs[0].contents.int64_contents) == [1, 2, 3]
    assert list(message.inputs[1].contents.bytes_contents) == [b"x", "yé".encode()]
    decoded = InferRequest.from_grpc(message)
    assert decoded.use_binary_outputs is False
    assert decoded.inputs[0].as_numpy().tolist() == [1, 2, 3]


def test_one_binary_input_sends_every_input_of_a_grpc_request_raw():
    """KServe would put only that one raw, a message servers refuse ("contents must not be set")."""
    half = InferInput("h", [2], "FP16")
    half.set_data_from_numpy(np.array([1.5, 2.0], dtype=np.float16))
    request = InferRequest("m", [half, InferInput("n", [1], "INT32", [7])])
    message = request.to_grpc()
    assert len(message.raw_input_contents) == 2
    decoded, raw = request_from_grpc(message)
    assert raw and decoded.inputs[1].as_numpy().tolist() == [7]
    assert decoded.inputs[0].as_numpy().tolist() == [1.5, 2.0]


def test_a_response_of_json_outputs_is_kserves_dict():
    numbers = InferOutput("o", [2], "INT64")
    numbers.set_data_from_numpy(np.array([5, 6]), binary_data=False)
    words = InferOutput("b", [2], "BYTES")
    words.set_data_from_numpy(np.array([b"p", "q"], dtype=np.object_), binary_data=False)
    response = InferResponse("r1", "m", [numbers, words], model_version="1", parameters={"x": "y"})
    document, json_length = response.to_rest()
    assert json_length is None
    assert document == {
        "id": "r1",
        "model_name": "m",
        "model_version": "1",
        "outputs": [
            {"name": "o", "shape": [2], "datatype": "INT64", "data": [5, 6]},
            {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["p", "q"]},
        ],
        "parameters": {"x": "y"},
    }
    back = InferResponse.from_rest(json.loads(json.dumps(document)))
    assert back.get_output_by_name("o").as_numpy().tolist() == [5, 6]
    assert back.get_output_by_name("b").as_string() == ["p", "q"]
    assert back.to_dict()["outputs"][1] == {
        "name": "b",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["p", "q"],
        "parameters": None,
    }


def test_a_response_with_binary_outputs_and_back():
    body, json_length = _binary_response().to_rest()
    assert json_length == 223  # KServe's: the same document, its keys in another order
    assert (
        body[json_length:]
        == b"\x05\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00p\x01\x00\x00\x00q"
    )
    for decoded in (decode_response(body, json_length), InferResponse.from_bytes(body, json_length)):
        assert decoded.outputs[0].as_numpy().tolist() == [5, 6]
        assert decoded.outputs[1].as_numpy().tolist() == [b"p", b"q"]


def test_a_response_to_grpc_is_kserves_message_and_reads_back():
    message = _binary_response().to_grpc()
    expected = pb.ModelInferResponse(
        model_name="m",
        id="r1",
        raw_output_contents=[
            b"\x05\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00",
            b"\x01\x00\x00\x00p\x01\x00\x00\x00q",
        ],
    )
    for name, datatype, size in (("o", "INT64", 16), ("b", "BYTES", 10)):
        tensor = expected.outputs.add(name=name, datatype=datatype, shape=[2])
        tensor.parameters["binary_data_size"].int64_param = size
    assert message == expected
    decoded = InferResponse.from_grpc(message)
    assert decoded.from_grpc is True
    assert decoded.outputs[0].as_numpy().tolist() == [5, 6]
    assert decoded.outputs[1].as_numpy().tolist() == [b"p", b"q"]
    assert InferResponse.from_grpc(message) == InferResponse.from_grpc(message)


def test_a_grpc_response_without_an_id_is_read_with_an_empty_one_as_kserve_reads_it():
    message = pb.ModelInferResponse(model_name="m")
    message.outputs.add(name="o", datatype="INT64", shape=[1]).contents.int64_contents.append(5)
    decoded = InferResponse.from_grpc(message)
    assert decoded.id == ""
    assert decoded == InferResponse.from_grpc(message)
    assert decoded.to_grpc().id == ""


def test_a_grpc_request_without_an_id_is_read_with_an_empty_one_as_kserve_reads_it():
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="i", datatype="INT64", shape=[1]).contents.int64_contents.append(5)
    assert InferRequest.from_grpc(message).id == ""
    assert InferRequest.from_grpc(message).to_grpc().id == ""
    message.id = "r1"
    assert InferRequest.from_grpc(message).id == "r1"
    assert (
        decode_request(
            b'{"inputs": [{"name": "i", "datatype": "INT64", "shape": [1], "data": [5]}]}', None, "m"
        ).id
        is None
    )


def test_requested_outputs_say_which_outputs_and_how():
    first, second = (InferOutput(name, [1], "FP32", [1.0]) for name in ("a", "b"))
    response = InferResponse(
        "r", "m", [first, second], requested_outputs=[RequestedOutput("b", {"binary_data": True})]
    )
    body, json_length = response.to_rest()
    decoded = decode_response(body, json_length)
    assert [output.name for output in decoded.outputs] == ["b"]
    assert decoded.outputs[0].parameters == {"binary_data_size": 4}
    contents = InferResponse("r", "m", [first]).to_grpc()
    assert not contents.raw_output_contents and list(contents.outputs[0].contents.fp32_contents) == [1.0]


def test_kserves_constructor_arguments():
    raw = InferRequest(
        "m", [InferInput("a", [2], "INT32")], "id", [np.array([3, 4], np.int32).tobytes()], True
    )
    assert raw.inputs[0].as_numpy().tolist() == [3, 4]
    assert raw.from_grpc and raw.use_binary_outputs
    assert InferRequest("m", [], parameters={"binary_data_output": True}).use_binary_outputs
    response = InferResponse("r", "m", [InferOutput("o", [1], "FP64")], None, [np.array([2.5]).tobytes()])
    assert response.outputs[0].as_numpy().tolist() == [2.5]


def test_tensors_are_equal_as_kserves_are():
    assert InferInput("a", [2], "INT32", [1, 2]) == InferInput("a", [2], "INT32", np.array([1, 2], np.int32))
    assert InferInput("a", [2], "INT32", [1, 2]) != InferInput("a", [2], "INT32", [1, 3])
    assert InferInput("a", [2], "INT32", [1, 2]) != InferInput("a", [2], "INT32", [1, 2], {"p": 1})
    assert InferInput("a", [2], "INT32", [1, 2]) != InferOutput("a", [2], "INT32", [1, 2])
    assert InferOutput("a", [2], "INT32", [1, 2]).to_dict() == {
        "name": "a",
        "shape": [2],
        "datatype": "INT32",
        "data": [1, 2],
        "parameters": None,
    }


@pytest.mark.parametrize("kind", [InferRequest, InferResponse])
def test_from_grpc_is_still_an_attribute_of_an_instance(kind):
    assert kind.__dict__["from_grpc"] is not None
    item = kind("m", [], from_grpc=True) if kind is InferRequest else kind("r", "m", [], from_grpc=True)
    assert item.from_grpc is True
    item.from_grpc = False
    assert item.from_grpc is False


def test_a_response_s_outputs_are_named_as_outputs_in_its_refusals():
    with pytest.raises(InvalidInput, match=r"^response: 'outputs' must be a non-empty list$"):
        decode_response(b'{"model_name": "m", "outputs": []}')
    with pytest.raises(InvalidInput, match=r"^output 'y' has no 'data'$"):
        decode_response(b'{"model_name": "m", "outputs": [{"name": "y", "shape": [1], "datatype": "FP32"}]}')
