"""`/openai/v1/rerank` of the huggingface runtime: a cross-encoder (a sequence_classification model with
one label) built and trained here, served by a real `modelplane serve`, its answers checked against the
same model run with transformers in the test."""

from __future__ import annotations

import asyncio
import sys

import httpx
import orjson
import pytest

from modelplane.runtimes.huggingface.model import HuggingFaceModel
from modelplane.runtimes.huggingface.prompts import most_characters_per_token
from modelplane.server import long_prompts
from modelplane.server.openai_routes import OpenAIEndpoints
from modelplane.server.repository import ModelRepository
from tests.server.processes import REPO_ROOT, serve
from tests.server.recording_tokenizer import record_tokenizer

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import CHATS, STORY, write_model  # noqa: E402

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

QUERY, ANSWER = CHATS[2]  # "tell me about the cat", and the sentence about the cat


@pytest.fixture(scope="module")
def models(tmp_path_factory, example_models):
    root = tmp_path_factory.mktemp("hf-rerank")
    (example_models(tmp_path_factory.mktemp("examples")) / "reranker").rename(root / "reranker")
    write_model(root / "classifier", "sequence_classification")  # two labels: not a cross-encoder
    return root


@pytest.fixture(scope="module")
def server(models):
    process = serve("--model-dir", str(models), grpc=False, env={"HF_HUB_OFFLINE": "1"})
    yield process
    process.stop()


def rerank(server, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/openai/v1/rerank", json={"model": "reranker", **body}, timeout=60)


def reference(models, query: str, documents: list[str]) -> tuple[list[float], int]:
    folder = models / "reranker"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer([query] * len(documents), documents, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        scores = torch.sigmoid(model(**batch).logits[:, 0])
    return scores.tolist(), int(batch["attention_mask"].sum())


def test_documents_come_back_most_relevant_first_with_the_model_s_scores(server, models):
    answer = rerank(server, query=QUERY, documents=STORY)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    scores, tokens = reference(models, QUERY, STORY)
    order = sorted(range(len(STORY)), key=lambda index: -scores[index])
    assert [result["index"] for result in document["results"]] == order
    assert STORY[order[0]] == ANSWER  # what the model was trained to find
    for result in document["results"]:
        assert result["relevance_score"] == pytest.approx(scores[result["index"]], abs=1e-5)
        assert result["document"] == {"text": STORY[result["index"]]}
    assert document["model"] == "reranker" and document["id"].startswith("rerank-")
    assert document["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_top_n_return_documents_and_text_objects(server):
    objects = [{"text": text} for text in STORY]
    document = rerank(server, query=QUERY, documents=objects, top_n=2, return_documents=False).json()
    assert len(document["results"]) == 2
    assert STORY[document["results"][0]["index"]] == ANSWER
    assert all(set(result) == {"index", "relevance_score"} for result in document["results"])
    every = rerank(server, query=QUERY, documents=STORY, top_n=0).json()  # 0: all of them, as vLLM reads it
    assert len(every["results"]) == len(STORY)


def test_the_reranker_is_listed_and_still_answers_v1(server):
    listed = httpx.get(f"{server.url}/openai/v1/models").json()
    assert [entry["id"] for entry in listed["data"]] == ["reranker"]
    predicted = httpx.post(f"{server.url}/v1/models/reranker:predict", json={"instances": [QUERY]})
    assert predicted.json() == {"predictions": [0]}  # one label


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"documents": STORY}, 400, "query", "'query' must be a non-empty string"),
        ({"query": QUERY, "documents": []}, 400, "documents", "non-empty list"),
        ({"query": QUERY, "documents": [1, 2]}, 400, "documents", "non-empty list"),
        ({"query": QUERY, "documents": STORY, "top_n": -1}, 400, "top_n", "top_n"),
        ({"query": QUERY, "documents": STORY, "rank_fields": ["a"]}, 400, None, "rank_fields"),
        # OpenAI's accounting fields, accepted (and said to be ignored) elsewhere, are no rerank's.
        (
            {"query": QUERY, "documents": STORY, "user": "someone"},
            400,
            "user",
            "Unrecognized request argument",
        ),
        (
            {"query": QUERY, "documents": [{"type": "image_url", "text": "x"}]},
            400,
            "documents",
            "non-empty list",
        ),
        ({"query": QUERY, "documents": STORY, "model": "classifier"}, 400, "model", "does not rerank"),
        ({"query": QUERY, "documents": STORY, "model": "nope"}, 404, "model", "does not exist"),
    ],
)
def test_bad_requests_get_openai_errors(server, body, status, param, words):
    answer = rerank(server, **body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error["message"]
    if param is not None:
        assert error["param"] == param


OVER = " ".join([ANSWER] * 40)  # ~500 tokens: over the context (128), short enough to be tokenized whole
FAR_OVER = " ".join([ANSWER] * 50_000)  # 2.35 MB
OTHERS = [text for text in STORY if text != ANSWER]


def test_a_document_of_megabytes_is_scored_on_its_first_tokens(server, models):
    """Over the wire: truncated as a text that fits is, as sentence-transformers truncates pairs."""
    answer = rerank(server, query=QUERY, documents=[FAR_OVER, *OTHERS], return_documents=False)
    assert answer.status_code == 200, answer.text
    scores, tokens = reference(models, QUERY, [OVER, *OTHERS])
    assert answer.json()["usage"]["prompt_tokens"] == tokens
    for result in answer.json()["results"]:
        assert result["relevance_score"] == pytest.approx(scores[result["index"]], abs=1e-5)


@pytest.mark.parametrize("long", ["query", "document"])
def test_a_query_or_document_far_over_the_context_is_never_tokenized_whole(models, long):
    model = HuggingFaceModel("reranker", models / "reranker")
    model.load()
    tokenizer = model._encoder.tokenizer
    piece = long_prompts.piece_length(most_characters_per_token(tokenizer), model._encoder.max_model_len)
    assert len(OVER) <= piece  # tokenized whole: the answer of a text over the context, as it always was
    repository = ModelRepository()
    repository.add(model)
    endpoints = OpenAIEndpoints(repository)
    recording = record_tokenizer(model)

    def answer(text: str) -> dict:
        query, documents = (text, STORY) if long == "query" else (QUERY, [text, *OTHERS])
        body = {"model": "reranker", "query": query, "documents": documents, "return_documents": False}
        answered = asyncio.run(endpoints.handle("POST", "/openai/v1/rerank", orjson.dumps(body)))
        assert answered.status == 200, answered.document
        return {key: value for key, value in answered.document.items() if key != "id"}

    expected = answer(OVER)
    recording.longest = 0
    assert answer(FAR_OVER) == expected
    assert recording.longest <= piece
