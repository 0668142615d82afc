"""REST fuzzed with hypothesis: whatever a client sends (V1, V2, OpenAI), a mistake of its own is a 4xx
with a reason, never a 5xx. Each test is bounded to a few seconds (CI runs them like any other test)."""

from __future__ import annotations

import json
import os
import string
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.processes import REPO_ROOT, serve


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # integers of any size, as JSON allows


FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
datatypes = st.sampled_from(
    [
        "BOOL",
        "UINT8",
        "UINT64",
        "INT8",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
        "BF16",
        "fp32",
        "X",
    ]
)
shapes = st.one_of(
    st.lists(st.integers(min_value=0, max_value=6), max_size=4),
    st.lists(st.integers(min_value=-3, max_value=2**40), max_size=3),
    st.integers(min_value=60, max_value=10_000).map(lambda dims: [1] * dims),
    st.lists(st.sampled_from([0, 1, 2**31, 2**32, 2**63 - 1, 2**64 - 1]), max_size=3),  # no elements, huge
    json_values,
)
tensors = st.fixed_dictionaries(
    {"name": st.text(max_size=6), "shape": shapes, "datatype": datatypes, "data": json_values},
    optional={"parameters": json_values},
)
v2_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=3)},
    optional={
        "id": json_values,
        "parameters": json_values,
        "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=6)}), max_size=2) | json_values,
    },
)
v1_bodies = st.fixed_dictionaries({"instances": json_values}, optional={"parameters": json_values})
# Past orjson's 1024 levels, and Python's recursion limit, which reads what orjson refuses (NaN...).
# (Not to the echo model: orjson writes 254 levels at most, so its answer to one would be a 500.)
deeply_nested = st.builds(
    lambda depth, key, nan: (
        b'{"%s": ' % key.encode() + b"[" * depth + (b"NaN" if nan else b"") + b"]" * depth + b"}"
    ),
    st.integers(min_value=900, max_value=5000),
    st.sampled_from(["inputs", "instances", "id", "parameters"]),
    st.booleans(),
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(dumps),
    v1_bodies.map(dumps),
    v2_bodies.map(dumps),
)
# The message's framing is the HTTP client's to write (a wrong one is refused by httpx before it is sent);
# the server's answer to bad framing is tested on raw sockets by the gateway's hardening tests.
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "upgrade", "expect", "te", "trailer"}
header_names = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.!#$%&'*+^`|~", min_size=1, max_size=20
).filter(lambda name: name.lower() not in FRAMING)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(
    str.strip
)
known_headers = st.sampled_from(
    ["content-type", "inference-header-content-length", "ce-specversion", "ce-id", "ce-type", "x-request-id"]
)


@pytest.fixture(scope="module")
def client(iris_server):
    with httpx.Client(base_url=iris_server.url, timeout=30) as client:
        yield client


def assert_client_error_at_most(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]


PATHS = [
    "/v1/models/iris:predict",
    "/v2/models/iris/infer",
    "/v2/models/iris/versions/1/infer",
]


@FUZZ
@given(path=st.sampled_from(PATHS), body=st.one_of(bodies, deeply_nested))
def test_any_body_is_answered_without_a_server_error(client, path, body):
    assert_client_error_at_most(client.post(path, content=body, headers={"content-type": "application/json"}))


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    headers=st.dictionaries(st.one_of(known_headers, header_names), header_values, max_size=5),
)
def test_any_headers_are_answered_without_a_server_error(client, path, body, headers):
    assert_client_error_at_most(client.post(path, content=body, headers=headers))


@FUZZ
@given(
    json_part=v2_bodies,
    sizes=st.lists(st.integers(min_value=-5, max_value=2**40), max_size=3),
    declared=st.integers(min_value=-10, max_value=2**40) | st.text(string.printable.strip(), max_size=5),
    binary=st.binary(max_size=64),
)
def test_any_binary_extension_request_is_answered_without_a_server_error(
    client, json_part, sizes, declared, binary
):
    """The binary tensor extension: a JSON head of the length the header declares, then raw tensors."""
    for tensor, size in zip(json_part["inputs"], sizes, strict=False):
        tensor.pop("data", None)
        tensor["parameters"] = {"binary_data_size": size}
    head = dumps(json_part)
    response = client.post(
        "/v2/models/iris/infer",
        content=head + binary,
        headers={
            "inference-header-content-length": str(declared),
            "content-type": "application/octet-stream",
        },
    )
    assert_client_error_at_most(response)


@FUZZ
@given(body=st.one_of(bodies, v1_bodies.map(dumps)))
def test_the_echo_model_answers_any_body_without_a_server_error(test_models_server, body):
    """The protocol's own decoding and encoding, with a model that takes anything."""
    for path in ("/v1/models/echo:predict", "/v2/models/echo/infer"):
        response = httpx.post(test_models_server.url + path, content=body, timeout=30)
        assert_client_error_at_most(response)


@pytest.mark.parametrize("shape", [[0, 2**63 - 1], [0, 2**64 - 1], [2**32, 2**32, 0], [2**31 + 1, 0]])
def test_a_shape_of_no_elements_but_huge_extent_is_a_client_error(client, shape):
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": []}]}
    response = client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 400, response.text
    assert "elements (counting a 0 as 1)" in response.json()["error"]


def test_a_shape_of_many_dimensions_is_a_client_error(client):
    body = {"inputs": [{"name": "x", "shape": [1] * 10_000, "datatype": "FP32", "data": [1.0]}]}
    response = client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 400
    assert "at most 64" in response.json()["error"]


@pytest.fixture(scope="module")
def server_without_pandas(sklearn_dir, tmp_path_factory):
    """The iris model on a server where pandas cannot be imported."""
    shadow = tmp_path_factory.mktemp("no-pandas")
    (shadow / "pandas").mkdir()
    (shadow / "pandas" / "__init__.py").write_text("raise ImportError('No module named pandas')\n")
    path = os.pathsep.join([str(shadow), str(Path(__file__).resolve().parents[2]), *sys.path[1:2]])
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", env={"PYTHONPATH": path})
    yield server
    server.stop()


def test_instances_as_objects_without_pandas_say_how_to_send_rows(server_without_pandas):
    body = {"instances": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}
    response = httpx.post(f"{server_without_pandas.url}/v1/models/iris:predict", json=body, timeout=30)
    assert response.status_code == 400
    assert '"instances": [[5.1, 3.5, 1.4, 0.2]]' in response.json()["error"]
    rows = httpx.post(
        f"{server_without_pandas.url}/v1/models/iris:predict",
        json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
        timeout=30,
    )
    assert rows.json() == {"predictions": [0]}


# The OpenAI endpoints, with tests/server/alphabet_generator.py: every field of every type, and the
# values each field takes at and beyond its edges.
openai_values = st.one_of(
    json_values,
    st.sampled_from([0, 1, -1, 2**31, 2**63, 2**64, 1e308, -1e308, 0.5, "", "a", [], {}, ["a"] * 5]),
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | openai_values},
        optional={
            "content": st.text(max_size=8) | st.just([{"type": "text", "text": "hi"}]) | openai_values,
            "name": openai_values,
            "tool_calls": st.just([{"id": "1", "function": {"name": "f", "arguments": '{"q": 1}'}}])
            | st.integers(min_value=900, max_value=5000).map(
                lambda depth: [{"id": "1", "function": {"name": "f", "arguments": "[" * depth + "]" * depth}}]
            )
            | openai_values,
            "tool_call_id": openai_values,
        },
    ),
    max_size=3,
)
sampling_fields = {
    name: openai_values
    for name in (
        "max_tokens", "n", "temperature", "top_p", "top_k", "seed", "stop", "logprobs", "stream",
        "stream_options", "logit_bias", "presence_penalty", "frequency_penalty", "min_tokens",
        "stop_token_ids", "user", "response_format", "suffix", "best_of", "max_completion_tokens",
        "top_logprobs", "chat_template_kwargs", "add_generation_prompt", "continue_final_message",
    )
}  # fmt: skip
model_names = st.just("alphabet") | openai_values
openai_requests = st.one_of(
    st.tuples(
        st.just("/completions"),
        st.fixed_dictionaries(
            {"model": model_names, "prompt": st.text(max_size=8) | openai_values},
            optional={"echo": openai_values, **sampling_fields},
        ),
    ),
    st.tuples(
        st.just("/chat/completions"),
        st.fixed_dictionaries(
            {"model": model_names, "messages": messages | openai_values}, optional=sampling_fields
        ),
    ),
    st.tuples(
        st.just("/embeddings"),
        st.fixed_dictionaries(
            {"model": model_names, "input": st.text(max_size=8) | openai_values},
            optional={"encoding_format": openai_values, "dimensions": openai_values, "user": openai_values},
        ),
    ),
)


@pytest.fixture(scope="module")
def alphabet_server():
    model_class = str(REPO_ROOT / "tests" / "server" / "alphabet_generator.py") + ":AlphabetModel"
    server = serve("--model-class", model_class, "--model-name", "alphabet", grpc=False)
    yield server
    server.stop()


@FUZZ
@given(request=openai_requests)
def test_any_openai_request_is_answered_without_a_server_error(alphabet_server, request):
    route, body = request
    response = httpx.post(f"{alphabet_server.url}/openai/v1{route}", content=dumps(body), timeout=30)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["message"]
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]"), response.text
