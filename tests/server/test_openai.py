"""The OpenAI endpoints of a real `modelplane serve`, spoken to with the official `openai` client and
httpx. The model is tests/server/alphabet_generator.py: it continues a prompt with the next letters of
the alphabet, so every answer can be worked out by hand."""

from __future__ import annotations

import base64
import re
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from modelplane.server.openai_routes import INLINE_TEXT, _StopMatcher
from tests.server.processes import REPO_ROOT, serve

MODEL_CLASS = str(REPO_ROOT / "tests" / "server" / "alphabet_generator.py") + ":AlphabetModel"


def alphabet_server(**env: str):
    return serve("--model-class", MODEL_CLASS, "--model-name", "alphabet", grpc=False, env=env or None)


@pytest.fixture(scope="module")
def server():
    process = alphabet_server()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def slow_server():
    process = alphabet_server(ALPHABET_STEP_SECONDS="0.2")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def gated_server(gate):
    process = alphabet_server(ALPHABET_GATE=str(gate))
    yield process
    process.stop()


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_a_wrong_method_is_405_with_the_allowed_one(server):
    wrong = httpx.get(f"{server.url}/openai/v1/chat/completions")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    assert wrong.json()["error"]["message"] == "Method GET is not allowed here; use POST"
    wrong = httpx.post(f"{server.url}/openai/v1/models")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/openai/v1", "/openai/v1/files", "/openai/v1/responses/abc"])
def test_a_route_that_is_not_served_is_a_404_whatever_the_method(server, method, path):
    """Not a 405 saying to use POST, where a POST would be a 404 too (OpenAI's `Invalid URL`)."""
    answer = httpx.request(method, server.url + path)
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "message": f"Invalid URL ({method} {path})",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }


def test_models_are_listed(client):
    assert [model.id for model in client.models.list()] == ["alphabet"]
    assert client.models.retrieve("alphabet").id == "alphabet"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_a_completion_with_usage(client):
    completion = client.completions.create(model="alphabet", prompt="abc", max_tokens=4)
    (choice,) = completion.choices
    assert (choice.text, choice.finish_reason) == ("defg", "length")
    assert completion.usage.prompt_tokens == 3
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 7
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")


def test_a_sequence_that_ends_itself_stops(client):
    (choice,) = client.completions.create(model="alphabet", prompt="w", max_tokens=10).choices
    assert (choice.text, choice.finish_reason) == ("xyz", "stop")


def test_several_prompts_n_choices_echo_and_stop_strings(client):
    completion = client.completions.create(
        model="alphabet", prompt=["a", "k"], max_tokens=5, n=2, stop=["ef", "m"]
    )
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "bcd", "stop"),
        (1, "bcd", "stop"),
        (2, "l", "stop"),
        (3, "l", "stop"),
    ]
    assert completion.usage.prompt_tokens == 2
    echoed = client.completions.create(model="alphabet", prompt="ab", max_tokens=2, echo=True)
    assert echoed.choices[0].text == "abcd"


def test_token_id_prompts(client):
    (choice,) = client.completions.create(model="alphabet", prompt=[ord("p")], max_tokens=2).choices
    assert choice.text == "qr"


def test_completion_logprobs(client):
    (choice,) = client.completions.create(model="alphabet", prompt="a", max_tokens=2, logprobs=1).choices
    assert choice.logprobs.tokens == ["b", "c"]
    assert choice.logprobs.token_logprobs == [-0.1, -0.1]
    assert choice.logprobs.top_logprobs == [{"b": -0.1}, {"c": -0.1}]
    assert choice.logprobs.text_offset == [0, 1]


def test_completion_logprobs_0_still_give_the_sampled_token_s(client):
    (choice,) = client.completions.create(model="alphabet", prompt="a", max_tokens=2, logprobs=0).choices
    assert choice.logprobs.top_logprobs == [{"b": -0.1}, {"c": -0.1}]


def test_logprobs_go_up_to_vllm_s_max_logprobs_on_completions_and_chat(client):
    """vLLM's default --max-logprobs is 20 (OpenAI's completions stop at 5, its chat at 20)."""
    (choice,) = client.completions.create(model="alphabet", prompt="a", max_tokens=2, logprobs=20).choices
    assert choice.logprobs.tokens == ["b", "c"]
    chat = client.chat.completions.create(
        model="alphabet",
        messages=[{"role": "user", "content": "x"}],
        max_tokens=1,
        logprobs=True,
        top_logprobs=20,
    )
    assert [entry.token for entry in chat.choices[0].logprobs.content] == ["u"]


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_more_logprobs_than_vllm_s_max_are_refused_in_vllm_s_words(client, endpoint):
    with pytest.raises(openai.BadRequestError) as caught:
        if endpoint == "completions":
            client.completions.create(model="alphabet", prompt="a", max_tokens=2, logprobs=21)
        else:
            client.chat.completions.create(
                model="alphabet", messages=[{"role": "user", "content": "x"}], logprobs=True, top_logprobs=21
            )
    assert caught.value.body == {
        "message": "Requested sample logprobs of 21, which is greater than max allowed: 20",
        "type": "invalid_request_error",
        "param": "logprobs" if endpoint == "completions" else "top_logprobs",
        "code": None,
    }


def test_a_stream_has_the_logprobs_of_every_token_even_those_whose_text_waited(client):
    """A stop string holds text back: its tokens' log probabilities come with the next text sent."""
    request = {"model": "alphabet", "prompt": "a", "max_tokens": 5, "logprobs": 1, "stop": ["xyz"]}
    (whole,) = client.completions.create(**request).choices
    chunks = [chunk.choices[0] for chunk in client.completions.create(**request, stream=True)]
    streamed = [token for chunk in chunks if chunk.logprobs for token in chunk.logprobs.tokens]
    assert whole.logprobs.tokens == streamed == list("bcdef")
    assert "".join(chunk.text for chunk in chunks) == whole.text == "bcdef"


def test_a_stream_s_text_offsets_count_from_the_start_of_its_text_as_the_whole_answer_s(client):
    request = {"model": "alphabet", "prompt": "a", "max_tokens": 5, "logprobs": 1, "stop": ["xyz"]}
    (whole,) = client.completions.create(**request).choices
    chunks = [chunk.choices[0] for chunk in client.completions.create(**request, stream=True)]
    offsets = [offset for chunk in chunks if chunk.logprobs for offset in chunk.logprobs.text_offset]
    assert whole.logprobs.text_offset == offsets == [0, 1, 2, 3, 4]


def test_chat_with_the_model_s_template(client):
    chat = client.chat.completions.create(
        model="alphabet",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "after c"}],
        max_tokens=3,
        logprobs=True,
        top_logprobs=2,
    )
    (choice,) = chat.choices
    # The template ends with "<assistant>": the last letter of the prompt is the t of "assistant".
    assert choice.message.role == "assistant" and choice.message.content == "uvw"
    assert chat.usage.prompt_tokens == len("<system>be brief<user>after c<assistant>")
    assert [entry.token for entry in choice.logprobs.content] == ["u", "v", "w"]
    assert [alt.token for alt in choice.logprobs.content[0].top_logprobs] == ["u", "?"]


def test_a_streamed_completion_event_by_event_with_usage(client):
    stream = client.completions.create(
        model="alphabet", prompt="a", max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert [chunk.choices[0].text for chunk in chunks[:-1]] == ["b", "c", "d"]
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


@pytest.mark.parametrize("include_usage", [True, False])
def test_with_include_usage_the_other_chunks_have_a_null_usage(server, include_usage):
    body = {
        "model": "alphabet",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    with httpx.stream("POST", f"{server.url}/openai/v1/chat/completions", json=body) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    chunks = [httpx.Response(200, content=event).json() for event in events[:-1]]
    with_choices = [chunk for chunk in chunks if chunk["choices"]]
    assert len(with_choices) == 3  # the role, then two tokens
    if include_usage:
        assert all("usage" in chunk and chunk["usage"] is None for chunk in with_choices)
        assert chunks[-1]["usage"]["completion_tokens"] == 2
    else:
        assert all("usage" not in chunk for chunk in chunks)


def test_a_streamed_chat(client):
    stream = client.chat.completions.create(
        model="alphabet", messages=[{"role": "user", "content": "x"}], max_tokens=5, stream=True
    )
    deltas = [chunk.choices[0].delta for chunk in stream]
    assert deltas[0].role == "assistant"
    assert "".join(delta.content or "" for delta in deltas) == "uvwxy"


def test_a_stop_string_longer_than_the_text_so_far_holds_it_all_back():
    matcher = _StopMatcher(("abcdef",))
    assert matcher.feed("abcd", final=False) == ("", None)
    assert matcher.feed("ef", final=False) == ("", "abcdef")
    matcher = _StopMatcher(("abcdef",))
    assert matcher.feed("abcd", final=False) == ("", None)
    assert matcher.feed("xyz", final=False) == (
        "ab",
        None,
    )  # the last five wait: a stop string could begin there
    assert matcher.feed("", final=True) == ("cdxyz", None)


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_is_found_however_the_text_comes(client, stream):
    """One letter a step: the stop string is longer than the text when its first letters come."""
    answer = client.completions.create(
        model="alphabet", prompt="a", max_tokens=20, stop=["cdefgh"], stream=stream
    )
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "b"
    assert choices[-1].finish_reason == "stop"
    assert choices[-1].stop_reason == "cdefgh"  # vLLM's field: the stop string that ended the choice


@pytest.mark.parametrize("stream", [False, True])
def test_more_than_openai_s_4_stop_strings_are_taken_as_vllm_takes_them(client, stream):
    """vLLM sets no limit; 64 of them, of every length up to 64, each looked for as the text comes."""
    stops = [f"{n}{'x' * n}" for n in range(63)] + ["fg"]
    answer = client.completions.create(model="alphabet", prompt="a", max_tokens=20, stop=stops, stream=stream)
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "bcde"
    assert (choices[-1].finish_reason, choices[-1].stop_reason) == ("stop", "fg")


@pytest.mark.parametrize("stream", [False, True])
def test_include_stop_str_in_output_keeps_the_stop_string(client, stream):
    answer = client.completions.create(
        model="alphabet",
        prompt="a",
        max_tokens=20,
        stop=["cd"],
        stream=stream,
        extra_body={"include_stop_str_in_output": True},
    )
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "bcd"
    assert choices[-1].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_no_stop_string_ends_a_sequence_before_min_tokens(client, stream):
    answer = client.completions.create(
        model="alphabet",
        prompt="a",
        max_tokens=10,
        stop=["c", "f"],
        stream=stream,
        extra_body={"min_tokens": 3},
    )
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "bcde"  # "c" came second, "f" fifth
    assert choices[-1].finish_reason == "stop"


@pytest.mark.parametrize(
    ("extension", "param"),
    [
        ({"top_k": -2}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"min_tokens": 5, "max_tokens": 4}, "min_tokens"),
        ({"ignore_eos": "yes"}, "ignore_eos"),
        ({"stop_token_ids": [1, -1]}, "stop_token_ids"),
        ({"include_stop_str_in_output": 1}, "include_stop_str_in_output"),
    ],
)
def test_vllm_s_sampling_extensions_are_checked(server, extension, param):
    response = httpx.post(
        f"{server.url}/openai/v1/completions", json={"model": "alphabet", "prompt": "a", **extension}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("stream", [False, True])
def test_an_echo_comes_first_and_max_tokens_0_answers_it_alone(client, stream):
    def texts(**fields) -> list[tuple[str, str | None]]:
        answer = client.completions.create(model="alphabet", prompt="ab", echo=True, stream=stream, **fields)
        choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
        return [(choice.text, choice.finish_reason) for choice in choices]

    if stream:
        assert texts(max_tokens=2) == [("ab", None), ("c", None), ("d", "length")]
        assert texts(max_tokens=0) == [("ab", "length")]
    else:
        assert texts(max_tokens=2) == [("abcd", "length")]
        assert texts(max_tokens=0) == [("ab", "length")]


def test_max_tokens_0_without_echo_is_refused(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="alphabet", prompt="ab", max_tokens=0)
    assert refused.value.param == "max_tokens"


def test_the_raw_stream_is_server_sent_events_ending_with_done(server):
    body = {"model": "alphabet", "prompt": "a", "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{server.url}/openai/v1/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = [line for line in response.iter_lines() if line]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize("ids", [[97, 256], [97, 1 << 63]])
def test_embedding_token_ids_outside_the_vocabulary_are_refused(server, ids):
    response = httpx.post(f"{server.url}/openai/v1/embeddings", json={"model": "alphabet", "input": ids})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "input"


def test_a_stream_that_fails_ends_with_its_error_then_done(server):
    body = {"model": "alphabet", "prompt": "a!", "max_tokens": 5, "stream": True}
    with httpx.stream("POST", f"{server.url}/openai/v1/completions", json=body) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert httpx.Response(200, content=events[0]).json()["choices"][0]["text"] == "b"
    error = httpx.Response(200, content=events[1]).json()["error"]
    assert "the alphabet broke" in error["message"] and error["type"] == "server_error"
    assert events[2:] == ["[DONE]"]


LONG_GATED = "a [gate]" + " b" * INLINE_TEXT  # long enough to be tokenized on a worker thread


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("completions", {"prompt": LONG_GATED, "max_tokens": 1}),
        ("chat/completions", {"messages": [{"role": "user", "content": LONG_GATED}], "max_tokens": 1}),
        ("embeddings", {"input": LONG_GATED}),
    ],
)
def test_long_prompts_are_tokenized_off_the_event_loop(gated_server, gate, path, body):
    """While a long prompt is being tokenized (held at the gate), the server answers other requests
    (the prompt is then longer than the model takes: a 400)."""
    for name in ("waiting", "open"):
        (gate / name).unlink(missing_ok=True)
    url = f"{gated_server.url}/openai/v1/{path}"
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, url, json={"model": "alphabet", **body}, timeout=60)
        deadline = time.monotonic() + 30
        while not (gate / "waiting").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (gate / "waiting").exists()
        assert httpx.get(f"{gated_server.url}/v2/health/live", timeout=10).status_code == 200
        (gate / "open").touch()
        assert answer.result().status_code in (200, 400), answer.result().text


FAR_OVER = "abc " * 250_000  # a million characters; the alphabet's context is 64 tokens


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("completions", {"prompt": FAR_OVER}, "prompt"),
        ("chat/completions", {"messages": [{"role": "user", "content": FAR_OVER}]}, "messages"),
        ("embeddings", {"input": ["a", FAR_OVER]}, "input"),
    ],
)
def test_a_prompt_far_over_the_context_is_refused_before_it_is_tokenized_whole(server, path, body, param):
    """A token of the alphabet is one character at most: the first 128 characters (twice the context)
    of a longer text are enough to refuse it, and the tokenizer never sees more at once."""
    response = httpx.post(f"{server.url}/openai/v1/{path}", json={"model": "alphabet", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "context_length_exceeded")
    assert "maximum context length is 64 tokens" in error["message"]
    assert "characters alone are" in error["message"]
    asked = {"longest_encoded": True}
    state = httpx.post(f"{server.url}/v1/models/alphabet:predict", json=asked).json()
    assert state["longest_encoded"] <= 128


def test_token_ids_beyond_the_context_are_refused_for_their_length_before_their_values_are_read(server):
    body = {"model": "alphabet", "prompt": [97] * 100 + [1000]}
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_embeddings_as_floats_and_base64(client):
    result = client.embeddings.create(model="alphabet", input=["ab", "c"])
    # The client asks for base64 (float32) by default.
    assert [item.embedding for item in result.data] == [
        pytest.approx([2.0, 0.195]),
        pytest.approx([1.0, 0.099]),
    ]
    assert result.usage.prompt_tokens == 3
    raw = httpx.post(
        f"{client.base_url}embeddings", json={"model": "alphabet", "input": "ab", "encoding_format": "base64"}
    ).json()
    assert struct.unpack("<2f", base64.b64decode(raw["data"][0]["embedding"])) == pytest.approx((2.0, 0.195))


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": "nope", "prompt": "a"}, 404, "model"),
        ({"model": "alphabet", "prompt": "a", "max_tokens": -1}, 400, "max_tokens"),
        ({"model": "alphabet", "prompt": "a", "max_tokens": 64}, 400, "max_tokens"),
        ({"model": "alphabet", "prompt": "a" * 70}, 400, "prompt"),
        ({"model": "alphabet", "prompt": "a", "temperature": 3}, 400, "temperature"),  # vLLM's range too
        ({"model": "alphabet", "prompt": "a", "temperature": -0.5}, 400, "temperature"),
        ({"model": "alphabet", "prompt": "a", "presence_penalty": 1}, 400, "presence_penalty"),
        ({"model": "alphabet", "prompt": "a", "logit_bias": {"1": 500}}, 400, "logit_bias"),
        ({"model": "alphabet", "prompt": "a", "logit_bias": {"one": 5}}, 400, "logit_bias"),
        ({"model": "alphabet", "prompt": "a", "logit_bias": [1, 5]}, 400, "logit_bias"),
        ({"model": "alphabet", "prompt": "a", "logit_bias": {"100000": 5}}, 400, "logit_bias"),
        ({"model": "alphabet", "prompt": "a", "colour": "blue"}, 400, "colour"),
        (
            {"model": "alphabet", "prompt": "a", "stream_options": {"include_usage": True}},
            400,
            "stream_options",
        ),
        ({"prompt": "a"}, 400, "model"),
        # Token ids outside the vocabulary: refused before a stream starts, and before an echo reads them.
        ({"model": "alphabet", "prompt": [97, 256]}, 400, "prompt"),
        ({"model": "alphabet", "prompt": [97, 1000000], "stream": True}, 400, "prompt"),
        ({"model": "alphabet", "prompt": [[97], [98, (1 << 64) - 1]], "echo": True}, 400, "prompt"),
    ],
)
def test_bad_completions_get_openai_errors(server, body, status, param):
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"] and error["type"] == "invalid_request_error"


OPENAI_FIELDS = [
    "audio",
    "modalities",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "moderation",
    "safety_identifier",
    "user",
    "store",
    "metadata",
    "service_tier",
    "parallel_tool_calls",
]
IGNORED = {
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
    "safety_identifier": "someone",
    "user": "someone",
    "store": True,
    "metadata": {"team": "a"},
    "service_tier": "auto",
    "prediction": {"type": "content", "content": "uvw"},
    "modalities": ["text"],
}


def chat(server, **fields) -> httpx.Response:
    body = {"model": "alphabet", "messages": [{"role": "user", "content": "x"}], "max_tokens": 3, **fields}
    return httpx.post(f"{server.url}/openai/v1/chat/completions", json=body)


def test_openai_s_fields_are_accepted_when_null(server):
    assert chat(server, **dict.fromkeys(OPENAI_FIELDS)).status_code == 200
    body = {"model": "alphabet", "prompt": "a", "max_tokens": 2, **dict.fromkeys(OPENAI_FIELDS)}
    assert httpx.post(f"{server.url}/openai/v1/completions", json=body).status_code == 200


def test_fields_that_do_not_change_the_answer_are_accepted_and_ignored(server):
    plain = chat(server).json()["choices"]
    assert chat(server, **IGNORED).json()["choices"] == plain


def warnings(response) -> list[str]:
    """The texts of an answer's `Warning: 299 - "<text>"` headers, unquoted as kubectl reads them."""
    texts = []
    for value in response.headers.get_list("warning"):
        match = re.fullmatch(r'299 - "((?:[^"\\]|\\.)*)"', value)
        assert match, value
        texts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return texts


def ignored_fields(texts: list[str]) -> list[str]:
    fields = [re.fullmatch(r'request field "([\w.\[\]*]+)" is ignored: .+', text) for text in texts]
    assert all(fields), texts
    return [field.group(1) for field in fields]


SAID_IGNORED = {name: value for name, value in IGNORED.items() if name != "modalities"}  # its default


@pytest.mark.parametrize("stream", [False, True])
def test_ignored_fields_are_said_in_a_warning_header_each(client, stream):
    """With the official client: chat and completions, streamed or not, and embeddings."""
    chat = client.chat.completions.with_raw_response.create(
        model="alphabet",
        messages=[{"role": "user", "content": "x"}],
        max_tokens=3,
        stream=stream,
        **SAID_IGNORED,
    )
    assert chat.status_code == 200
    assert sorted(ignored_fields(warnings(chat))) == sorted(SAID_IGNORED)
    said = dict(zip(ignored_fields(warnings(chat)), warnings(chat), strict=True))
    assert said["prompt_cache_key"].endswith("is ignored: this server keeps no prompt cache")
    answer = chat.parse()
    if stream:
        assert "".join(chunk.choices[0].delta.content or "" for chunk in answer) == "uvw"
    else:
        assert answer.choices[0].message.content == "uvw"  # the answer they do not change
    completion = client.completions.with_raw_response.create(
        model="alphabet", prompt="a", max_tokens=2, stream=stream, user="someone"
    )
    assert ignored_fields(warnings(completion)) == ["user"]
    answer = completion.parse()
    choices = [chunk.choices[0] for chunk in answer] if stream else answer.choices
    assert "".join(choice.text for choice in choices) == "bc"
    if not stream:
        embedding = client.embeddings.with_raw_response.create(model="alphabet", input="ab", user="someone")
        assert ignored_fields(warnings(embedding)) == ["user"]
        assert embedding.parse().data[0].embedding == pytest.approx([2.0, 0.195])


def test_without_ignored_fields_there_is_no_warning_and_store_false_is_none(server):
    """`store: false` asks for what this server does anyway."""
    assert warnings(chat(server)) == []
    assert warnings(chat(server, **dict.fromkeys(SAID_IGNORED))) == []  # null: not set
    assert warnings(chat(server, store=False)) == []
    assert ignored_fields(warnings(chat(server, store=True))) == ["store"]


def test_a_refused_request_still_says_what_it_set_that_is_ignored(server):
    response = chat(server, user="someone", max_tokens=1000)
    assert response.status_code == 400
    assert ignored_fields(warnings(response)) == ["user"]


def test_each_ignored_field_is_logged_once_however_many_requests_set_it(server):
    for _ in range(3):
        assert chat(server, prediction={"type": "content", "content": "x"}, user="a").status_code == 200
    log = server.log()
    assert log.count('request field "prediction" is ignored') == 1
    assert log.count('request field "user" is ignored') == 1


def test_a_max_tokens_beside_a_different_max_completion_tokens_is_said_to_be_ignored(server):
    response = chat(server, max_tokens=2, max_completion_tokens=4)
    assert response.json()["usage"]["completion_tokens"] == 4
    (text,) = warnings(response)
    assert text == 'request field "max_tokens" is ignored: max_completion_tokens, given too, wins'
    assert warnings(chat(server, max_tokens=2, max_completion_tokens=2)) == []


def test_continuous_usage_stats_without_include_usage_is_said_to_be_ignored(server):
    options = {"include_usage": False, "continuous_usage_stats": True}
    body = {"model": "alphabet", "prompt": "a", "max_tokens": 2, "stream": True, "stream_options": options}
    with httpx.stream("POST", f"{server.url}/openai/v1/completions", json=body) as response:
        events = [line for line in response.iter_lines() if line]
    assert ignored_fields(warnings(response)) == ["stream_options.continuous_usage_stats"]
    assert not any('"usage"' in event for event in events)


@pytest.mark.parametrize(
    ("message", "param", "code"),
    [
        (
            {"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]},
            "messages[0].tool_calls",
            None,
        ),
        ({"role": "user", "content": "x", "tool_call_id": "call_1"}, "messages[0].tool_call_id", None),
        (
            {"role": "assistant", "content": None, "refusal": "no"},
            "messages[0].refusal",
            "unsupported_parameter",
        ),
        (
            {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {}}]},
            "messages[0].content",
            None,
        ),
    ],
)
def test_message_fields_no_template_would_see_are_refused(server, message, param, code):
    response = chat(server, messages=[message])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_message_fields_a_replayed_answer_holds_are_accepted_when_null(server):
    assistant = {
        "role": "assistant",
        "content": "uvw",
        "refusal": None,
        "audio": None,
        "function_call": None,
        "annotations": None,
        "tool_calls": None,
    }
    user = {"role": "user", "content": "x", "tool_calls": [], "tool_call_id": None}
    assert chat(server, messages=[user, assistant, {"role": "user", "content": "y"}]).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audio", {"voice": "alloy", "format": "mp3"}),
        ("modalities", ["text", "audio"]),
        ("reasoning_effort", "low"),
        ("web_search_options", {}),
        ("verbosity", "low"),
        ("moderation", {"model": "omni-moderation-latest", "policy": {"output": {"mode": "block"}}}),
    ],
)
def test_fields_that_would_change_the_answer_are_refused_naming_them(server, field, value):
    response = chat(server, **{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (field, "unsupported_parameter")
    assert f"{field} is not supported by this server" in error["message"]


@pytest.mark.parametrize(
    "tool_choice", ["auto", "required", {"type": "function", "function": {"name": "lookup"}}]
)
def test_a_tool_choice_without_tools_is_refused_as_vllm_refuses_it(client, tool_choice):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="alphabet",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            tool_choice=tool_choice,
        )
    assert caught.value.body == {
        "message": "When using `tool_choice`, `tools` must be set.",
        "type": "invalid_request_error",
        "param": "tool_choice",
        "code": None,
    }


def test_tool_choice_none_without_tools_is_accepted_as_vllm_accepts_it(client):
    answer = client.chat.completions.create(
        model="alphabet", messages=[{"role": "user", "content": "x"}], max_tokens=2, tool_choice="none"
    )
    assert answer.choices[0].message.tool_calls is None


def test_function_call_auto_with_no_functions_to_call_is_taken_and_said_to_be_ignored(client):
    """vLLM reads neither of OpenAI's deprecated `functions` and `function_call`; modelplane refuses
    functions it cannot call, so "auto" can call none, which the answer says ("none" asks for nothing)."""
    hello = [{"role": "user", "content": "x"}]
    auto = client.chat.completions.with_raw_response.create(
        model="alphabet", messages=hello, max_tokens=2, function_call="auto"
    )
    assert auto.parse().choices[0].message.content == "uv"
    (said,) = warnings(auto)
    assert said == (
        'request field "function_call" is ignored: there are no functions to call (this server calls no functions)'
    )
    plain = client.chat.completions.with_raw_response.create(
        model="alphabet", messages=hello, max_tokens=2, function_call="none"
    )
    assert warnings(plain) == []
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="alphabet",
            messages=hello,
            max_tokens=2,
            function_call="auto",
            functions=[{"name": "lookup", "parameters": {"type": "object"}}],
        )
    assert (caught.value.param, caught.value.code) == ("functions", "unsupported_parameter")


@pytest.mark.parametrize("tool_choice", [openai.NOT_GIVEN, "none", "auto"])
def test_an_empty_tools_list_is_refused_as_vllm_and_openai_refuse_it(client, tool_choice):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="alphabet",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            tools=[],
            tool_choice=tool_choice,
        )
    assert (caught.value.param, caught.value.code) == ("tools", "empty_array")


@pytest.mark.parametrize(
    ("field", "value"), [("user", 5), ("metadata", "x"), ("store", "yes"), ("prompt_cache_options", "30m")]
)
def test_ignored_fields_must_be_of_their_type(server, field, value):
    response = chat(server, **{field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


@pytest.mark.parametrize("obfuscation", [False, True])
def test_include_obfuscation_is_taken_and_said_to_be_ignored_when_true(client, obfuscation):
    """The openai client sends it (false spares the padding OpenAI adds by default); this server pads
    no chunk, which `true` is told."""
    options = {"include_usage": True, "include_obfuscation": obfuscation}
    for create, body in (
        (client.completions.with_raw_response.create, {"prompt": "a"}),
        (client.chat.completions.with_raw_response.create, {"messages": [{"role": "user", "content": "x"}]}),
    ):
        answer = create(model="alphabet", max_tokens=2, stream=True, stream_options=options, **body)
        assert answer.status_code == 200
        expected = ["stream_options.include_obfuscation"] if obfuscation else []
        assert ignored_fields(warnings(answer)) == expected
        chunks = list(answer.parse())
        assert chunks[-1].usage.completion_tokens == 2
        assert not any("obfuscation" in chunk.model_dump(exclude_unset=True) for chunk in chunks)


def test_a_prompt_cache_breakpoint_of_a_text_part_is_taken_and_said_to_be_ignored(server):
    part = {"type": "text", "text": "x", "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "30m"}}
    messages = [{"role": "system", "content": [part]}, {"role": "user", "content": [part, part]}]
    response = chat(server, messages=messages)
    assert response.status_code == 200, response.text
    assert (
        response.json()["choices"][0]["message"]["content"]
        == chat(server).json()["choices"][0]["message"]["content"]
    )
    assert ignored_fields(warnings(response)) == ["messages[*].content[*].prompt_cache_breakpoint"]
    part["prompt_cache_breakpoint"] = "explicit"
    response = chat(server, messages=[{"role": "user", "content": [part]}])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages[0].content[0].prompt_cache_breakpoint"


def test_continuous_usage_stats_must_be_a_boolean(server):
    response = chat(
        server, stream=True, stream_options={"include_usage": True, "continuous_usage_stats": "yes"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "stream_options.continuous_usage_stats"


def test_continuous_usage_stats_puts_the_usage_so_far_in_every_chunk(client):
    stream = client.completions.create(
        model="alphabet",
        prompt="a",
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True, "continuous_usage_stats": True},
    )
    chunks = list(stream)
    assert [chunk.usage.completion_tokens for chunk in chunks[:-1]] == [1, 2, 3]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 4


def test_continuous_usage_stats_of_several_choices_count_each_choice_s_own(client):
    stream = client.completions.create(
        model="alphabet",
        prompt=["a", "bc"],
        n=2,
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True, "continuous_usage_stats": True},
    )
    chunks = list(stream)
    seen: dict[int, int] = {}
    for chunk in chunks[:-1]:
        index = chunk.choices[0].index
        seen[index] = seen.get(index, 0) + 1
        assert chunk.usage.completion_tokens == seen[index]  # as vLLM counts: this choice's so far
        assert chunk.usage.prompt_tokens == (1 if index < 2 else 2)
    assert seen == {0: 3, 1: 3, 2: 3, 3: 3}
    assert chunks[-1].usage.completion_tokens == 12 and chunks[-1].usage.prompt_tokens == 3


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
@pytest.mark.parametrize("value", [-1, 1000])
def test_chat_errors_about_the_most_tokens_name_the_field_the_request_gave(server, field, value):
    response = chat(server, **{"max_tokens": None, field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


def test_a_server_failure_is_an_openai_error(server):
    response = httpx.post(f"{server.url}/openai/v1/embeddings", json={"model": "alphabet", "input": "a!"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "the alphabet broke" in error["message"] and error["type"] == "server_error"


def test_a_body_over_the_size_limit_is_an_openai_error(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /openai/v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n"
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    error = httpx.Response(413, content=body).json()["error"]
    assert "exceeds" in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "wizard", "content": "hi"}],
        [{"content": "hi"}],
        "hi",
        [{"role": "user", "content": [{"type": "image_url"}]}],
    ],
)
def test_malformed_messages_are_400(server, messages):
    response = httpx.post(
        f"{server.url}/openai/v1/chat/completions", json={"model": "alphabet", "messages": messages}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith("messages")


def test_the_client_s_errors_are_openai_s(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="alphabet", prompt="a", max_tokens=100)
    assert caught.value.body["message"] == (
        "This model's maximum context length is 64 tokens, however you requested 101 tokens (1 in your prompt; "
        "100 for the completion). Please reduce your prompt; or completion length."
    )
    assert caught.value.code == "context_length_exceeded"


def test_a_client_that_leaves_a_stream_stops_its_generation(slow_server):
    def state() -> dict:
        return httpx.post(f"{slow_server.url}/v1/models/alphabet:predict", json={}).json()

    before = state()["stopped_early"]
    body = {"model": "alphabet", "prompt": "a", "max_tokens": 20, "stream": True}
    with httpx.stream("POST", f"{slow_server.url}/openai/v1/completions", json=body) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    deadline = time.monotonic() + 10
    while state()["stopped_early"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state() == {"running": 0, "stopped_early": before + 1}


@pytest.mark.parametrize(("prefix", "base"), [("", "/v1"), ("llm/", "/llm/v1")])
def test_kserve_openai_route_prefix_moves_the_endpoints(prefix, base):
    process = alphabet_server(KSERVE_OPENAI_ROUTE_PREFIX=prefix)
    try:
        with openai.OpenAI(base_url=f"{process.url}{base}", api_key="unused", max_retries=0) as client:
            completion = client.completions.create(model="alphabet", prompt="abc", max_tokens=2)
        assert completion.choices[0].text == "de"
        assert httpx.post(f"{process.url}/openai/v1/completions", json={}).status_code == 404
        if not prefix:  # V1 keeps its own /v1/models, as in KServe
            assert httpx.get(f"{process.url}/v1/models").json() == {"models": ["alphabet"]}
    finally:
        process.stop()


def test_a_choice_that_fails_stops_the_others_of_its_request(slow_server):
    def state() -> dict:
        return httpx.post(f"{slow_server.url}/v1/models/alphabet:predict", json={}).json()

    before = state()["stopped_early"]
    body = {"model": "alphabet", "prompt": ["a!", "a"], "max_tokens": 20}
    response = httpx.post(f"{slow_server.url}/openai/v1/completions", json=body, timeout=30)
    assert response.status_code == 500 and "the alphabet broke" in response.json()["error"]["message"]
    assert state() == {"running": 0, "stopped_early": before + 2}  # the failed one, and its sibling


def test_a_request_for_more_sequences_than_one_request_may_hold_is_refused(server):
    body = {"model": "alphabet", "prompt": ["a"] * 129, "n": 128, "max_tokens": 1}
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "n" and "asks for 16512 sequences (129 prompts, n=128)" in error["message"]
    body["prompt"] = ["a"] * 128
    assert httpx.post(f"{server.url}/openai/v1/completions", json=body, timeout=60).status_code == 200


@pytest.mark.parametrize(
    "text, message",
    [(["a"] * 2049, "'input' holds 2049 inputs: at most 2048"), (["a", ""], "input[1] is an empty string")],
)
def test_embeddings_refuse_what_openai_refuses(server, text, message):
    response = httpx.post(f"{server.url}/openai/v1/embeddings", json={"model": "alphabet", "input": text})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "input" and message in response.json()["error"]["message"]


@pytest.mark.parametrize("seed", [(1 << 63) - 1, -(1 << 63), -1, 0])
def test_a_seed_is_a_64_bit_signed_integer_as_in_vllm(client, seed):
    (choice,) = client.completions.create(model="alphabet", prompt="a", max_tokens=2, seed=seed).choices
    assert choice.text == "bc"


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (1 << 63, "9223372036854775808 is greater than the maximum of 9223372036854775807 - 'seed'"),
        ((1 << 64) - 1, "18446744073709551615 is greater than the maximum of 9223372036854775807 - 'seed'"),
        # (JSON's integers past 64 bits are read as floats: -2**63 - 1 would be -2**63, and taken.)
        (-(1 << 64), "-18446744073709551616 is less than the minimum of -9223372036854775808 - 'seed'"),
    ],
)
def test_a_seed_outside_vllm_s_range_is_refused_naming_it(client, seed, message):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="alphabet", prompt="a", max_tokens=2, seed=seed)
    assert (caught.value.param, caught.value.body["message"]) == ("seed", message)


def test_a_whole_number_written_as_a_float_is_taken_as_vllm_takes_it(server):
    body = {"model": "alphabet", "prompt": "a", "max_tokens": 2.0, "n": 1.0}
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"] == "bc"
    body["max_tokens"] = 2.5
    response = httpx.post(f"{server.url}/openai/v1/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "max_tokens"
