"""The predictive tasks of the huggingface runtime (sequence_classification, token_classification,
fill_mask, text_embedding) over V1, V2 REST (tritonclient.http) and V2 gRPC (tritonclient.grpc), in
KServe's formats, against a real `modelplane serve` of tiny BERT models built here; their answers are
checked against the same models run with transformers in the test. Also: what the runtime's flags
do, and a model served by `--model_id` from a local Hugging Face cache.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time

import httpx
import numpy as np
import openai
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferInput, InferRequest
from modelplane.runtimes.huggingface.model import HuggingFaceModel
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.runtimes.huggingface.prompts import most_characters_per_token
from modelplane.runtimes.huggingface.tasks import TaskError, infer_task
from modelplane.server import long_prompts
from tests.server.processes import REPO_ROOT, serve
from tests.server.recording_tokenizer import record_tokenizer

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model, write_roberta_classifier  # noqa: E402

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

OFFLINE = {"HF_HUB_OFFLINE": "1"}
TEXTS = ["The cat sat on the MAT", "a dog ran in the park with a red ball"]
MASKED = ["the cat [MASK] on the mat", "a [MASK] ran in the [MASK]"]


@pytest.mark.parametrize(
    ("architecture", "task"),
    [
        ("BertForSequenceClassification", "sequence_classification"),
        ("DistilBertForTokenClassification", "token_classification"),
        ("RobertaForMaskedLM", "fill_mask"),
        ("LlamaForCausalLM", "text_generation"),
        ("GPT2LMHeadModel", "text_generation"),
        ("T5ForConditionalGeneration", "text2text_generation"),
        ("MarianMTModel", "text2text_generation"),
    ],
)
def test_the_task_is_inferred_from_the_first_architecture(architecture, task):
    assert infer_task([architecture, "Other"]).value == task


@pytest.mark.parametrize(
    ("architectures", "message"),
    [
        (["TapasForQuestionAnswering"], "table_question_answering model, which is not supported"),
        (["BertForQuestionAnswering"], "question_answering model, which is not supported"),
        (["PatchTSTForPrediction"], "time series models are not served"),
        (["BertModel"], "the task cannot be inferred from BertModel: set --task"),
        ([], "names no architectures"),
    ],
)
def test_a_task_that_cannot_be_inferred_or_served_says_why(architectures, message):
    with pytest.raises(TaskError, match=message):
        infer_task(architectures)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-predictive")
    write_model(root / "classifier", "sequence_classification")
    write_model(root / "tagger", "token_classification")
    write_model(root / "masks", "fill_mask")
    write_model(root / "embedder", "text_embedding")
    return root


@pytest.fixture(scope="module")
def labels_server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-classifiers")
    for name in ("classifier", "tagger", "masks"):
        (root / name).symlink_to(models / name)
    process = serve("--model-dir", str(root), env=OFFLINE)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def embedding_server(models):
    process = serve(
        "--model-dir",
        str(models / "embedder"),
        "--model-name",
        "embedder",
        "--task",
        "text_embedding",
        "--max_num_seqs",  # the flags of text generation: a warning for an embedder
        "4",
        "--max_logprobs",
        "5",
        env=OFFLINE,
    )
    yield process
    process.stop()


def loaded(models, name: str, auto: str):
    folder = models / name
    return transformers.AutoTokenizer.from_pretrained(folder), getattr(transformers, auto).from_pretrained(
        folder
    )


def reference_logits(models, name: str, auto: str, texts: list[str]):
    tokenizer, model = loaded(models, name, auto)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        output = model(**batch)
    return batch, output


def v1(server, name: str, texts) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{name}:predict", json={"instances": texts}, timeout=60)


def texts_input(module, texts: list[str]):
    infer_input = module.InferInput("text", [len(texts)], "BYTES")
    infer_input.set_data_from_numpy(np.array(texts, dtype=object))
    return infer_input


def v2_rest(server, name: str, texts: list[str]):
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    return client.infer(name, [texts_input(triton_http, texts)])


def v2_grpc(server, name: str, texts: list[str]):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    return client.infer(name, [texts_input(triton_grpc, texts)])


def test_sequence_classification_answers_label_ids_on_v1_and_v2(labels_server, models):
    _batch, output = reference_logits(models, "classifier", "AutoModelForSequenceClassification", TEXTS)
    expected = output.logits.argmax(-1).tolist()
    assert v1(labels_server, "classifier", TEXTS).json() == {"predictions": expected}
    for answer in (v2_rest(labels_server, "classifier", TEXTS), v2_grpc(labels_server, "classifier", TEXTS)):
        labels = answer.as_numpy("output-0")
        assert labels.dtype == np.int64 and labels.tolist() == expected


def test_token_classification_answers_a_label_per_token(labels_server, models):
    batch, output = reference_logits(models, "tagger", "AutoModelForTokenClassification", TEXTS)
    expected = output.logits.argmax(-1)[:, None, :].tolist()  # KServe's [[labels]] per text
    assert v1(labels_server, "tagger", TEXTS).json() == {"predictions": expected}
    labels = v2_grpc(labels_server, "tagger", TEXTS).as_numpy("output-0")
    assert labels.shape == (2, 1, batch["input_ids"].shape[1]) and labels.tolist() == expected


def test_fill_mask_answers_the_likeliest_text_at_the_masks(labels_server, models):
    tokenizer, _model = loaded(models, "masks", "AutoModelForMaskedLM")
    batch, output = reference_logits(models, "masks", "AutoModelForMaskedLM", MASKED)
    expected = []
    for row, ids in enumerate(batch["input_ids"]):
        places = (ids == tokenizer.mask_token_id).nonzero().flatten()
        expected.append(tokenizer.decode(output.logits[row, places].argmax(-1)))
    assert v1(labels_server, "masks", MASKED).json() == {"predictions": expected}
    texts = v2_rest(labels_server, "masks", MASKED).as_numpy("output-0")
    assert [text.decode() for text in texts] == expected


def test_a_text_without_a_mask_is_a_400(labels_server):
    response = v1(labels_server, "masks", ["the cat [MASK]", "no mask here"])
    assert response.status_code == 400
    assert response.json() == {"error": "text 1 has no [MASK] token to fill"}


def test_a_mask_past_the_context_is_a_400_that_says_so(labels_server):
    response = v1(labels_server, "masks", ["the cat [MASK]", "the cat " * 100 + "[MASK]", "no mask"])
    assert response.status_code == 400
    assert response.json() == {
        "error": "text 1 has no [MASK] token to fill in its first 128 tokens "
        "(the model's context; it is truncated there)"
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"instances": [1, 2]}, '"instances" must be a list of texts'),
        ({"instances": []}, "the request holds no texts"),
        ({"rows": ["a"]}, 'the request has no "instances"'),
    ],
)
def test_v1_requests_that_are_not_texts_are_400(labels_server, body, error):
    response = httpx.post(f"{labels_server.url}/v1/models/classifier:predict", json=body)
    assert response.status_code == 400 and response.json() == {"error": error}


def test_a_v2_input_that_is_not_texts_is_400(labels_server):
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    response = httpx.post(f"{labels_server.url}/v2/models/classifier/infer", json=body)
    assert response.status_code == 400
    assert "must be a BYTES tensor of texts" in response.json()["error"]


def test_a_v2_text_that_is_not_utf8_is_a_client_error(labels_server):
    texts = np.array([b"\xff the cat"], dtype=object)
    rest, grpc = (module.InferInput("text", [1], "BYTES") for module in (triton_http, triton_grpc))
    rest.set_data_from_numpy(texts)
    grpc.set_data_from_numpy(texts)
    with pytest.raises(InferenceServerException, match=r"\[400\] input 'text' must hold UTF-8 texts"):
        triton_http.InferenceServerClient(labels_server.url.removeprefix("http://")).infer(
            "classifier", [rest]
        )
    with pytest.raises(InferenceServerException, match="INVALID_ARGUMENT.*must hold UTF-8 texts"):
        triton_grpc.InferenceServerClient(f"127.0.0.1:{labels_server.grpc_port}").infer("classifier", [grpc])


def test_text_embedding_answers_normalised_mean_vectors_and_the_openai_endpoint(embedding_server, models):
    batch, output = reference_logits(models, "embedder", "AutoModel", TEXTS)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.normalize(pooled, dim=1).numpy()
    predictions = np.array(v1(embedding_server, "embedder", TEXTS).json()["predictions"])
    np.testing.assert_allclose(predictions, expected, atol=1e-5)
    vectors = v2_grpc(embedding_server, "embedder", TEXTS).as_numpy("output-0")
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    with openai.OpenAI(
        base_url=f"{embedding_server.url}/openai/v1", api_key="unused", max_retries=0
    ) as client:
        result = client.embeddings.create(model="embedder", input=TEXTS)
    np.testing.assert_allclose([item.embedding for item in result.data], expected, atol=1e-5)
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / "embedder")
    assert result.usage.prompt_tokens == sum(len(tokenizer(text).input_ids) for text in TEXTS)


def test_the_flags_of_text_generation_are_a_warning_for_an_embedder(embedding_server):
    log = embedding_server.log()
    for flag in ("--max_num_seqs", "--max_logprobs"):
        assert f"{flag} applies to text generation; model embedder is text_embedding" in log


def test_more_texts_than_the_model_runs_at_once_are_each_answered_as_in_one_batch(models, embedding_server):
    texts = [f"{TEXTS[i % 2]} {'again ' * (i % 5)}{i}" for i in range(70)]  # three slices, lengths mixed
    batch, output = reference_logits(models, "embedder", "AutoModel", texts)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.normalize(pooled, dim=1).numpy()
    predictions = np.array(v1(embedding_server, "embedder", texts).json()["predictions"])
    np.testing.assert_allclose(predictions, expected, atol=1e-5)
    url = f"{embedding_server.url}/openai/v1/embeddings"
    data = httpx.post(url, json={"model": "embedder", "input": texts}).json()["data"]
    np.testing.assert_allclose([item["embedding"] for item in data], expected, atol=1e-5)


@pytest.mark.parametrize("ids", [[2, 100000, 3], [2, 1 << 63], [2, (1 << 64) - 1]])
def test_embedding_token_ids_outside_the_vocabulary_are_refused(embedding_server, ids):
    response = httpx.post(
        f"{embedding_server.url}/openai/v1/embeddings", json={"model": "embedder", "input": ids}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input" and "vocabulary" in error["message"]


def test_an_embedding_input_far_over_the_context_is_refused_from_its_first_characters(embedding_server):
    url = f"{embedding_server.url}/openai/v1/embeddings"
    response = httpx.post(url, json={"model": "embedder", "input": "what a lovely day " * 50_000})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("input", "context_length_exceeded")
    assert "characters alone are" in error["message"]
    # Long, but of few tokens: BERT's tokenizer drops whitespace.
    spaced = "what a" + " " * 100_000 + "lovely day"
    assert httpx.post(url, json={"model": "embedder", "input": spaced}).status_code == 200


def test_return_probabilities_answers_kserve_s_dicts_on_v1_and_tensors_on_v2(models, tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    for name in ("classifier", "tagger", "masks"):
        (root / name).symlink_to(models / name)
    process = serve("--model-dir", str(root), "--return_probabilities", env=OFFLINE)
    try:
        _batch, output = reference_logits(models, "classifier", "AutoModelForSequenceClassification", TEXTS)
        probabilities = output.logits.softmax(-1)
        expected = [
            {str(label): round(value, 4) for label, value in enumerate(row)} for row in probabilities.tolist()
        ]
        assert v1(process, "classifier", TEXTS).json() == {"predictions": expected}
        tensor = v2_rest(process, "classifier", TEXTS).as_numpy("output-0")
        np.testing.assert_allclose(tensor, probabilities.numpy(), atol=1e-6)

        batch, output = reference_logits(models, "tagger", "AutoModelForTokenClassification", TEXTS)
        (first, _second) = v1(process, "tagger", TEXTS).json()["predictions"]
        assert len(first) == batch["input_ids"].shape[1] and set(first[0]) == {"0", "1", "2"}
        assert first[1]["2"] == round(output.logits.softmax(-1)[0, 1, 2].item(), 4)

        (masked,) = v1(process, "masks", ["the cat [MASK] on the mat"]).json()["predictions"]
        (at_the_mask,) = masked  # one mask: a probability (as text) for every token of the vocabulary
        assert len(at_the_mask) == len(transformers.AutoTokenizer.from_pretrained(models / "masks"))
        assert sum(float(next(iter(entry.values()))) for entry in at_the_mask) == pytest.approx(1, abs=0.01)
    finally:
        process.stop()


def test_raw_logits_and_offsets_for_token_classification(models):
    process = serve(
        "--model-dir",
        str(models / "tagger"),
        "--model-name",
        "tagger",
        "--return_raw_logits",
        "--return_offsets_mapping",
        env=OFFLINE,
    )
    try:
        batch, output = reference_logits(models, "tagger", "AutoModelForTokenClassification", TEXTS)
        answer = v1(process, "tagger", TEXTS).json()
        first_token = answer["predictions"][0][1]
        assert first_token == pytest.approx({str(k): v for k, v in enumerate(output.logits[0, 1].tolist())})
        (offsets,) = answer["outputs"]
        assert offsets["name"] == "offset_mapping" and offsets["shape"] == [2, batch["input_ids"].shape[1], 2]
        pairs = np.array(offsets["data"]).reshape(offsets["shape"])
        start, end = pairs[0, 1]
        assert TEXTS[0][start:end] == "The"
        grpc_answer = v2_grpc(process, "tagger", TEXTS)
        np.testing.assert_allclose(grpc_answer.as_numpy("output-0"), output.logits.numpy(), atol=1e-5)
        assert grpc_answer.as_numpy("offset_mapping").tolist() == pairs.tolist()
    finally:
        process.stop()


def test_disable_lower_case_reaches_the_tokenizer(models):
    """The tokenizer lower-cases by default (as KServe asks it to); with --disable_lower_case the
    upper-case words of TEXTS[0] are unknown to its lower-case vocabulary."""
    process = serve(
        "--model-dir", str(models / "masks"), "--model-name", "masks", "--disable_lower_case", env=OFFLINE
    )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(models / "masks", do_lower_case=False)
        model = transformers.AutoModelForMaskedLM.from_pretrained(models / "masks")
        batch = tokenizer(["THE CAT [MASK] on the mat"], return_tensors="pt")
        assert tokenizer.unk_token_id in batch["input_ids"][0].tolist()
        with torch.no_grad():
            logits = model(**batch).logits
        place = batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)
        expected = tokenizer.decode([logits[0, place].argmax().item()])
        assert v1(process, "masks", ["THE CAT [MASK] on the mat"]).json() == {"predictions": [expected]}
    finally:
        process.stop()


def not_ready_reason(server, name: str) -> str:
    """The load error a predict call reports, once the model has failed to load."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = v1(server, name, TEXTS)
        if response.status_code == 503 and "Failed to load" in response.text:
            return response.json()["error"]
        time.sleep(0.1)
    raise AssertionError(f"{name} did not fail to load:\n{server.log()}")


def test_a_model_whose_task_cannot_be_inferred_says_so(models):
    process = serve(
        "--model-dir", str(models / "embedder"), "--model-name", "bare", env=OFFLINE, ready_status=503
    )
    try:
        assert "the task cannot be inferred from BertModel: set --task" in not_ready_reason(process, "bare")
        # The OpenAI routes say the same of it: it is there, not ready (not "does not exist")
        for answer in (
            httpx.get(f"{process.url}/openai/v1/models/bare"),
            httpx.post(f"{process.url}/openai/v1/completions", json={"model": "bare", "prompt": "hi"}),
        ):
            assert answer.status_code == 503
            assert "set --task" in answer.json()["error"]["message"]
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ("input_ids", "mask"),
            "mask not among the tokenizer's outputs, input_ids, token_type_ids, attention_mask",
        ),
        (
            ("input_ids", "token_type_ids"),
            "token_type_ids not among the tokenizer's outputs, input_ids, attention_mask "
            "(it makes token_type_ids with --return_token_type_ids)",
        ),
    ],
)
def test_tensor_input_names_the_tokenizer_does_not_make_fail_the_load(models, names, message):
    with pytest.raises(ValueError, match=re.escape(f"--tensor_input_names: {message}")):
        in_process(models, "classifier", tensor_input_names=names, return_token_type_ids="mask" in names)


def test_a_model_id_is_served_from_the_local_hugging_face_cache(models, tmp_path):
    cache = tmp_path / "hub"
    snapshot = cache / "models--tiny--classifier" / "snapshots" / "0123abcd"
    snapshot.parent.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abcd")
    snapshot.symlink_to(models / "classifier")
    env = {**OFFLINE, "HF_HUB_CACHE": str(cache)}
    process = serve("--model_id", "tiny/classifier", "--model-name", "cached", "--dtype", "bfloat16", env=env)
    try:
        assert v1(process, "cached", TEXTS).status_code == 200
        assert "task sequence_classification, torch.bfloat16 on cpu" in process.log()
    finally:
        process.stop()
    # --model_id wins over a --model-dir (an empty /mnt/models on a cluster), as in KServe.
    missing = serve(
        "--model_id",
        "tiny/absent",
        "--model-dir",
        str(tmp_path / "mnt-models"),
        "--model-name",
        "absent",
        env=env,
        ready_status=503,
    )
    try:
        reason = not_ready_reason(missing, "absent")
        assert "tiny/absent is not in the local Hugging Face cache" in reason and "hf://tiny/absent" in reason
    finally:
        missing.stop()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--return_probabilities", "--return_raw_logits"], "--return_probabilities and --return_raw_logits"),
        (["--backend", "vllm"], "--backend vllm: vLLM is not installed here"),
        (["--tensor_input_names", "input_ids"], "--tensor_input_names names the tensors sent to a predictor"),
        (["--max_log_len", "100"], "modelplane does not log prompts"),
        (["--task", "bogus"], "--task: unknown task 'bogus'; tasks: sequence_classification,"),
        (["--task", "question_answering"], "--task: task question_answering is not supported"),
        (["--gpu_memory_utilization", "1.5"], "--gpu_memory_utilization is a share"),
        (["--max_logprobs", "-2"], "--max_logprobs must be -1 (no cap) or at least 0, got -2"),
        (
            ["--runtime", "sklearn", "--task", "fill_mask"],
            "--task: flags of the huggingface runtime, not of sklearn",
        ),
    ],
)
def test_flags_that_cannot_be_honoured_stop_serve_with_one_line(models, flags, message):
    result = subprocess.run(
        [sys.executable, "-m", "modelplane", "serve", "--model-dir", str(models / "classifier"), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **OFFLINE},
    )
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("names", [["--tensor_input_names", "input_ids,attention_mask"], []])
def test_with_a_predictor_host_the_tokens_go_to_the_predictor(models, names):
    """KServe's split: the runtime tokenizes and reads the answer, a predictor elsewhere runs the model
    (here a modelplane serve of tests/server/huggingface_predictor.py, which takes only input_ids and
    attention_mask: what --tensor_input_names names, and what a BERT tokenizer gives without
    --return_token_type_ids, as in KServe)."""
    predictor = serve(
        "--model-class",
        str(REPO_ROOT / "tests" / "server" / "huggingface_predictor.py") + ":LogitsPredictor",
        "--model-dir",
        str(models / "classifier"),
        "--model-name",
        "classifier",
        grpc=False,
        env=OFFLINE,
    )
    front = serve(
        "--model-dir",
        str(models / "classifier"),
        "--model-name",
        "classifier",
        "--predictor-host",
        f"127.0.0.1:{predictor.http_port}",
        *names,
        grpc=False,
        env=OFFLINE,
    )
    try:
        _batch, output = reference_logits(models, "classifier", "AutoModelForSequenceClassification", TEXTS)
        assert v1(front, "classifier", TEXTS).json() == {"predictions": output.logits.argmax(-1).tolist()}
    finally:
        front.stop()
        predictor.stop()


PHRASE = "the cat sat on the mat and looked at the moon. "
OVER = PHRASE * 40  # ~500 tokens: over the context (128), short enough to be tokenized whole
FAR_OVER = PHRASE * 50_000  # 2.35 MB


def in_process(models, name: str, **settings):
    model = HuggingFaceModel(name, models / name, HuggingFaceSettings(**settings))
    model.load()
    return model


def predict(model, text: str, protocol: str):
    return predict_texts(model, [text], protocol)


def predict_texts(model, texts: list[str], protocol: str):
    if protocol == "v1":
        return model.predict({"instances": texts})
    data = np.array([text.encode() for text in texts], dtype=object)
    return model.predict(InferRequest(model.name, [InferInput("text", [len(texts)], "BYTES", data)]))


@pytest.mark.parametrize(
    ("name", "settings", "prefix"),
    [
        ("classifier", {}, ""),
        ("tagger", {"return_offsets_mapping": True}, ""),
        ("masks", {}, "[MASK] "),
        ("embedder", {"task": "text_embedding"}, ""),
    ],
)
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_text_far_over_the_context_is_truncated_as_before_without_being_tokenized_whole(
    models, name, settings, prefix, protocol
):
    """V1 and V2 truncate a text to the context, as KServe does: a text of megabytes gets the answer of
    any text with the same first 128 tokens, and the tokenizer is only ever given a few thousand of
    its characters at once."""
    model = in_process(models, name, **settings)
    encoder = model._encoder
    piece = long_prompts.piece_length(most_characters_per_token(encoder.tokenizer), encoder.max_model_len)
    over, far_over = prefix + OVER, prefix + FAR_OVER
    assert len(over) <= piece  # tokenized whole: the answer of a text over the context, as it always was
    assert len(encoder.tokenizer(over)["input_ids"]) > 2 * encoder.max_model_len
    recording = record_tokenizer(model)
    expected = asyncio.run(predict(model, over, protocol))
    recording.longest = 0
    answer = asyncio.run(predict(model, far_over, protocol))
    assert recording.longest <= piece
    if protocol == "v1":
        assert answer == expected
    else:
        assert [output.name for output in answer.outputs] == [output.name for output in expected.outputs]
        for got, want in zip(answer.outputs, expected.outputs, strict=True):
            np.testing.assert_array_equal(got.as_numpy(), want.as_numpy())


def test_a_v1_text_of_megabytes_gets_the_answer_of_its_first_tokens(labels_server):
    """Over the wire, on the server every other test here uses."""
    assert v1(labels_server, "tagger", [FAR_OVER]).json() == v1(labels_server, "tagger", [OVER]).json()


@pytest.mark.parametrize("name", ["classifier", "tagger", "masks", "embedder"])
def test_a_text_of_no_tokens_is_a_400_naming_it(models, name):
    """With --disable_special_tokens, an empty or blank text is no tokens at all: alone, the model
    cannot run on it; in a batch, its answer would be read from padding alone."""
    task = {"task": "text_embedding"} if name == "embedder" else {}
    model = in_process(models, name, special_tokens=False, **task)
    for texts, index in (([""], 0), (["the cat [MASK] on the mat", " \n"], 1)):
        for protocol in ("v1", "v2"):
            with pytest.raises(
                InvalidInput, match=rf"^text {index} has no tokens \(--disable_special_tokens"
            ):
                asyncio.run(predict_texts(model, texts, protocol))


def test_an_embedding_input_of_no_tokens_is_a_400(models):
    process = serve(
        "--model-dir",
        str(models / "embedder"),
        "--model-name",
        "embedder",
        "--task",
        "text_embedding",
        "--disable_special_tokens",
        grpc=False,
        env=OFFLINE,
    )
    try:
        url = f"{process.url}/openai/v1/embeddings"
        for given, ending in (
            ("", "is an empty string, which has nothing to embed"),
            (["the cat", " "], "has no tokens"),
        ):
            response = httpx.post(url, json={"model": "embedder", "input": given})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "input" and error["message"].endswith(ending), error
        assert httpx.post(url, json={"model": "embedder", "input": "the cat"}).status_code == 200
    finally:
        process.stop()


def test_a_roberta_reads_as_many_tokens_as_its_tokenizer_says_not_its_config_s_positions(tmp_path):
    """RoBERTa's config counts positions it cannot read (514 for 512): truncated to the config's count,
    a long text was a 500 from the model."""
    model = HuggingFaceModel("roberta", write_roberta_classifier(tmp_path / "roberta"), HuggingFaceSettings())
    model.load()
    for protocol in ("v1", "v2"):
        asyncio.run(predict(model, PHRASE * 20, protocol))
    assert model._encoder.max_model_len == 128


@pytest.mark.parametrize("max_model_len", [1, 2])
def test_a_context_with_no_room_beside_the_special_tokens_fails_the_load(models, max_model_len):
    """BERT's tokenizer adds [CLS] and [SEP]: within 2 tokens no text fits, and within 1 the tokenizer
    does not truncate at all (it says so in its log), so a long text reached the model whole."""
    with pytest.raises(ValueError, match=rf"--max_model_len {max_model_len} leaves no room for text"):
        in_process(models, "classifier", max_model_len=max_model_len)
    in_process(models, "classifier", max_model_len=2, special_tokens=False)
