"""The gRPC service fuzzed with hypothesis: random bytes as messages, and well-formed messages with any
names, shapes, types and contents. A mistake of the client's is a status that says so (INVALID_ARGUMENT,
NOT_FOUND, ...), never INTERNAL or UNKNOWN. Each test is bounded to a few seconds."""

from __future__ import annotations

import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import METHODS, SERVICE_NAME, InferenceStub

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SERVER_FAULTS = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
Tensor = pb.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def iris_channel(iris_server):
    with grpc.insecure_channel(f"127.0.0.1:{iris_server.grpc_port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def echo_channel(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        yield channel


def no_server_fault(call, request) -> None:
    try:
        call(request, timeout=30)
    except grpc.RpcError as error:
        assert error.code() not in SERVER_FAULTS, error.details()


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), message=st.binary(max_size=300))
def test_random_bytes_as_any_message(iris_channel, method, message):
    no_server_fault(iris_channel.unary_unary(f"/{SERVICE_NAME}/{method}"), message)


contents = st.fixed_dictionaries(
    {},
    optional={
        "bool_contents": st.lists(st.booleans(), max_size=6),
        "int_contents": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6),
        "int64_contents": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6),
        "uint_contents": st.lists(st.integers(0, 2**32 - 1), max_size=6),
        "uint64_contents": st.lists(st.integers(0, 2**64 - 1), max_size=6),
        "fp32_contents": st.lists(st.floats(width=32), max_size=6),
        "fp64_contents": st.lists(st.floats(), max_size=6),
        "bytes_contents": st.lists(st.binary(max_size=8), max_size=6),
    },
)
shapes = st.one_of(
    st.lists(st.integers(0, 6), max_size=4),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    st.integers(60, 80).map(lambda dims: [1] * dims),
)
datatypes = st.sampled_from(
    ["BOOL", "UINT8", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]
    + ["BYTES", "BF16", "fp32", "", "X"]
)


@st.composite
def infer_requests(draw, model_names):
    message = pb.ModelInferRequest(
        model_name=draw(model_names), model_version=draw(st.sampled_from(["", "1", "x"]))
    )
    raw = draw(st.booleans())
    for index in range(draw(st.integers(0, 3))):
        tensor = message.inputs.add(name=f"input-{index}", datatype=draw(datatypes), shape=draw(shapes))
        if raw:
            message.raw_input_contents.append(draw(st.binary(max_size=48)))
        else:
            for field, values in draw(contents).items():
                getattr(tensor.contents, field).extend(values)
    if draw(st.booleans()):
        message.raw_input_contents.append(draw(st.binary(max_size=8)))  # one too many, now and then
    for name in draw(st.lists(st.sampled_from(["output-0", "input-0", "nothing"]), max_size=2)):
        message.outputs.add(name=name)
    return message


@FUZZ
@given(request=infer_requests(st.sampled_from(["iris", "none"])))
def test_any_infer_request_to_a_real_runtime(iris_channel, request):
    no_server_fault(InferenceStub(iris_channel).ModelInfer, request)


@FUZZ
@given(request=infer_requests(st.just("echo")))
def test_any_infer_request_through_the_protocol(echo_channel, request):
    """A model that takes anything: what is left to fail is the decoding and the encoding."""
    no_server_fault(InferenceStub(echo_channel).ModelInfer, request)


def test_a_shape_of_no_elements_but_huge_extent_is_invalid_argument(iris_channel):
    message = pb.ModelInferRequest(
        model_name="iris", inputs=[Tensor(name="x", datatype="FP32", shape=[0, 2**63 - 1])]
    )
    message.raw_input_contents.append(b"")
    with pytest.raises(grpc.RpcError) as error:
        InferenceStub(iris_channel).ModelInfer(message, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "elements (counting a 0 as 1)" in error.value.details()


def test_a_shape_of_many_dimensions_is_invalid_argument(iris_channel):
    message = pb.ModelInferRequest(
        model_name="iris", inputs=[Tensor(name="x", datatype="FP32", shape=[1] * 70)]
    )
    message.inputs[0].contents.fp32_contents.append(1.0)
    with pytest.raises(grpc.RpcError) as error:
        InferenceStub(iris_channel).ModelInfer(message, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 64" in error.value.details()
