"""Triton's extensions that modelplane does not serve, as tritonclient's users call them: each is a clear
REST 501 or gRPC UNIMPLEMENTED naming what to use instead, and a streaming call gets its answer at once."""

from __future__ import annotations

import asyncio
import contextlib
import queue

import grpc
import httpx
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.grpc.aio as triton_grpc_aio
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tests.server.conftest import iris_array
from tests.server.processes import serve

# What a client waits for an answer that comes at once, before the test says it never came.
ANSWER_WAIT = 30

# tritonclient's calls into each extension, and a word of the message that answers them.
UNSERVED_CALLS = [
    (lambda client: client.get_model_config("iris"), "model configuration"),
    (lambda client: client.get_model_config("iris", "1"), "model configuration"),
    (lambda client: client.get_inference_statistics(), "statistics"),
    (lambda client: client.get_inference_statistics("iris"), "statistics"),
    (lambda client: client.get_trace_settings(), "trace"),
    (lambda client: client.update_trace_settings("iris", {"trace_rate": "1"}), "trace"),
    (lambda client: client.get_log_settings(), "logging"),
    (lambda client: client.update_log_settings({"log_verbose_level": 1}), "logging"),
    (lambda client: client.get_system_shared_memory_status(), "shared-memory"),
    (lambda client: client.register_system_shared_memory("region", "/key", 64), "shared-memory"),
    (lambda client: client.unregister_system_shared_memory("region"), "shared-memory"),
    (lambda client: client.get_cuda_shared_memory_status(), "shared-memory"),
    (lambda client: client.register_cuda_shared_memory("region", b"\0" * 64, 0, 64), "shared-memory"),
    (lambda client: client.unregister_cuda_shared_memory("region"), "shared-memory"),
]


@pytest.mark.parametrize(("call", "extension"), UNSERVED_CALLS)
def test_an_extension_not_served_is_501_over_rest(iris_server, call, extension):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{iris_server.http_port}")
    with pytest.raises(InferenceServerException) as caught:
        call(client)
    assert caught.value.status() == "501"
    assert f"does not serve Triton's {extension}" in caught.value.message()


@pytest.mark.parametrize(("call", "extension"), UNSERVED_CALLS)
def test_an_extension_not_served_is_unimplemented_over_grpc(iris_server, call, extension):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{iris_server.grpc_port}")
    with pytest.raises(InferenceServerException) as caught:
        call(client)
    assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
    assert f"does not serve Triton's {extension}" in caught.value.message()


def test_a_model_named_stats_keeps_its_metadata_route(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "stats", grpc=False)
    try:
        client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
        assert client.get_model_metadata("stats")["name"] == "stats"
    finally:
        server.stop()


def iris_input(module):
    tensor = module.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    return tensor


def test_a_stream_is_answered_unimplemented_while_the_client_keeps_it_open(iris_server):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{iris_server.grpc_port}")
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        # The answer may come before the request is sent (the call starts with the stream): then
        # tritonclient refuses to send it, and the callback has the answer.
        with contextlib.suppress(InferenceServerException):
            client.async_stream_infer("iris", [iris_input(triton_grpc)])
        result, error = answers.get(timeout=ANSWER_WAIT)
    finally:
        client.stop_stream()
    assert result is None
    assert error.status() == "StatusCode.UNIMPLEMENTED"
    assert "does not serve ModelStreamInfer" in error.message()
    assert client.infer("iris", [iris_input(triton_grpc)]).as_numpy("output-0").tolist() == [1, 1]


def test_an_asyncio_stream_is_answered_unimplemented_while_the_client_keeps_it_open(iris_server):
    async def talk() -> tuple[str, str] | None:
        client = triton_grpc_aio.InferenceServerClient(f"127.0.0.1:{iris_server.grpc_port}")
        still_open = asyncio.Event()

        async def requests():
            # The client's side stays open, sending nothing, until the answer has come: a message
            # written after the answer can fail in grpc's core, which then reports INTERNAL instead
            # (against grpcio's own server too).
            await still_open.wait()
            yield {"model_name": "iris", "inputs": [iris_input(triton_grpc_aio)]}

        try:
            async with asyncio.timeout(ANSWER_WAIT):
                async for _, error in client.stream_infer(requests()):
                    return str(error.status()), error.message()
        except grpc.aio.AioRpcError as exc:  # how tritonclient's asyncio stream reports a failed call
            return str(exc.code()), exc.details()
        finally:
            still_open.set()
            await client.close()
        return None

    status, message = asyncio.run(talk())
    assert status == "StatusCode.UNIMPLEMENTED"
    assert "does not serve ModelStreamInfer" in message


@pytest.mark.parametrize(
    "path",
    ["/v2/models/iris/generate", "/v2/models/iris/generate_stream", "/v2/models/iris/versions/1/generate"],
)
def test_tritons_generate_extension_is_501_naming_what_to_use_instead(iris_server, path):
    response = httpx.post(
        iris_server.url + path, json={"text_input": "the cat", "parameters": {"max_tokens": 4}}
    )
    assert response.status_code == 501
    message = response.json()["error"]
    assert "does not serve Triton's generate extension" in message
    assert "/v2/models/{model}/infer" in message and "/openai/v1/completions" in message
