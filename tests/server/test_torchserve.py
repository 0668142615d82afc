"""TorchServe model stores served by a real `modelplane serve`: `.mar` archives built with
torch-model-archiver, their handlers run through TorchServe's Python handler API, spoken to over V1,
V2 REST and gRPC as KServe's TorchServe integration speaks."""

from __future__ import annotations

import base64
import io
import json
import sys

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from PIL import Image

from tests.server.processes import REPO_ROOT, serve

sys.path.insert(0, str(REPO_ROOT / "examples"))

from pytorch_models import (  # noqa: E402
    BREEDS,
    CAT_DOG_LABELS,
    CLASSIFIER,
    breed_net,
    cat_dog_net,
    write_config,
    write_mar,
    write_torchscript_mar,
)

HANDLERS = REPO_ROOT / "tests" / "server" / "torchserve_handlers"
RED, BLUE = (220, 200, 30), (30, 30, 220)


def picture(colour: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store, three models: two classifiers whose archives both hold a `model.py` (with different
    class counts) and a probe with two workers."""
    folder = tmp_path_factory.mktemp("store")
    models = folder / "model-store"
    write_mar(models, "cat-dog", cat_dog_net(), CAT_DOG_LABELS, str(CLASSIFIER / "top_label_handler.py"))
    write_mar(models, "breeds", breed_net(), BREEDS, "image_classifier", version="2.0")
    write_mar(models, "probe", cat_dog_net(), CAT_DOG_LABELS, str(HANDLERS / "probe_handler.py"))
    write_mar(models, "batched", cat_dog_net(), CAT_DOG_LABELS, str(HANDLERS / "probe_handler.py"))
    write_torchscript_mar(models, "scripted")
    write_config(
        folder,
        {
            "cat-dog": {"marName": "cat-dog.mar"},
            "breeds": {"marName": "breeds.mar", "version": "2.0"},
            "probe": {"marName": "probe.mar", "minWorkers": 2, "maxWorkers": 2},
            # A delay no test waits out: a batch goes when it is full.
            "batched": {"marName": "batched.mar", "batchSize": 4, "maxBatchDelay": 60000},
            "scripted": {"marName": "scripted.mar"},
        },
        service_envelope="kserve",
    )
    return folder


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    meet = tmp_path_factory.mktemp("meet")
    # Three threads: not what torch takes by itself on the machines the tests run on.
    process = serve("--model-dir", str(store), "--nthread", "3", env={"MEET_DIR": str(meet)})
    yield process
    process.stop()


def test_every_model_of_the_store_is_served_under_its_name(server):
    names = sorted(httpx.get(f"{server.url}/v1/models").json()["models"])
    assert names == ["batched", "breeds", "cat-dog", "probe", "scripted"]
    assert httpx.get(f"{server.url}/v2/models/breeds").json()["versions"] == ["2.0"]
    assert httpx.get(f"{server.url}/v2/models/breeds/versions/2.0/ready").status_code == 200


def test_v1_base64_instances(server):
    body = {"instances": [{"data": b64(picture(RED))}, {"data": b64(picture(BLUE, "PNG"))}]}
    response = httpx.post(f"{server.url}/v1/models/cat-dog:predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["dog", "cat"]}


def test_a_default_handler_answers_its_own_format(server):
    """TorchServe's image_classifier: the top five labels with their probabilities."""
    response = httpx.post(
        f"{server.url}/v1/models/breeds:predict", json={"instances": [{"data": b64(picture(RED))}]}
    )
    (scores,) = response.json()["predictions"]
    assert list(scores)[0] == "golden_retriever"
    assert len(scores) == 5 and abs(sum(scores.values()) - 1) < 0.05


def test_a_stock_handler_reads_base64_broken_into_lines(server):
    """The stock handlers' pictures are decoded by modelplane; text wrapped as MIME writes it (a line
    break every 76 characters) reads as the standard library's decoder reads it."""
    wrapped = base64.encodebytes(picture(RED)).decode()
    assert "\n" in wrapped
    answers = [
        httpx.post(f"{server.url}/v1/models/breeds:predict", json={"instances": [{"data": text}]}).json()
        for text in (wrapped, b64(picture(RED)))
    ]
    assert answers[0] == answers[1]


def test_a_raw_picture_is_one_row(server):
    response = httpx.post(
        f"{server.url}/v1/models/cat-dog:predict",
        content=picture(BLUE),
        headers={"content-type": "image/jpeg"},
    )
    assert response.json() == {"predictions": ["cat"]}


def test_v2_bytes_over_rest_json_binary_and_grpc(server):
    # JSON carries a string: base64 text, as KServe's v2 examples send it.
    document = {
        "inputs": [{"name": "picture", "shape": [1], "datatype": "BYTES", "data": [b64(picture(RED))]}]
    }
    response = httpx.post(f"{server.url}/v2/models/cat-dog/infer", json=document)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert (output["name"], output["datatype"], output["data"]) == ("picture", "BYTES", ["dog"])

    # Binary data and gRPC carry the picture's own bytes.
    raw = np.array([picture(BLUE)], dtype=np.object_)
    for module, address in ((triton_http, server.url[7:]), (triton_grpc, f"127.0.0.1:{server.grpc_port}")):
        client = module.InferenceServerClient(address)
        tensor = module.InferInput("picture", [1], "BYTES")
        tensor.set_data_from_numpy(raw)
        result = client.infer("cat-dog", [tensor])
        assert result.as_numpy("picture").tolist() == [b"cat"]


def test_a_default_handler_s_scores_over_v2_are_json_text(server):
    tensor = triton_grpc.InferInput("picture", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([picture(RED)], dtype=np.object_))
    result = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}").infer("breeds", [tensor])
    (text,) = result.as_numpy("picture").tolist()
    assert list(json.loads(text))[0] == "golden_retriever"


@pytest.mark.parametrize(
    "instance",
    [
        {"data": b64(b"this is not a picture")},
        {"data": "%%% not base64 %%%"},
        {"data": "ééé not ASCII"},
        {"data": b64(picture(RED)[:300])},  # a JPEG cut short
        {"data": b64(picture(RED, "PNG")[:80])},
    ],
    ids=["not-a-picture", "not-base64", "not-ascii", "truncated-jpeg", "truncated-png"],
)
@pytest.mark.parametrize("model", ["cat-dog", "breeds"])  # a custom handler; a stock one
def test_data_that_is_not_a_picture_is_400(server, instance, model):
    response = httpx.post(f"{server.url}/v1/models/{model}:predict", json={"instances": [instance]})
    assert response.status_code == 400, response.text
    assert "cannot read the input" in response.json()["error"]


def picture_of_mode(mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (64, 48)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"data": b64(picture_of_mode("L"))}, "doesn't match the broadcast shape [3, 224, 224]"),
        ({"data": b64(picture_of_mode("RGBA"))}, "The size of tensor a (4) must match"),
        ({"b64": b64(picture(RED))}, "TypeError"),  # no "data": the handler reads None
        (7, "AttributeError"),
    ],
    ids=["grey", "rgba", "no-data-key", "a-number"],
)
def test_a_row_the_stock_image_classifier_cannot_prepare_is_400(server, instance, message):
    """TorchServe's image_classifier normalises three channels and reads a row's `data`: what its
    preprocess cannot take is the request's doing (TorchServe answers 503)."""
    response = httpx.post(f"{server.url}/v1/models/breeds:predict", json={"instances": [instance]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("model breeds cannot take the input: ") and message in error
    again = httpx.post(
        f"{server.url}/v1/models/breeds:predict", json={"instances": [{"data": b64(picture(RED))}]}
    )
    assert again.status_code == 200


def test_a_handler_that_fails_gives_500_with_its_message_and_the_server_stays_up(server):
    response = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": [{"data": "fail"}]})
    assert response.status_code == 500
    assert "asked to fail" in response.json()["error"]
    again = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": [{"data": "hello"}]})
    assert again.json()["predictions"][0]["word"] == "hello"


def test_a_torchscript_program_s_failure_is_its_error_without_the_interpreter_s_traceback(server):
    """base_handler runs a TorchScript program on the instances as they are; torch's message ends a
    traceback of the program's code, which the log keeps and the answer leaves out."""
    url = f"{server.url}/v1/models/scripted:predict"
    assert httpx.post(url, json={"instances": [[1.0, 2.0, 3.0, 4.0]]}).status_code == 200
    response = httpx.post(url, json={"instances": [[1.0, 2.0, 3.0]]})
    assert response.status_code == 500
    assert response.json()["error"] == (
        "the handler of model scripted failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(1x3 and 4x8)"
    )


def test_a_result_json_cannot_carry_is_500_naming_it_over_v1_and_v2(server):
    response = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": ["unsendable"]})
    assert response.status_code == 500
    assert "cannot be sent as JSON" in response.json()["error"]
    document = {"inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["unsendable"]}]}
    response = httpx.post(f"{server.url}/v2/models/probe/infer", json=document)
    assert response.status_code == 500
    assert response.json()["error"] == (
        "the handler's result for input 'word' cannot be sent as JSON text: Type is not JSON serializable: set"
    )


def test_nthread_sets_the_threads_of_the_stores_handlers(server):
    response = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": ["threads"]})
    assert response.json()["predictions"] == [{"threads": 3}]


def test_a_handler_out_of_memory_gives_torchserve_s_507(server):
    response = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": [{"data": "exhaust"}]})
    assert response.status_code == 507
    assert response.json() == {"error": "model probe: Out of resources"}
    assert httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": ["ok"]}).status_code == 200


def test_a_status_the_handler_sets_is_the_answer(server):
    response = httpx.post(f"{server.url}/v1/models/probe:predict", json={"instances": [{"data": "refuse"}]})
    assert response.status_code == 422
    assert "the probe refuses this row" in response.json()["error"]
    with pytest.raises(triton_grpc.InferenceServerException) as caught:
        tensor = triton_grpc.InferInput("word", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"refuse"], dtype=np.object_))
        triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}").infer("probe", [tensor])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_each_worker_is_a_handler_of_its_own_and_they_run_at_once(server):
    """Two calls that each wait for the other: only two workers can answer both as met."""
    import concurrent.futures

    def call():
        body = {"instances": [{"data": "meet"}]}
        return httpx.post(f"{server.url}/v1/models/probe:predict", json=body, timeout=30).json()[
            "predictions"
        ][0]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: call(), range(2)))
    assert [result["met"] for result in results] == [True, True]
    assert len({result["worker"] for result in results}) == 2


def test_batch_size_gathers_the_rows_of_concurrent_requests_into_one_handler_call(server):
    import concurrent.futures

    def call(word: str) -> dict:
        body = {"instances": [{"data": word}]}
        return httpx.post(f"{server.url}/v1/models/batched:predict", json=body, timeout=30).json()[
            "predictions"
        ][0]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, ["w", "x", "y", "z"]))
    assert [result["word"] for result in results] == ["w", "x", "y", "z"]
    assert [result["batch"] for result in results] == [4, 4, 4, 4]


def test_explain_runs_the_handler_s_explanations(server):
    response = httpx.post(
        f"{server.url}/v1/models/breeds:explain",
        json={"instances": [{"data": b64(picture(RED)), "target": 0}]},
    )
    assert response.status_code == 200, response.text
    (attributions,) = response.json()["explanations"]
    assert np.asarray(attributions).shape == (3, 224, 224)


def test_a_stock_handler_s_batch_answers_each_row_in_order(server):
    """TorchServe's image_classifier, run as a pipeline: a batch's answers follow its rows."""
    colours = [RED, BLUE, RED, BLUE, BLUE]
    alone = {}
    for colour in (RED, BLUE):
        body = {"instances": [{"data": b64(picture(colour))}]}
        (alone[colour],) = httpx.post(f"{server.url}/v1/models/breeds:predict", json=body).json()[
            "predictions"
        ]
    assert list(alone[RED])[0] != list(alone[BLUE])[0]  # the rows can be told apart
    body = {"instances": [{"data": b64(picture(colour))} for colour in colours]}
    response = httpx.post(f"{server.url}/v1/models/breeds:predict", json=body)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [list(answer)[0] for answer in answers] == [list(alone[colour])[0] for colour in colours]
    for answer, colour in zip(answers, colours, strict=True):
        assert answer.keys() == alone[colour].keys()
        assert all(abs(answer[label] - alone[colour][label]) < 1e-4 for label in answer)
