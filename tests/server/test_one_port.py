"""gRPC on the model server's HTTP port: a connection that opens with HTTP/2's preface is served as the
gRPC port serves it, and every other connection as HTTP/1.1, on the same port."""

from __future__ import annotations

import socket
import time

import grpc
import httpx
import numpy as np
import tritonclient.grpc as triton_grpc

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.protocol.http2.frames import PREFACE
from tests.server.conftest import IRIS_ROWS
from tests.server.processes import serve


def test_grpc_clients_and_rest_clients_share_the_http_port(iris_server):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{iris_server.http_port}")
    try:
        assert client.is_model_ready("iris")
        tensor = triton_grpc.InferInput("input-0", [2, 4], "FP32")
        tensor.set_data_from_numpy(np.array(IRIS_ROWS, dtype=np.float32))
        assert client.infer("iris", [tensor]).as_numpy("output-0").tolist() == [1, 1]
    finally:
        client.close()
    rest = httpx.post(iris_server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS})
    assert rest.json() == {"predictions": [1, 1]}


def test_a_preface_that_comes_a_few_bytes_at_a_time_is_still_http2(iris_server):
    with socket.create_connection(("127.0.0.1", iris_server.http_port), timeout=10) as sock:
        for start in range(0, len(PREFACE), 5):
            sock.sendall(PREFACE[start : start + 5])
            time.sleep(0.02)
        sock.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # our (empty) SETTINGS
        kind = sock.recv(9)[3]
        assert kind == 0x4  # the server's SETTINGS: it speaks HTTP/2


def test_a_request_that_starts_as_the_preface_does_is_still_http1(iris_server):
    """`PR` could begin the preface; `PROPFIND` then shows it is HTTP/1.1, answered as such."""
    with socket.create_connection(("127.0.0.1", iris_server.http_port), timeout=10) as sock:
        sock.sendall(b"PR")
        time.sleep(0.05)
        sock.sendall(b"OPFIND /v2/models/iris HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 405 "), answer[:80]


def test_a_server_without_a_grpc_port_takes_no_grpc_on_its_http_port(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", grpc=False)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.http_port}") as channel:
            try:
                InferenceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=5)
                raise AssertionError("a gRPC call was answered")
            except grpc.RpcError as refused:
                assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert httpx.get(server.url + "/v2/health/live").status_code == 200
    finally:
        server.stop()
