"""How ModelMesh's endpoint finds the model: the header, the REST path, or a gRPC call's first message."""

from __future__ import annotations

import pytest

from modelplane.local.gateway.modelmesh_endpoint import (
    NoModelName,
    endpoint_host,
    model_header,
    model_in_message,
    model_in_path,
)
from modelplane.protocol.grpc import inference_pb2 as pb


def framed(message) -> bytes:
    body = message.SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


def test_the_endpoint_host_and_the_header():
    assert endpoint_host("team-a", "example.com") == "modelmesh-serving.team-a.example.com"
    assert model_header([(b"Content-Type", b"x"), (b"MM-VModel-Id", b" iris ")]) == b"iris"
    assert model_header([(b"content-type", b"x")]) is None
    # A model version's id chooses the model too; the model's own id goes first.
    assert model_header([(b"mm-model-id", b"iris__isvc-0123456789")]) == b"iris__isvc-0123456789"
    assert model_header([(b"mm-model-id", b"iris__isvc-0123456789"), (b"mm-vmodel-id", b"iris")]) == b"iris"


@pytest.mark.parametrize(
    ("path", "model"),
    [
        (b"/v2/models/iris/infer", b"iris"),
        (b"/v2/models/iris/versions/2/infer", b"iris"),
        (b"/v2/models/iris", b"iris"),
        (b"/v1/models/iris:predict", b"iris"),
        (b"/v2/health/ready", None),
        (b"/", None),
    ],
)
def test_the_model_a_rest_path_names(path, model):
    assert model_in_path(path) == model


@pytest.mark.parametrize(
    "message",
    [
        pb.ModelInferRequest(model_name="iris-" + "x" * 200, model_version="1"),  # a two-byte length
        pb.ModelMetadataRequest(name="iris-" + "x" * 200),
        pb.ModelReadyRequest(name="iris-" + "x" * 200),
    ],
)
def test_the_model_a_grpc_message_names_arrives_in_pieces(message):
    data = framed(message)
    name = b"iris-" + b"x" * 200
    needed = data.index(name) + len(name)
    assert all(model_in_message(data[:end]) is None for end in range(needed))
    assert model_in_message(data[:needed]) == name
    assert model_in_message(data) == name


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (framed(pb.ServerLiveRequest()), "empty"),
        (b"\x01" + framed(pb.ModelReadyRequest(name="iris"))[1:], "compressed"),
        (framed(pb.ModelReadyRequest(version="1")), "does not start with a model name"),
    ],
)
def test_a_message_that_names_no_model(data, why):
    with pytest.raises(NoModelName, match=why):
        model_in_message(data)
