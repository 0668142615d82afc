"""REST request bodies with a Content-Encoding: gzip and deflate are decoded (for every route, the
binary tensor extension's header length counting the decoded body), other codings are 415, and a body
that decodes to more than the server's limit is 413."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httpx
import orjson
import pytest
import tritonclient.http as triton_http

from modelplane.protocol.http_server import HttpRequest
from modelplane.server.dataplane import DataPlane
from modelplane.server.repository import ModelRepository
from modelplane.server.rest import RESTServer
from tests.server.conftest import iris_array

IRIS_V2 = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}
COMPRESS = {"gzip": gzip.compress, "deflate": zlib.compress}


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary_data", [False, True], ids=["json", "binary"])
def test_tritonclient_compressed_requests_are_answered(iris_server, algorithm, binary_data):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{iris_server.http_port}")
    tensor = triton_http.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array(), binary_data=binary_data)
    result = client.infer("iris", [tensor], request_compression_algorithm=algorithm)
    assert result.as_numpy("output-0").tolist() == [1, 1]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_asking_for_a_compressed_answer_reads_the_plain_one(iris_server, algorithm):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{iris_server.http_port}")
    tensor = triton_http.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    result = client.infer("iris", [tensor], response_compression_algorithm=algorithm)
    assert result.as_numpy("output-0").tolist() == [1, 1]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_v1_and_v2_json_bodies_may_be_compressed(iris_server, coding):
    compress = COMPRESS[coding]
    headers = {"content-encoding": coding, "content-type": "application/json"}
    v1 = httpx.post(
        f"{iris_server.url}/v1/models/iris:predict",
        content=compress(orjson.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]})),
        headers=headers,
    )
    assert v1.json() == {"predictions": [1]}
    v2 = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", content=compress(orjson.dumps(IRIS_V2)), headers=headers
    )
    assert v2.json()["outputs"][0]["data"] == [1]


def test_identity_is_no_coding(iris_server):
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", json=IRIS_V2, headers={"content-encoding": "identity"}
    )
    assert response.status_code == 200, response.text


def test_an_unknown_coding_is_415_naming_the_codings_accepted(iris_server):
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", json=IRIS_V2, headers={"content-encoding": "br"}
    )
    assert response.status_code == 415, response.text
    assert "'br' is not supported" in response.json()["error"]
    assert response.headers["accept-encoding"] == "gzip, deflate"


def test_a_body_that_is_not_what_its_coding_says_is_400(iris_server):
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", json=IRIS_V2, headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 400, response.text
    assert "not valid gzip" in response.json()["error"]


def _post(server: RESTServer, path: str, body: bytes, coding: bytes):
    request = HttpRequest(b"POST", path.encode(), [(b"content-encoding", coding)], body)
    return asyncio.run(server(request))


def test_a_body_decoding_past_the_limit_is_413_without_decoding_it_all():
    server = RESTServer(DataPlane(ModelRepository()), max_body_size=1000)
    bomb = gzip.compress(b"\0" * 10_000_000)
    response = _post(server, "/v2/repository/index", bomb, b"gzip")
    assert response.status == 413
    assert "exceeds 1000 bytes once decoded" in orjson.loads(response.body)["error"]
    assert _post(server, "/v2/repository/index", gzip.compress(b"{}"), b"gzip").status == 200


def test_the_openai_routes_answer_a_coding_error_as_openai_does():
    server = RESTServer(DataPlane(ModelRepository()))
    response = _post(server, "/openai/v1/chat/completions", b"{}", b"br")
    assert response.status == 415
    assert "'br' is not supported" in orjson.loads(response.body)["error"]["message"]


def test_gzip_members_one_after_another_are_one_body():
    from modelplane.protocol.content_coding import decoded_request

    request = HttpRequest(
        b"POST", b"/", [(b"content-encoding", b"gzip")], gzip.compress(b"ab") + gzip.compress(b"c")
    )
    assert decoded_request(request, 100).body == b"abc"
    assert decoded_request(request, 100).headers == []
