"""How ModelMesh's endpoint finds the model: the header, the REST path, or a gRPC call's first message;
and the endpoint a request at an address (a port-forward's localhost) reaches."""

from __future__ import annotations

import pytest

from modelplane.local.gateway.dispatch import Dispatcher
from modelplane.local.gateway.modelmesh_endpoint import (
    NoModelName,
    endpoint_host,
    model_header,
    model_in_message,
    model_in_path,
)
from modelplane.local.gateway.revisions import Unavailable
from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub


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


def mesh_dispatcher(*namespaces: str) -> Dispatcher:
    """A gateway whose namespaces each hold a ModelMesh model `iris` (and `team-only` in the first)."""
    routes, endpoints = {}, {}
    for namespace in namespaces:
        host = f"iris.{namespace}.localhost"
        routes[host] = Route((Backend(f"mesh/{namespace}/iris", ("127.0.0.1:1",)),))
        endpoints[endpoint_host(namespace, "localhost")] = {"iris": host}
    first = namespaces[0]
    routes[f"team-only.{first}.localhost"] = Route((Backend(f"mesh/{first}/team-only", ("127.0.0.1:2",)),))
    endpoints[endpoint_host(first, "localhost")]["team-only"] = f"team-only.{first}.localhost"
    dispatcher = Dispatcher()
    dispatcher.update(RouteTable(routes, model_endpoints=endpoints))
    return dispatcher


@pytest.mark.parametrize("host", [b"localhost:8033", b"127.0.0.1:8008", b"[::1]:8080", b""])
def test_an_address_is_the_endpoint_of_the_namespace_whose_model_is_named(host):
    """ModelMesh's users port-forward its Service and call localhost: the model chooses the namespace."""
    dispatcher = mesh_dispatcher("modelmesh-serving")
    assert dispatcher.models_at(host) is not None
    assert dispatcher.resolve(host, b"/v2/models/iris/infer").revision == "mesh/modelmesh-serving/iris"
    assert dispatcher.resolve(host, b"/", b"team-only").revision == "mesh/modelmesh-serving/team-only"


def test_at_an_address_a_name_of_several_namespaces_asks_for_the_namespace():
    dispatcher = mesh_dispatcher("team-a", "team-b")
    with pytest.raises(Unavailable) as refused:
        dispatcher.resolve(b"localhost:8080", b"/v2/models/iris/infer")
    assert refused.value.status == 404
    assert "modelmesh-serving.team-a.localhost or modelmesh-serving.team-b.localhost" in refused.value.message
    assert dispatcher.resolve(b"localhost", b"/", b"team-only").revision == "mesh/team-a/team-only"


def test_at_an_address_a_model_nobody_serves_is_404_and_a_name_is_still_needed():
    dispatcher = mesh_dispatcher("default")
    with pytest.raises(Unavailable) as refused:
        dispatcher.resolve(b"127.0.0.1:8080", b"/v1/models/other:predict")
    assert refused.value.status == 404
    assert refused.value.message.startswith(
        "no InferenceService or InferenceGraph serves host '127.0.0.1:8080'"
    )
    assert "no ModelMesh model is named 'other'; ModelMesh models: iris, team-only" in refused.value.message
    with pytest.raises(Unavailable) as unnamed:
        dispatcher.resolve(b"127.0.0.1:8080", b"/v2/health/ready")
    assert unnamed.value.status == 404
    # A name that is no address (a typo of a service's host) is not taken for the endpoint.
    assert dispatcher.models_at(b"iris.defualt.localhost") is None


def test_an_address_routes_by_host_without_modelmesh_models():
    dispatcher = Dispatcher()
    dispatcher.update(RouteTable({"iris.default.localhost": Route((Backend("iris-1", ("127.0.0.1:1",)),))}))
    assert dispatcher.models_at(b"localhost:8080") is None


def test_the_model_a_rest_path_names_goes_before_the_header():
    """ModelMesh's REST proxy makes the path's model the call's `model_name`, which ModelMesh reads
    before `mm-vmodel-id`: the header chooses only where the path names no model."""
    dispatcher = mesh_dispatcher("default")
    host = endpoint_host("default", "localhost").encode()
    assert (
        dispatcher.resolve(host, b"/v2/models/team-only/infer", b"iris").revision == "mesh/default/team-only"
    )
    assert dispatcher.resolve(host, b"/v2/health/ready", b"iris").revision == "mesh/default/iris"


def test_the_model_a_grpc_message_names_goes_before_the_header():
    """As ModelMesh extracts the model of ModelInfer and ModelMetadata from the message first (its
    `idExtractionPath`), and reads `mm-vmodel-id` where the message names none."""
    from tests.local.gateway.test_grpc import channel, running_gateway, upstream

    with upstream("iris-replica") as iris, upstream("team-replica") as team:
        routes = {
            "iris.default.localhost": Route((Backend("mesh/default/iris", (iris,), grpc_replicas=(iris,)),)),
            "team-only.default.localhost": Route(
                (Backend("mesh/default/team-only", (team,), grpc_replicas=(team,)),)
            ),
        }
        endpoints = {
            endpoint_host("default", "localhost"): {
                "iris": "iris.default.localhost",
                "team-only": "team-only.default.localhost",
            }
        }
        table = RouteTable(routes, model_endpoints=endpoints)
        with (
            running_gateway(table) as gateway,
            channel(gateway, endpoint_host("default", "localhost")) as chan,
        ):
            stub = InferenceStub(chan)
            header = [("mm-vmodel-id", "iris")]
            named = stub.ModelInfer(pb.ModelInferRequest(model_name="team-only"), metadata=header)
            assert (named.id, named.model_name) == ("team-replica", "team-only")
            unnamed = stub.ModelInfer(pb.ModelInferRequest(), metadata=header)
            assert unnamed.id == "iris-replica"
            by_header = stub.ModelInfer(pb.ModelInferRequest(model_name="iris"), metadata=header)
            assert by_header.id == "iris-replica"
