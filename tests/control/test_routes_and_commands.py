"""Where each host goes, and how a template becomes a replica's command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelplane.control import service_routes
from modelplane.local.replicas.command import ReplicaPorts, gateway_address, replica_launch


def test_the_service_host_goes_to_the_transformer_and_explain_to_the_explainer():
    routes = service_routes(
        "iris",
        "default",
        "localhost",
        {"predictor", "transformer", "explainer"},
        {"predictor": "P", "transformer": "T", "explainer": "E"},
    )
    assert routes == {
        "iris.default.localhost": ("T", "E"),
        "iris-predictor.default.localhost": ("P", None),
        "iris-transformer.default.localhost": ("T", None),
        "iris-explainer.default.localhost": ("E", None),
    }


def test_the_service_host_waits_for_the_transformer_when_the_spec_has_one():
    routes = service_routes("iris", "default", "localhost", {"predictor", "transformer"}, {"predictor": "P"})
    assert routes == {"iris-predictor.default.localhost": ("P", None)}


def template(command: list[str], env: dict | None = None) -> dict:
    return {"command": command, "env": env or {}, "ports": {"http": 8080, "grpc": 8081}}


def test_ports_and_the_model_folder_are_the_replicas_own():
    launch = replica_launch(
        template(
            ["modelplane", "serve", "--model-dir=/mnt/models", "--http-port=8080", "--grpc_port", "8081"],
            {"MODEL": "/mnt/models/model.joblib", "OTHER": "/mnt/modelsx"},
        ),
        ReplicaPorts(41000, 41001),
        Path("/cache/iris"),
        domain="localhost",
        gateway_port=8080,
    )
    assert launch.argv == [
        sys.executable,
        "-m",
        "modelplane",
        "serve",
        "--model-dir=/cache/iris",
        "--http-port=41000",
        "--grpc_port",
        "41001",
    ]
    assert launch.env["MODEL"] == "/cache/iris/model.joblib"
    assert launch.env["OTHER"] == "/mnt/modelsx"
    assert launch.env["PORT"] == "41000"


def test_modelplane_serve_without_a_grpc_port_gets_one():
    launch = replica_launch(
        template(["modelplane", "serve", "--model-class", "m.py:M"]),
        ReplicaPorts(41000, 41001),
        None,
        domain="localhost",
        gateway_port=8080,
    )
    assert launch.argv[-1] == "--grpc-port=41001"


def test_the_batchers_numbers_are_never_taken_for_ports():
    launch = replica_launch(
        template(
            ["modelplane", "serve", "--http-port=8080", "--max-latency=8080", "--max-batch-size", "8081"]
        ),
        ReplicaPorts(41000, 41001),
        None,
        domain="localhost",
        gateway_port=8080,
    )
    assert launch.argv[4:8] == ["--http-port=41000", "--max-latency=8080", "--max-batch-size", "8081"]


def test_a_predictor_service_name_becomes_the_gateway_host():
    launch = replica_launch(
        template(["./transformer", "--predictor_host", "iris-predictor.default", "--http_port", "8080"]),
        ReplicaPorts(41000, 41001),
        None,
        domain="localhost",
        gateway_port=18080,
    )
    assert launch.argv == [
        "./transformer",
        "--predictor_host",
        "iris-predictor.default.localhost:18080",
        "--http_port",
        "41000",
    ]
    assert gateway_address("iris-predictor.default.svc.cluster.local", "localhost", 80) == (
        "iris-predictor.default.localhost:80"
    )
    assert gateway_address("10.0.0.1:9000", "localhost", 80) == "10.0.0.1:9000"


@pytest.mark.parametrize(
    "named",
    [
        "iris-predictor.default:80",
        "iris-predictor.default.svc:80",
        "iris-predictor.default.svc.cluster.local:80",
    ],
)
def test_a_service_named_with_its_cluster_port_goes_to_the_gateway(named):
    """A cluster's Service listens on port 80, and KServe's users may write it out."""
    assert gateway_address(named, "localhost", 18080) == "iris-predictor.default.localhost:18080"


@pytest.mark.parametrize(
    ("named", "address"),
    [
        ("iris-predictor.default:8081", "iris-predictor.default"),
        ("iris-predictor.team-b.svc.cluster.local:8081", "iris-predictor.team-b"),
        ("iris-predictor:8081", "iris-predictor.team-a"),
        ("iris-transformer.default.svc:9000", "iris-transformer.default"),
    ],
)
def test_a_components_service_at_another_port_goes_to_the_gateway(named, address):
    """Its gRPC port, say (a transformer told `grpc-v2`): the gateway's one port takes REST and gRPC."""
    assert gateway_address(named, "localhost", 18080, "team-a") == f"{address}.localhost:18080"


@pytest.mark.parametrize(
    "named", ["example.org:8081", "models.internal:9000", "iris-predictor.default:99999x"]
)
def test_another_host_and_port_stays_as_it_is(named):
    assert gateway_address(named, "localhost", 18080) == named


@pytest.mark.parametrize(
    "named", ["iris-predictor", "iris-predictor:80", "iris-explainer", "iris-blue-predictor"]
)
def test_a_components_service_named_alone_is_the_one_in_the_replicas_namespace(named):
    """A pod's DNS search path finds `iris-predictor` in the pod's own namespace."""
    service = named.removesuffix(":80")
    assert gateway_address(named, "localhost", 18080, "team-a") == f"{service}.team-a.localhost:18080"


def test_a_bare_predictor_host_in_a_template_goes_to_the_gateway_in_the_replicas_namespace():
    launch = replica_launch(
        template(["./transformer", "--predictor_host", "iris-predictor", "--explainer_host=iris-explainer"]),
        ReplicaPorts(41000, 41001),
        None,
        domain="localhost",
        gateway_port=18080,
        namespace="team-a",
    )
    assert launch.argv[1:] == [
        "--predictor_host",
        "iris-predictor.team-a.localhost:18080",
        "--explainer_host=iris-explainer.team-a.localhost:18080",
    ]


@pytest.mark.parametrize("named", ["mybox", "mybox:9000", "localhost", "iris-predictors:8080"])
def test_another_single_name_is_left_for_the_systems_resolver(named):
    assert gateway_address(named, "localhost", 18080, "team-a") == named


def test_the_service_host_waits_for_every_component():
    routes = service_routes(
        "iris", "default", "localhost", {"predictor", "transformer"}, {"transformer": "T"}
    )
    assert routes == {"iris-transformer.default.localhost": ("T", None)}


def test_a_service_with_nothing_to_run_has_no_routes():
    assert service_routes("iris", "default", "localhost", set(), {}) == {}


def test_a_stock_server_told_its_ports_by_env_gets_the_replicas_ports():
    stock = template(
        ["mlserver", "start", "/mnt/models"], {"MLSERVER_HTTP_PORT": "8080", "MLSERVER_GRPC_PORT": "9000"}
    )
    stock["portEnv"] = {"MLSERVER_HTTP_PORT": "http", "MLSERVER_GRPC_PORT": "grpc"}
    launch = replica_launch(
        stock, ReplicaPorts(41000, 41001), Path("/cache/iris"), domain="localhost", gateway_port=80
    )
    assert launch.argv == ["mlserver", "start", "/cache/iris"]
    assert (launch.env["MLSERVER_HTTP_PORT"], launch.env["MLSERVER_GRPC_PORT"]) == ("41000", "41001")
