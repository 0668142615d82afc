"""End to end on `modelplane up`: the huggingface examples (a text classifier, a small chat model and a
reranker, as examples/build_models.py builds them) applied as written, and spoken to through the gateway: V1 for the classifier, the
official `openai` client for the chat model, streamed and not, and `/openai/v1/rerank`."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.e2e.platform_process import REPO_ROOT, running_platform

pytest.importorskip("transformers")

GENERATOR_HOST = "text-generator.default.localhost"
SERVICES = ("text-classifier", "text-generator", "reranker")


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-huggingface-home")
    example_models(home / "pvc" / "examples")
    with running_platform(home) as platform:
        for service in SERVICES:
            platform.cli("apply", "-f", str(REPO_ROOT / "examples" / f"{service}.yaml"))
        platform.wait_ready(*SERVICES)
        yield platform


@pytest.fixture
def client(platform):
    """The openai client, reaching the service through the gateway by its Host header."""
    http = httpx.Client(headers={"host": GENERATOR_HOST}, timeout=120)
    with openai.OpenAI(
        base_url=f"{platform.gateway_url}/openai/v1", api_key="unused", http_client=http, max_retries=0
    ) as client:
        yield client


def test_the_examples_run_on_the_built_in_huggingface_runtime(platform):
    for service in SERVICES:
        status = json.loads(platform.cli("get", "isvc", service, "-o", "json").stdout)["status"]
        assert status["clusterServingRuntimeName"] == "kserve-huggingfaceserver"


def test_the_classifier_answers_probabilities_through_the_gateway(platform):
    body = {"instances": ["what a lovely day", "the food was cold and the staff were rude"]}
    response = platform.request(
        "POST", "text-classifier.default.localhost", "/v1/models/text-classifier:predict", json=body
    )
    assert response.status_code == 200, response.text
    happy, sad = response.json()["predictions"]
    assert happy["1"] > 0.9 and sad["0"] > 0.9


def test_a_chat_through_the_gateway_with_the_openai_client(client):
    assert [model.id for model in client.models.list()] == ["text-generator"]
    chat = client.chat.completions.create(
        model="text-generator", messages=[{"role": "user", "content": "hello"}], temperature=0
    )
    assert chat.choices[0].message.content == "hello world, this is a very small language model."
    assert chat.choices[0].finish_reason == "stop" and chat.usage.completion_tokens > 5


def test_a_streamed_chat_through_the_gateway(client):
    stream = client.chat.completions.create(
        model="text-generator",
        messages=[{"role": "user", "content": "tell me about the cat"}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "the cat sat on the mat and looked at the moon."
    assert len(chunks) > 5 and chunks[-1].usage.completion_tokens > 5


def test_the_reranker_orders_documents_through_the_gateway(platform):
    body = {
        "model": "reranker",
        "query": "tell me about the cat",
        "documents": [
            "the dog ran in the park with a red ball.",
            "the cat sat on the mat and looked at the moon.",
        ],
    }
    response = platform.request("POST", "reranker.default.localhost", "/openai/v1/rerank", json=body)
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["index"] == 1 and first["relevance_score"] > 0.9 > 0.1 > second["relevance_score"]
