"""The batcher of a real `modelplane serve`: concurrent V1, V2 REST and gRPC requests share model calls,
and each gets its own answer.

The test model answers, with every row, how many rows its call had. The server waits a minute for
company and takes 4 rows a call, so the requests of these tests are answered as soon as they fill a
call: a request that was not batched as expected shows it in its answer (or in a minute's wait).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from modelplane.server import BatchSettings
from modelplane.server.dataplane import DataPlane
from modelplane.server.repository import ModelRepository
from tests.server.batch_models import SLOW_VALUE, RowCounter
from tests.server.processes import serve

MODEL = "counter"
BATCH = 4
COUNTER = ["--model-class", "tests/server/batch_models.py:RowCounter", "--model-name", MODEL]


@pytest.fixture(scope="module")
def server():
    process = serve(*COUNTER, "--max-batch-size", str(BATCH), "--max-latency", "60000")
    yield process
    process.stop()


def together(calls):
    """Runs each call on a thread of its own, all at once; their results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def v1(server, instances, **headers):
    def call():
        return httpx.post(
            f"{server.url}/v1/models/{MODEL}:predict",
            json={"instances": instances},
            headers=headers,
            timeout=120,
        )

    return call


def v2_body(array: np.ndarray, **extra) -> dict:
    datatype = {np.float32: "FP32", np.float64: "FP64"}[array.dtype.type]
    tensor = {"name": "x", "shape": list(array.shape), "datatype": datatype, "data": array.ravel().tolist()}
    return {"inputs": [tensor], **extra}


def v2(server, array: np.ndarray, **extra):
    def call():
        return httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=v2_body(array, **extra), timeout=120)

    return call


def test_v1_requests_share_a_model_call_and_each_gets_its_own_predictions(server):
    requests = [[[1, 2]], [[3, 4], [5, 6]], [[7, 8]]]
    answers = together(
        [
            v1(server, instances, **{"x-tenant": "a", "x-request-id": str(i)})
            for i, instances in enumerate(requests)
        ]
    )
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json()["predictions"] for answer in answers] == [
        [[3.0, 4]],
        [[7.0, 4], [11.0, 4]],
        [[15.0, 4]],
    ]
    # The model saw the headers the requests had in common, and only those.
    assert {(answer.json()["tenant"], answer.json()["request_id"]) for answer in answers} == {("a", None)}


def test_v2_rest_requests_share_a_model_call_with_their_own_ids_and_outputs(server):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}", concurrency=BATCH)
    try:
        pending = []
        for index in range(BATCH):
            tensor = triton_http.InferInput("x", [1, 2], "FP32")
            tensor.set_data_from_numpy(
                np.array([[index, 10 * index]], dtype=np.float32), binary_data=index % 2 == 0
            )
            wanted = [
                triton_http.InferRequestedOutput(name, binary_data=index < 2) for name in ("sum", "rows")
            ]
            pending.append(client.async_infer(MODEL, [tensor], request_id=f"r{index}", outputs=wanted))
        results = [request.get_result(timeout=120) for request in pending]
    finally:
        client.close()
    assert [result.get_response()["id"] for result in results] == ["r0", "r1", "r2", "r3"]
    assert [result.as_numpy("sum").tolist() for result in results] == [[0.0], [11.0], [22.0], [33.0]]
    assert [result.as_numpy("rows").tolist() for result in results] == [[BATCH]] * BATCH


def test_v2_requests_without_ids_sharing_a_call_each_get_an_id_of_their_own(server):
    answers = together([v2(server, np.full((1, 2), index, dtype=np.float32)) for index in range(BATCH)])
    assert [answer.json()["outputs"][1]["data"] for answer in answers] == [[BATCH]] * BATCH
    assert len({answer.json()["id"] for answer in answers}) == BATCH


def test_grpc_requests_share_a_model_call(server):
    def infer(index):
        def call():
            client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
            try:
                tensor = triton_grpc.InferInput("x", [2, 3], "FP32")
                tensor.set_data_from_numpy(np.full((2, 3), index, dtype=np.float32))
                return client.infer(MODEL, [tensor], request_id=f"g{index}", client_timeout=120)
            finally:
                client.close()

        return call

    results = together([infer(index) for index in (1, 2)])
    assert [result.get_response().id for result in results] == ["g1", "g2"]
    assert [result.as_numpy("sum").tolist() for result in results] == [[3.0, 3.0], [6.0, 6.0]]
    assert [result.as_numpy("rows").tolist() for result in results] == [[BATCH, BATCH]] * 2


def test_grpc_requests_with_raw_and_typed_inputs_share_calls_apart_and_the_model_sees_which(server):
    """Alone, the model's `use_binary_outputs` is True for raw gRPC inputs (tritonclient's) and False
    for typed ones: batched, it must be the same."""

    def raw(index):
        def call():
            client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
            try:
                tensor = triton_grpc.InferInput("x", [2, 1], "FP32")
                tensor.set_data_from_numpy(np.full((2, 1), index, dtype=np.float32))
                result = client.infer(MODEL, [tensor], client_timeout=120)
                return result.as_numpy("rows").tolist(), result.as_numpy("binary").tolist()
            finally:
                client.close()

        return call

    def typed(index):
        def call():
            contents = pb.InferTensorContents(fp32_contents=[index, index])
            tensor = pb.ModelInferRequest.InferInputTensor(
                name="x", datatype="FP32", shape=[2, 1], contents=contents
            )
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                answer = InferenceStub(channel).ModelInfer(
                    pb.ModelInferRequest(model_name=MODEL, inputs=[tensor]), timeout=120
                )
            outputs = {output.name: output.contents for output in answer.outputs}
            return list(outputs["rows"].int64_contents), list(outputs["binary"].bool_contents)

        return call

    answers = together([raw(1), typed(2), raw(3), typed(4)])
    assert answers == [
        ([BATCH, BATCH], [True, True]),
        ([BATCH, BATCH], [False, False]),
        ([BATCH, BATCH], [True, True]),
        ([BATCH, BATCH], [False, False]),
    ]


def test_requests_sharing_a_call_each_get_the_classification_they_asked_for(server):
    def wanted(count):
        return [{"name": "sum", "parameters": {"classification": count}}, {"name": "rows"}]

    first = np.array([[1, 1], [5, 5]], dtype=np.float32)  # sums 2 and 10
    second = np.array([[3, 3], [0, 0]], dtype=np.float32)  # sums 6 and 0
    answers = together([v2(server, first, outputs=wanted(1)), v2(server, second, outputs=wanted(2))])
    assert [answer.status_code for answer in answers] == [200, 200]
    outputs = [answer.json()["outputs"] for answer in answers]
    assert [(o[0]["datatype"], o[0]["shape"], o[0]["data"]) for o in outputs] == [
        ("BYTES", [1], ["10.000000:1"]),
        ("BYTES", [2], ["6.000000:0", "0.000000:1"]),
    ]
    assert [o[1]["data"] for o in outputs] == [[BATCH, BATCH]] * 2


def test_requests_that_cannot_share_a_call_are_batched_apart(server):
    kinds = [
        np.ones((2, 2), dtype=np.float32),
        np.ones((2, 5), dtype=np.float32),  # other non-batch dimensions
        np.ones((2, 2), dtype=np.float64),  # another datatype
    ]
    calls = [v2(server, array) for array in kinds for _ in range(2)]
    calls += [v2(server, kinds[0], parameters={"tag": tag}) for tag in ("x", "x")]  # other parameters
    answers = together(calls)
    assert [answer.status_code for answer in answers] == [200] * len(calls)
    sums = [answer.json()["outputs"][0]["data"] for answer in answers]
    assert sums == [[2.0, 2.0]] * 2 + [[5.0, 5.0]] * 2 + [[2.0, 2.0]] * 4
    assert [answer.json()["outputs"][1]["data"] for answer in answers] == [[BATCH, BATCH]] * len(calls)


def test_a_bad_request_fails_alone(server):
    answers = together(
        [v1(server, [[1, 1]]), v1(server, [[-1, 1]]), v1(server, [[2, 2]]), v1(server, [[3, 3]])]
    )
    assert [answer.status_code for answer in answers] == [200, 400, 200, 200]
    assert "negative values are refused" in answers[1].json()["error"]
    # Each was answered by a call of its own once the batch failed.
    assert [answers[i].json()["predictions"] for i in (0, 2, 3)] == [[[2.0, 1]], [[4.0, 1]], [[6.0, 1]]]


def test_a_bad_grpc_request_fails_alone(server):
    def infer(value):
        def call():
            client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
            tensor = triton_grpc.InferInput("x", [2, 1], "FP32")
            tensor.set_data_from_numpy(np.full((2, 1), value, dtype=np.float32))
            try:
                return client.infer(MODEL, [tensor], client_timeout=120).as_numpy("sum").tolist()
            except triton_grpc.InferenceServerException as exc:
                return exc.status()
            finally:
                client.close()

        return call

    assert together([infer(-1), infer(4)]) == [str(grpc.StatusCode.INVALID_ARGUMENT), [4.0, 4.0]]


def test_an_answer_that_cannot_be_split_back_fails_every_request_of_the_batch(server):
    def summary(instances):
        return lambda: httpx.post(
            f"{server.url}/v1/models/{MODEL}:predict",
            json={"instances": instances, "summary": True},
            timeout=120,
        )

    answers = together([summary([[1]]), summary([[2], [3]]), summary([[4]])])
    assert [answer.status_code for answer in answers] == [500] * 3
    assert {answer.json()["error"] for answer in answers} == {
        f"model {MODEL} answered a batch of 4 instances with 1 predictions; a batched model must answer "
        '{"predictions": [...]} with one prediction per instance'
    }


def test_requests_larger_than_a_batch_and_requests_that_cannot_be_batched_run_at_once(server):
    large = v1(server, [[1, 0]] * (BATCH + 1))()
    assert large.json()["predictions"] == [[1.0, BATCH + 1]] * (BATCH + 1)
    unbatchable = httpx.post(
        f"{server.url}/v1/models/{MODEL}:predict", json={"inputs": [[1, 2]]}, timeout=120
    )
    assert unbatchable.json()["predictions"] == [[3.0, 1]]


def batch_metrics(server) -> tuple[float, float]:
    """The count and sum of the batch-size histogram of the test model."""
    text = httpx.get(f"{server.url}/metrics").text
    found = dict(re.findall(rf'modelplane_batch_size_(count|sum){{model_name="{MODEL}"}} (\S+)', text))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def test_the_batch_sizes_are_in_the_metrics(server):
    count, total = batch_metrics(server)
    together([v1(server, [[1, 1]]) for _ in range(BATCH)])
    assert batch_metrics(server) == (count + 1, total + BATCH)


def test_a_model_call_past_the_batch_timeout_fails_its_requests():
    process = serve(*COUNTER, "--max-batch-size", "1", "--batch-timeout", "0.5")
    try:
        slow = httpx.post(
            f"{process.url}/v1/models/{MODEL}:predict", json={"instances": [[SLOW_VALUE]]}, timeout=120
        )
        assert slow.status_code == 504
        assert slow.json() == {"error": "a batch of 1 item did not finish within the timeout of 0.5 s"}
        fine = httpx.post(f"{process.url}/v1/models/{MODEL}:predict", json={"instances": [[1]]}, timeout=120)
        assert fine.json()["predictions"] == [[1.0, 1]]
    finally:
        process.stop()


def test_a_server_that_stops_answers_the_requests_waiting_for_company_at_once():
    repository = ModelRepository()
    served = repository.add(RowCounter(MODEL))
    served.model.load()
    dataplane = DataPlane(repository, BatchSettings(max_batch_size=BATCH, max_latency=3600))

    async def main():
        waiting = asyncio.ensure_future(dataplane.run(served, {"instances": [[1, 2]]}, {}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        dataplane.stop_batching()  # what ModelServer does on SIGTERM
        held, _ = await waiting
        later, _ = await dataplane.run(served, {"instances": [[3, 4]]}, {})
        return held["predictions"], later["predictions"]

    assert asyncio.run(asyncio.wait_for(main(), 30)) == ([[3.0, 1]], [[7.0, 1]])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-batch-size", "0"], "--max-batch-size must be at least 1, got 0"),
        (["--max-latency", "-1"], "--max-latency must be a number of milliseconds, at least 0, got -1"),
        (
            ["--enable-batcher", "--batch-timeout", "0"],
            "--batch-timeout must be a positive number of seconds, got 0",
        ),
        (
            ["--batch-timeout", "5"],
            "--batch-timeout needs the batcher: add --enable-batcher or --max-batch-size",
        ),
    ],
)
def test_batcher_flags_out_of_range_are_one_line_and_exit_2(flags, message):
    result = subprocess.run(
        [sys.executable, "-m", "modelplane", "serve", *COUNTER, *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(message)
    assert "Traceback" not in result.stderr
