"""Text generation with the huggingface runtime: a real `modelplane serve` of tiny transformers models
(built here, nothing downloaded), spoken to with the official `openai` client and httpx, its answers
checked against transformers' own `generate`.

`chat` is a small Llama trained on a few sentences (so its greedy answers are known), `chat-tuned`
the same model whose generation_config.json recommends sampling defaults, `gpt2` and `t5` keep random
weights; `endless` is a random Llama that never chooses its end-of-sequence token
greedily, for generations that run as long as they are allowed to.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time

import httpx
import openai
import pytest

from tests.server.processes import REPO_ROOT, serve

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model  # noqa: E402

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def models(tmp_path_factory, example_models):
    root = tmp_path_factory.mktemp("hf-generation")
    (example_models(tmp_path_factory.mktemp("examples")) / "text-generator").rename(root / "chat")
    shutil.copytree(root / "chat", root / "chat-tuned")
    config = root / "chat-tuned" / "generation_config.json"
    # A model creator's recommended sampling, as vLLM reads it: top_k 1 makes any temperature greedy.
    config.write_text(json.dumps({**json.loads(config.read_text()), "top_k": 1, "max_new_tokens": 4}))
    write_model(root / "gpt2", "gpt2")
    write_model(root / "t5", "t5")
    return root


@pytest.fixture(scope="module")
def server(models):
    # Where vLLM is installed, `auto` tries it first for chat and gpt2 (their heads are too narrow for
    # its CPU kernels), and they fall back to the huggingface engine: slower to start.
    process = serve("--model-dir", str(models), grpc=False, env=OFFLINE, ready_timeout=600)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def endless_server(tmp_path_factory):
    """A random Llama whose end-of-sequence token never wins greedily, serving two sequences at once."""
    folder = write_model(tmp_path_factory.mktemp("hf-endless") / "endless", "llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.lm_head.weight[model.config.eos_token_id] = 0  # its logit is 0, and some other's is more
    model.save_pretrained(folder)
    process = serve(
        "--model-dir",
        str(folder),
        "--model-name",
        "endless",
        "--max_num_seqs",
        "2",
        "--max_logprobs",
        "-1",
        "--enforce_eager",
        grpc=False,
        env=OFFLINE,
        ready_timeout=600,  # as above
    )
    process.vocab_size = model.config.vocab_size
    yield process
    process.stop()


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        yield client


def reference(models, name: str, prompt: str, max_new_tokens: int) -> str:
    """What transformers' own greedy `generate` continues `prompt` with."""
    folder = models / name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    auto = transformers.AutoModelForSeq2SeqLM if name == "t5" else transformers.AutoModelForCausalLM
    model = auto.from_pretrained(folder)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    output = model.generate(
        ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    generated = output[0] if name == "t5" else output[0, ids.shape[1] :]
    return tokenizer.decode(generated, skip_special_tokens=True)


def metric(server, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_the_generative_models_are_listed(client):
    assert sorted(model.id for model in client.models.list()) == ["chat", "chat-tuned", "gpt2", "t5"]


def test_the_model_s_generation_config_gives_the_sampling_defaults(client):
    """As vLLM (KServe's engine for generation) reads generation_config.json: its temperature, top_p,
    top_k, min_p and repetition_penalty stand for those a request leaves out, and its max_new_tokens
    for a chat's max_tokens; what a request sets wins."""
    greedy = client.completions.create(model="chat", prompt="the cat", max_tokens=12, temperature=0)

    def sampled(model: str, seed: int, **extra) -> str:
        completion = client.completions.create(
            model=model, prompt="the cat", max_tokens=12, temperature=2.0, seed=seed, **extra
        )
        return completion.choices[0].text

    assert any(sampled("chat", seed) != greedy.choices[0].text for seed in range(4))
    assert all(sampled("chat-tuned", seed) == greedy.choices[0].text for seed in range(4))
    assert sampled("chat-tuned", 1, extra_body={"top_k": 0}) == sampled("chat", 1)

    hello = [{"role": "user", "content": "hello"}]
    chat = client.chat.completions.create(model="chat-tuned", messages=hello)
    assert (chat.choices[0].finish_reason, chat.usage.completion_tokens) == ("length", 4)
    longer = client.chat.completions.create(model="chat-tuned", messages=hello, max_tokens=6)
    assert longer.usage.completion_tokens == 6


def test_a_greedy_completion_is_transformers_own_with_usage_that_counts_tokens(client, models):
    completion = client.completions.create(
        model="chat", prompt="the cat", max_tokens=30, temperature=0, logprobs=0
    )
    (choice,) = completion.choices
    assert choice.text == " sat on the mat and looked at the moon."
    assert choice.text == reference(models, "chat", "the cat", 30)
    assert choice.finish_reason == "stop"
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / "chat")
    assert completion.usage.prompt_tokens == len(tokenizer("the cat").input_ids)
    # Every generated token is counted, the end-of-sequence token too; their texts make the answer.
    assert completion.usage.completion_tokens == len(choice.logprobs.tokens)
    assert choice.logprobs.tokens[-1] == tokenizer.eos_token
    assert "".join(choice.logprobs.tokens[:-1]) == choice.text


def test_greedy_decoding_is_deterministic_and_batched_rows_agree(client):
    first = client.completions.create(model="gpt2", prompt="hello world", max_tokens=12, temperature=0, n=3)
    again = client.completions.create(model="gpt2", prompt="hello world", max_tokens=12, temperature=0)
    texts = {choice.text for choice in first.choices} | {again.choices[0].text}
    assert len(texts) == 1 and first.choices[0].finish_reason in ("length", "stop")


def test_prompts_of_different_lengths_batched_together_match_each_alone(client, models):
    prompts = ["a", "the quick brown fox jumps", "hello world, this is"]
    completion = client.completions.create(model="gpt2", prompt=prompts, max_tokens=10, temperature=0)
    assert [choice.text for choice in completion.choices] == [
        reference(models, "gpt2", p, 10) for p in prompts
    ]


def test_a_seed_makes_sampling_reproducible(client):
    def sample(seed: int) -> str:
        completion = client.completions.create(
            model="gpt2", prompt="the", max_tokens=12, temperature=2.0, seed=seed
        )
        return completion.choices[0].text

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(4)}) > 1  # the seed is what decides
    # n choices of one seeded request are seeded in turn (seed, seed + 1, ...)
    both = client.completions.create(model="gpt2", prompt="the", max_tokens=12, temperature=2.0, seed=7, n=2)
    assert [choice.text for choice in both.choices] == [sample(7), sample(8)]
    # ... up from vLLM's largest seed (2**63 - 1), and wrapped as a 64-bit seed from a negative one to 0
    # (-2 is 2**64 - 2 to the random generator, as to torch's in vLLM)
    top = client.completions.create(
        model="gpt2", prompt="the", max_tokens=12, temperature=2.0, seed=(1 << 63) - 1, n=2
    )
    assert top.choices[0].text == sample((1 << 63) - 1)
    wrapped = client.completions.create(
        model="gpt2", prompt="the", max_tokens=12, temperature=2.0, seed=-2, n=3
    )
    assert [wrapped.choices[0].text, wrapped.choices[2].text] == [sample(-2), sample(0)]
    # -1 asks for no seed, as in vLLM: each answer is sampled afresh
    assert len({sample(-1) for _ in range(4)}) > 1


def test_vllm_s_sampling_extensions_through_the_openai_client(client):
    """As a vLLM user sends them, in `extra_body`."""
    hello = [{"role": "user", "content": "hello"}]
    greedy = client.chat.completions.create(model="chat", messages=hello, temperature=0)
    assert greedy.choices[0].finish_reason == "stop"
    wanted = greedy.usage.completion_tokens + 4
    endless = client.chat.completions.create(
        model="chat", messages=hello, temperature=0, max_tokens=wanted, extra_body={"ignore_eos": True}
    )
    assert (endless.choices[0].finish_reason, endless.usage.completion_tokens) == ("length", wanted)
    assert endless.choices[0].message.content.startswith(greedy.choices[0].message.content)
    narrowed = client.chat.completions.create(
        model="chat", messages=hello, temperature=2.0, seed=1, extra_body={"top_k": 1}
    )
    assert narrowed.choices[0].message.content == greedy.choices[0].message.content


def test_logprobs_are_the_model_s_with_the_likeliest_alternatives(client):
    (choice,) = client.completions.create(
        model="gpt2", prompt="the cat", max_tokens=4, temperature=0, logprobs=3
    ).choices
    for token, logprob, top in zip(
        choice.logprobs.tokens, choice.logprobs.token_logprobs, choice.logprobs.top_logprobs, strict=True
    ):
        assert len(top) == 3 and logprob <= 0
        assert max(top.values()) == pytest.approx(logprob) and top[token] == pytest.approx(logprob)


def test_completion_top_logprobs_always_hold_the_sampled_token(client):
    """As OpenAI's: up to `logprobs` + 1 entries, when the sampled token is not among the likeliest."""
    (choice,) = client.completions.create(
        model="gpt2", prompt="the cat", max_tokens=16, temperature=2.0, seed=3, logprobs=1
    ).choices
    logprobs = choice.logprobs
    for token, logprob, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert top[token] == pytest.approx(logprob) and len(top) <= 2
    assert any(len(top) == 2 for top in logprobs.top_logprobs)  # a token that was not the likeliest


def test_up_to_20_likeliest_tokens_as_vllm_gives_them_are_the_model_s_own(client, models):
    """vLLM's default --max-logprobs, beyond OpenAI's 5 for completions; chat's top_logprobs too."""
    (choice,) = client.completions.create(
        model="gpt2", prompt="the cat", max_tokens=3, temperature=0, logprobs=20
    ).choices
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / "gpt2")
    model = transformers.AutoModelForCausalLM.from_pretrained(models / "gpt2")
    with torch.no_grad():
        first = torch.log_softmax(
            model(tokenizer("the cat", return_tensors="pt").input_ids).logits[0, -1], -1
        )
    likeliest = first.topk(20).values
    # (tokens whose text is the same, pieces of a character say, share an entry of OpenAI's object)
    given = torch.tensor(list(choice.logprobs.top_logprobs[0].values()))
    assert (given[:, None] - likeliest[None, :]).abs().min(dim=1).values.max() < 1e-4
    assert given.max().item() == pytest.approx(likeliest[0].item(), abs=1e-4)
    chat = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=20,
    )
    for entry in chat.choices[0].logprobs.content:
        values = [alternative.logprob for alternative in entry.top_logprobs]
        assert len(values) == 20 and values == sorted(values, reverse=True) and values[0] == entry.logprob


def test_chat_uses_the_tokenizer_s_template(client, models):
    messages = [{"role": "user", "content": "hello"}]
    chat = client.chat.completions.create(model="chat", messages=messages, temperature=0)
    (choice,) = chat.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello world, this is a very small language model."
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / "chat")
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # The template writes the first token itself; it is not added twice.
    assert chat.usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False).input_ids)


def test_continue_final_message_goes_on_from_the_assistant_s_text(client):
    """vLLM's way to start the answer for the model (a prefill), sent in `extra_body`."""
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hello world, this is"},
    ]
    chat = client.chat.completions.create(
        model="chat",
        messages=messages,
        temperature=0,
        extra_body={"add_generation_prompt": False, "continue_final_message": True},
    )
    assert chat.choices[0].message.content == " a very small language model."


def test_a_model_without_a_chat_template_refuses_chat(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt2", messages=[{"role": "user", "content": "hi"}])
    assert "no chat template" in refused.value.message


def test_generation_uses_the_cache_under_transformers_current_name(client, server):
    """No deprecation warning of transformers' in the log: the batches pass the key/value cache as the
    installed release names it."""
    for model in ("chat", "gpt2", "t5"):
        client.completions.create(model=model, prompt="the cat", max_tokens=3, temperature=0)
    assert "deprecated" not in server.log()


def test_a_streamed_completion_comes_token_by_token(client):
    stream = client.completions.create(
        model="chat",
        prompt="the quick",
        max_tokens=30,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [chunk.choices[0].text for chunk in chunks[:-1]]
    assert "".join(texts) == " brown fox jumps over the lazy dog."
    assert len([text for text in texts if text]) > 5
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= len(texts) - 1


def test_a_streamed_chat_read_event_by_event(server):
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "tell me about the cat"}],
        "temperature": 0,
        "stream": True,
    }
    contents = []
    with httpx.stream("POST", f"{server.url}/openai/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: ")
            if line == "data: [DONE]":
                break
            delta = httpx.Response(200, content=line.removeprefix("data: ")).json()["choices"][0]["delta"]
            contents.append(delta.get("content") or "")
    assert "".join(contents) == "the cat sat on the mat and looked at the moon."


def prompt_logprobs_by_transformers(models, name: str, prompt: str) -> tuple[list[int], list[float]]:
    """The prompt's tokens, and each one's log probability after those before it (but the first)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / name)
    model = transformers.AutoModelForCausalLM.from_pretrained(models / name)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1], dim=-1)
    return ids[0].tolist(), logprobs.gather(-1, ids[0, 1:, None])[:, 0].tolist()


@pytest.mark.parametrize("prompts", [["the cat sat on the mat"], ["the cat sat on the mat", "hello"]])
def test_echo_with_logprobs_scores_the_prompt_as_lm_evaluation_harness_asks(client, models, prompts):
    """lm-evaluation-harness's loglikelihood: echo, logprobs 1, max_tokens 1, greedy; it reads the
    prompt's entries. Prompts of different lengths are prefilled together, left-padded."""
    completion = client.completions.create(
        model="chat", prompt=prompts, echo=True, logprobs=1, max_tokens=1, temperature=0
    )
    for prompt, choice in zip(prompts, completion.choices, strict=True):
        ids, expected = prompt_logprobs_by_transformers(models, "chat", prompt)
        logprobs = choice.logprobs
        assert len(logprobs.tokens) == len(ids) + 1 and choice.text.startswith(prompt)
        assert logprobs.token_logprobs[0] is None and logprobs.top_logprobs[0] is None
        assert logprobs.token_logprobs[1 : len(ids)] == pytest.approx(expected, abs=1e-4)
        for token, alternatives in zip(logprobs.tokens[1:], logprobs.top_logprobs[1:], strict=True):
            assert token in alternatives and 1 <= len(alternatives) <= 2


@pytest.mark.parametrize("stream", [False, True])
def test_echo_with_max_tokens_0_answers_the_prompt_alone(client, models, stream):
    answer = client.completions.create(
        model="chat", prompt="the cat sat", echo=True, logprobs=0, max_tokens=0, stream=stream
    )
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "the cat sat"
    assert choices[-1].finish_reason == "length"
    ids, expected = prompt_logprobs_by_transformers(models, "chat", "the cat sat")
    token_logprobs = [value for choice in choices for value in choice.logprobs.token_logprobs]
    assert token_logprobs[0] is None and token_logprobs[1:] == pytest.approx(expected, abs=1e-4)
    if not stream:
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (len(ids), 0)


def test_a_t5_model_refuses_to_score_its_prompt(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="t5", prompt="the cat", echo=True, logprobs=1, max_tokens=1)
    assert refused.value.param == "echo"


def test_t5_generates_with_its_encoder_and_decoder(client, models):
    prompts = ["the cat sat", "a dog ran in the park with a red ball"]
    completion = client.completions.create(model="t5", prompt=prompts, max_tokens=8, temperature=0)
    assert [choice.text for choice in completion.choices] == [reference(models, "t5", p, 8) for p in prompts]
    tokenizer = transformers.AutoTokenizer.from_pretrained(models / "t5")
    assert completion.usage.prompt_tokens == sum(len(tokenizer(p).input_ids) for p in prompts)
    assert completion.usage.completion_tokens == 16


def test_a_prompt_longer_than_the_context_is_refused_with_the_limits(client, server):
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="chat", prompt="the cat sat on the mat " * 60, max_tokens=4)
    assert "maximum context length is 256 tokens" in refused.value.message
    assert refused.value.code == "context_length_exceeded"
    # The replica is unharmed.
    assert (
        client.completions.create(model="chat", prompt="the cat", max_tokens=3, temperature=0).choices[0].text
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_prompt_far_over_the_context_is_refused_without_the_memory_to_tokenize_it(client, server):
    """Four million characters take a fast tokenizer about 650 MB to tokenize whole; the first few
    thousand of them are enough to refuse the prompt."""
    before = server.peak_memory()
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="chat", prompt="the cat " * 500_000, max_tokens=4)
    assert refused.value.code == "context_length_exceeded"
    assert "maximum context length is 256 tokens" in refused.value.message
    assert server.peak_memory() - before < 100 << 20


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "nope", "prompt": "a"}, 404, "model"),
        ({"model": "chat", "prompt": "a", "max_tokens": -1}, 400, "max_tokens"),
        ({"model": "chat", "prompt": "a", "logit_bias": {"100000": 5}}, 400, "logit_bias"),
        ({"model": "chat", "prompt": [5, 100000]}, 400, "prompt"),
        ({"model": "chat", "prompt": [5, 100000], "stream": True}, 400, "prompt"),
        ({"model": "chat", "prompt": [5, (1 << 64) - 1], "echo": True}, 400, "prompt"),
        ({"model": "chat", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
    ],
)
def test_bad_requests_get_openai_errors(server, body, status, param):
    path = "/openai/v1/chat/completions" if "messages" in body else "/openai/v1/completions"
    response = httpx.post(f"{server.url}{path}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_v1_predict_on_a_generative_model_points_to_the_openai_endpoints(server):
    response = httpx.post(f"{server.url}/v1/models/chat:predict", json={"instances": ["the cat"]})
    assert response.status_code == 400
    assert "/openai/v1/completions" in response.json()["error"]


def test_the_choices_of_a_request_run_in_one_batch(client, server):
    def batches_of_three_or_more() -> float:
        return metric(server, "modelplane_generation_batch_sequences_count", model_name="gpt2") - metric(
            server, "modelplane_generation_batch_sequences_bucket", model_name="gpt2", le="2.0"
        )

    before = batches_of_three_or_more()
    completion = client.completions.create(model="gpt2", prompt="the", max_tokens=6, temperature=1.0, n=4)
    assert len(completion.choices) == 4
    assert batches_of_three_or_more() > before


def test_concurrent_requests_beyond_max_num_seqs_wait_their_turn(endless_server):
    with openai.OpenAI(base_url=f"{endless_server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        completion = client.completions.create(
            model="endless", prompt="hello", max_tokens=8, temperature=0, n=5
        )
    assert [choice.finish_reason for choice in completion.choices] == ["length"] * 5
    assert len({choice.text for choice in completion.choices}) == 1
    count = metric(endless_server, "modelplane_generation_batch_sequences_count", model_name="endless")
    assert count > 0
    # --max_num_seqs 2: no step ever ran more than two sequences.
    assert (
        metric(endless_server, "modelplane_generation_batch_sequences_bucket", model_name="endless", le="2.0")
        == count
    )


def test_chat_logprob_bytes_are_each_token_s_own_even_for_a_piece_of_a_character(endless_server):
    """A random model sampled hot writes bytes that are pieces of characters: each such token decodes
    alone to U+FFFD, and its `bytes` are its own, so the tokens' bytes make the answer."""
    body = {
        "model": "endless",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 30,
        "temperature": 2.0,
        "seed": 0,
        "logprobs": True,
        "top_logprobs": 2,
    }
    response = httpx.post(f"{endless_server.url}/openai/v1/chat/completions", json=body, timeout=60)
    (choice,) = response.json()["choices"]
    entries = choice["logprobs"]["content"]
    if choice["finish_reason"] == "stop":  # the end-of-sequence token is not in the answer's text
        entries = entries[:-1]
    replacement = list("\ufffd".encode())
    pieces = [entry for entry in entries if entry["token"] == "\ufffd"]
    assert pieces and all(entry["bytes"] != replacement for entry in pieces)
    alternatives = [top for entry in entries for top in entry["top_logprobs"] if top["token"] == "\ufffd"]
    assert all(top["bytes"] != replacement for top in alternatives)
    joined = b"".join(bytes(entry["bytes"]) for entry in entries)
    assert joined.decode(errors="replace") == choice["message"]["content"]


def test_vllm_s_flags_are_a_warning_with_the_huggingface_engine(endless_server):
    assert (
        "--enforce_eager apply to the vllm backend; model endless runs on transformers"
        in endless_server.log()
    )


def test_max_logprobs_minus_one_lets_a_request_ask_for_every_token_of_the_vocabulary(endless_server):
    vocab_size = endless_server.vocab_size
    with openai.OpenAI(base_url=f"{endless_server.url}/openai/v1", api_key="-", max_retries=0) as client:
        (choice,) = client.completions.create(
            model="endless", prompt="the cat", max_tokens=1, temperature=0, logprobs=vocab_size
        ).choices
        # Tokens of the same text share an entry: at most the vocabulary, and more than the default 20.
        assert 20 < len(choice.logprobs.top_logprobs[0]) <= vocab_size
        with pytest.raises(openai.BadRequestError) as caught:
            client.completions.create(
                model="endless", prompt="the cat", max_tokens=1, logprobs=vocab_size + 1
            )
    assert caught.value.body["message"] == (
        f"Requested sample logprobs of {vocab_size + 1}, which is greater than max allowed: {vocab_size}"
    )


def test_a_client_that_leaves_a_stream_stops_its_generation(endless_server):
    def abandoned() -> float:
        return metric(
            endless_server, "modelplane_generation_sequences_total", model_name="endless", finish="abandoned"
        )

    before = abandoned()
    body = {"model": "endless", "prompt": "hello", "max_tokens": 240, "temperature": 0, "stream": True}
    with httpx.stream(
        "POST", f"{endless_server.url}/openai/v1/completions", json=body, timeout=60
    ) as response:
        assert next(response.iter_lines()).startswith("data: ")
    deadline = time.monotonic() + 30
    while abandoned() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert abandoned() == before + 1
    # Its place is free: the next request runs at once, alone.
    with openai.OpenAI(base_url=f"{endless_server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        assert (
            client.completions.create(model="endless", prompt="a", max_tokens=2).choices[0].finish_reason
            == "length"
        )


def test_a_sequence_a_stop_string_ends_counts_as_stopped_not_abandoned(endless_server):
    def ended(finish: str) -> float:
        return metric(
            endless_server, "modelplane_generation_sequences_total", model_name="endless", finish=finish
        )

    with openai.OpenAI(base_url=f"{endless_server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        greedy = {"model": "endless", "prompt": "hello", "temperature": 0}
        start = client.completions.create(**greedy, max_tokens=8).choices[0].text[:3]
        before = ended("stop"), ended("abandoned")
        # The stop string comes within the first tokens; the engine would go on for hundreds more.
        choice = client.completions.create(**greedy, max_tokens=240, stop=start).choices[0]
    assert (choice.text, choice.finish_reason) == ("", "stop")
    deadline = time.monotonic() + 30
    while (ended("stop"), ended("abandoned")) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (ended("stop"), ended("abandoned")) == (before[0] + 1, before[1])
