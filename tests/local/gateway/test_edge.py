"""The gateway's edge: the bearer token (REST 401, gRPC UNAUTHENTICATED, the header never forwarded) and
TLS (HTTP/1.1, and HTTP/2 for gRPC by ALPN), with the loopback port the replicas use taking neither."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl

import grpc
import httpx
import pytest

from modelplane.local.gateway.routes import Backend, ComponentTraffic, RouteTable, inference_service_routes
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from modelplane.local.tls import TLSFiles
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.local.certificates import write_certificates
from tests.local.gateway.test_grpc import APP as GRPC_APP
from tests.local.gateway.test_grpc import HTTP_APP, upstream

TOKEN = "s3cret-token-of-the-gateway-0123456789"
HOST = "iris.default.localhost"
BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def replicas():
    with upstream("rest-1", HTTP_APP) as rest, upstream("grpc-1", GRPC_APP) as grpc_address:
        yield rest, grpc_address


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return write_certificates(tmp_path_factory.mktemp("tls"))


def table(rest: str, grpc_address: str) -> RouteTable:
    backend = Backend("iris-predictor-1", (rest,), grpc_replicas=(grpc_address,))
    return RouteTable(inference_service_routes("iris", "default", predictor=ComponentTraffic((backend,))))


@contextlib.contextmanager
def running_gateway(replicas, **settings):
    thread = GatewayThread(GatewayConfig(port=0, **settings))
    gateway = thread.start()
    gateway.update_routes(table(*replicas))
    try:
        yield gateway
    finally:
        thread.stop()


def infer(channel, **call) -> pb.ModelInferResponse:
    return InferenceStub(channel).ModelInfer(pb.ModelInferRequest(model_name="iris"), timeout=30, **call)


def test_rest_needs_the_token_and_the_replica_never_sees_it(replicas):
    with running_gateway(replicas, auth_token=TOKEN) as gateway:
        url = f"{gateway.url}/v1/models/iris:predict"
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            refused = httpx.post(url, headers={"host": HOST, **headers}, json={})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json() == {"error": "the gateway needs Authorization: Bearer <token>"}
        # The scheme's name is case-insensitive (RFC 9110).
        assert httpx.post(url, headers={"host": HOST, "authorization": f"bearer {TOKEN}"}, json={}).is_success
        twice = [("host", HOST), ("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer x")]
        assert httpx.post(url, headers=twice, json={}).status_code == 401
        answer = httpx.post(url, headers={"host": HOST, **BEARER}, json={})
        assert answer.status_code == 200
        assert "authorization" not in answer.json()["headers"]
        # The replicas' own port takes no token (a transformer calling its predictor).
        internal = f"http://127.0.0.1:{gateway.internal_port}/v1/models/iris:predict"
        assert gateway.internal_port != gateway.port
        assert httpx.post(internal, headers={"host": HOST}, json={}).status_code == 200


def test_grpc_needs_the_token_and_the_replica_never_sees_it(replicas):
    with running_gateway(replicas, auth_token=TOKEN) as gateway:
        options = [("grpc.default_authority", HOST)]
        with grpc.insecure_channel(f"127.0.0.1:{gateway.port}", options=options) as channel:
            with pytest.raises(grpc.RpcError) as error:
                infer(channel)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as error:
                infer(channel, metadata=(("authorization", "Bearer nope"),))
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert infer(channel, metadata=tuple(BEARER.items())).id == "grpc-1"
            seen = json.loads(channel.unary_unary("/test.Echo/Metadata")(b"", metadata=tuple(BEARER.items())))
            assert "authorization" not in seen
        with grpc.insecure_channel(f"127.0.0.1:{gateway.internal_port}", options=options) as channel:
            assert infer(channel).id == "grpc-1"


def test_without_a_token_the_gateway_has_one_port(replicas):
    with running_gateway(replicas) as gateway:
        assert gateway.internal_port == gateway.port
        assert httpx.post(f"{gateway.url}/v1/models/iris:predict", headers={"host": HOST}, json={}).is_success


def test_tls_serves_http11_and_grpc_by_alpn(replicas, certificates):
    ca, cert, key = certificates
    with running_gateway(replicas, tls=TLSFiles(cert, key), auth_token=TOKEN) as gateway:
        assert gateway.url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(ca))
        url = f"https://localhost:{gateway.port}/v1/models/iris:predict"
        answer = httpx.post(url, headers={"host": HOST, **BEARER}, json={}, verify=verify)
        assert (answer.status_code, answer.http_version) == (200, "HTTP/1.1")
        assert httpx.post(url, headers={"host": HOST}, json={}, verify=verify).status_code == 401
        # A REST request over HTTP/2 (ALPN) without the token is a 401 too, not a gRPC status.
        with httpx.Client(http2=True, verify=verify) as client:
            refused = client.post(url, headers={"host": HOST}, json={})
        assert (refused.status_code, refused.http_version) == (401, "HTTP/2")
        assert refused.headers["www-authenticate"] == "Bearer"
        with pytest.raises(httpx.ConnectError):  # the certificate is checked: no CA, no connection
            httpx.post(url, headers={"host": HOST}, json={})
        # Plain HTTP to the TLS port: a 400 that names the https:// URL (the address connected to, as the
        # Host names the service), not a connection closed without a word; TLS goes on after it.
        refused = httpx.post(url.replace("https", "http"), headers={"host": HOST}, json={})
        assert (refused.status_code, refused.text) == (
            400,
            f"The plain HTTP request was sent to an HTTPS port: use https://127.0.0.1:{gateway.port}"
            "/v1/models/iris:predict\n",
        )
        with socket.create_connection(("127.0.0.1", gateway.port)) as raw:
            raw.sendall(b"GET /v1/models/iris HTTP/1.1\r\nhost: localhost:%d\r\n\r\n" % gateway.port)
            answer = raw.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert answer.endswith(b"use https://localhost:%d/v1/models/iris\n" % gateway.port)
        assert httpx.post(url, headers={"host": HOST, **BEARER}, json={}, verify=verify).status_code == 200

        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        options = [("grpc.default_authority", HOST), ("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(f"localhost:{gateway.port}", credentials, options=options) as channel:
            assert infer(channel, metadata=tuple(BEARER.items())).id == "grpc-1"
            with pytest.raises(grpc.RpcError) as error:
                infer(channel)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The replicas' port is cleartext.
        internal = f"http://127.0.0.1:{gateway.internal_port}/v1/models/iris:predict"
        assert httpx.post(internal, headers={"host": HOST}, json={}).status_code == 200


def test_up_refuses_gateway_auth_without_a_token(tmp_path):
    import subprocess
    import sys

    refused = subprocess.run(
        [sys.executable, "-m", "modelplane", "up", "--home", str(tmp_path), "--gateway-auth"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "--gateway-auth needs --auth-token-file FILE" in refused.stderr
