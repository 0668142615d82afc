"""End to end: generative services on `modelplane up`. Streamed answers through the gateway, a stream
the client abandons, scale from zero and the autoscaler's count during a stream, a canary, the vLLM
metrics through the gateway, an InferenceGraph whose step is an OpenAI endpoint, and a model from
hf:// on an offline machine.

The services run tests/server/alphabet_generator.py in `modelplane serve`: it continues a prompt with
the next letters of the alphabet, one token per ALPHABET_STEP_SECONDS, and its V1 predict tells how many
generations are running and how many were stopped before their end. The first service fetches that file
from hf://, out of a Hugging Face cache filled by hand, with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import json
import re
import shutil

import httpx
import openai
import pytest

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, kill_leftovers, wait_until
from tests.storage.helpers import hub_cache_repository

MODEL = REPO_ROOT / "tests" / "server" / "alphabet_generator.py"
WINDOW = {"autoscaling.knative.dev/window": "6s"}  # the shortest stable window Knative allows


def host(name: str) -> str:
    return f"{name}.default.localhost"


def alphabet_service(
    name: str,
    step_seconds: float,
    annotations: dict | None = None,
    storage_uri: str = "pvc://alphabet",
    **predictor,
) -> dict:
    container = {
        "name": "kserve-container",
        "image": "modelplane:latest",
        "command": ["modelplane", "serve"],
        "args": [
            "--model-class=/mnt/models/alphabet_generator.py:AlphabetModel",
            "--model-name=alphabet",
            "--http-port=8080",
        ],
        "env": [
            {"name": "STORAGE_URI", "value": storage_uri},
            {"name": "ALPHABET_STEP_SECONDS", "value": str(step_seconds)},
        ],
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
        "spec": {"predictor": {**predictor, "containers": [container]}},
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-home")
    (home / "pvc" / "alphabet").mkdir(parents=True)
    shutil.copy(MODEL, home / "pvc" / "alphabet" / MODEL.name)
    hub_cache_repository(
        home / "hf-home" / "hub", "tiny-org/alphabet", {MODEL.name: MODEL.read_bytes()}, commit="a" * 40
    )
    options = ("--scale-to-zero-grace-period", "1s", "--autoscaler-tick", "0.5s")
    with pytest.MonkeyPatch.context() as env:  # the environment of `modelplane up`: an offline machine
        env.setenv("HF_HOME", str(home / "hf-home"))
        env.setenv("HF_HUB_OFFLINE", "1")
        env.delenv("HF_HUB_CACHE", raising=False)
        platform = PlatformProcess(home, *options).start()
    try:
        platform.apply(alphabet_service("alphabet", 0.5, storage_uri="hf://tiny-org/alphabet"))
        platform.cli("wait", "--for=condition=Ready", "isvc/alphabet", "--timeout=300s")
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def generations(platform: PlatformProcess, name: str) -> dict:
    response = platform.request("POST", host(name), "/v1/models/alphabet:predict", json={"instances": [0]})
    assert response.status_code == 200, response.text
    return response.json()


def stream(platform: PlatformProcess, name: str, max_tokens: int, prompt: str = "a"):
    body = {"model": "alphabet", "prompt": prompt, "max_tokens": max_tokens, "stream": True}
    return httpx.stream(
        "POST",
        f"{platform.gateway_url}/openai/v1/completions",
        json=body,
        headers={"host": host(name)},
        timeout=120,
    )


def texts(response: httpx.Response):
    """The text of each event of a streamed completion, as it arrives; "[DONE]" at the end."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            yield data if data == "[DONE]" else json.loads(data)["choices"][0]["text"]


def metric(platform: PlatformProcess, metrics_host: str, name: str) -> float | None:
    """One sample of the replica's /metrics, read through the gateway."""
    text = platform.request("GET", metrics_host, "/metrics").text
    match = re.search(rf'^{re.escape(name)}{{model_name="alphabet"}} (\S+)$', text, re.MULTILINE)
    return float(match[1]) if match else None


def test_events_pass_the_gateway_as_the_replica_writes_them(platform):
    with stream(platform, "alphabet", max_tokens=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        received = texts(response)
        assert next(received) == "b"
        # Were the stream held back in the gateway, the generation would have ended by now.
        assert generations(platform, "alphabet")["running"] == 1
        assert metric(platform, host("alphabet"), "vllm:num_requests_running") == 1
        assert next(received) == "c"


def test_a_stream_the_client_abandons_stops_its_generation(platform):
    before = generations(platform, "alphabet")["stopped_early"]
    with stream(platform, "alphabet", max_tokens=20) as response:
        received = texts(response)
        assert next(received) == "b"
    wait_until(
        lambda: generations(platform, "alphabet") == {"running": 0, "stopped_early": before + 1},
        "the generation to stop",
        platform,
    )


def test_the_openai_client_streams_through_the_gateway(platform):
    client = openai.OpenAI(
        base_url=f"{platform.gateway_url}/openai/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"Host": host("alphabet")},
    )
    with client:
        chunks = list(
            client.completions.create(
                model="alphabet",
                prompt="w",
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        # A field the replica ignores is said in a Warning header, which the gateway passes on.
        raw = client.completions.with_raw_response.create(
            model="alphabet", prompt="w", max_tokens=1, stream=True, user="someone"
        )
    assert [chunk.choices[0].text for chunk in chunks[:-1]] == ["x", "y", "z"]
    assert chunks[-1].usage.completion_tokens == 3
    assert raw.headers.get_list("warning") == [
        '299 - "request field \\"user\\" is ignored: this server keeps no record of end users '
        "(OpenAI's abuse monitoring reads it)\""
    ]


def test_the_vllm_metrics_are_served_through_the_gateway(platform):
    before = metric(platform, host("alphabet"), "vllm:generation_tokens_total") or 0
    answer = platform.request(
        "POST",
        host("alphabet"),
        "/openai/v1/completions",
        json={"model": "alphabet", "prompt": "abc", "max_tokens": 2},
    )
    assert answer.status_code == 200, answer.text
    assert metric(platform, host("alphabet"), "vllm:generation_tokens_total") == before + 2
    component = host("alphabet-predictor")  # the component's own host serves the same replica
    assert metric(platform, component, "vllm:prompt_tokens_total") >= 3
    assert metric(platform, component, "vllm:time_to_first_token_seconds_count") >= 1
    assert metric(platform, component, "vllm:time_per_output_token_seconds_count") >= 1
    assert metric(platform, component, "vllm:e2e_request_latency_seconds_count") >= 1
    assert metric(platform, component, "vllm:num_requests_waiting") == 0


def scale_downs(platform: PlatformProcess, revision: str) -> int:
    return platform.log().count(f"autoscaler {revision}: 1 -> 0 replicas")


def test_a_stream_wakes_a_revision_at_zero_and_keeps_it_while_it_streams(platform):
    zero = alphabet_service("zero", 0.4, WINDOW, minReplicas=0, maxReplicas=1, containerConcurrency=1)
    platform.apply(zero)
    platform.cli("wait", "--for=condition=Ready", "isvc/zero", "--timeout=300s")
    revision = "zero-predictor-00001"
    wait_until(lambda: scale_downs(platform, revision) == 1, "the revision to go to zero", platform)

    # 25 tokens of 0.4 s: the stream lasts 10 s, longer than the 6 s window and the 1 s grace period
    # after which an idle revision goes to zero. Counted as a request in flight, it keeps its replica.
    with stream(platform, "zero", max_tokens=25) as response:
        assert response.status_code == 200
        letters = list(texts(response))
    assert letters == [chr(c) for c in range(ord("b"), ord("z") + 1)] + ["[DONE]"]
    assert f"autoscaler {revision}: 0 -> 1 replicas: scale from zero" in platform.log()
    assert scale_downs(platform, revision) == 1, "the revision went to zero while it streamed"

    # An abandoned stream: the generation stops and the one slot is free for the next request.
    with stream(platform, "zero", max_tokens=25) as response:
        received = texts(response)
        assert [next(received), next(received)] == ["b", "c"]
    answer = platform.request(
        "POST",
        host("zero"),
        "/openai/v1/completions",
        json={"model": "alphabet", "prompt": "x", "max_tokens": 2},
    )
    assert answer.status_code == 200 and answer.json()["choices"][0]["text"] == "yz"
    wait_until(
        lambda: generations(platform, "zero") == {"running": 0, "stopped_early": 1}, "the stop", platform
    )
    # Neither stream is in flight once it is over: the revision goes back to zero.
    wait_until(lambda: scale_downs(platform, revision) == 2, "zero after the streams", platform)
    platform.cli("delete", "isvc", "zero")


def test_a_canary_splits_streams_between_its_revisions(platform):
    platform.apply(alphabet_service("split", 0))
    platform.cli("wait", "--for=condition=Ready", "isvc/split", "--timeout=300s")
    platform.apply(alphabet_service("split", 0.01, canaryTrafficPercent=50))

    def traffic() -> list:
        found = json.loads(platform.cli("get", "isvc", "split", "-o", "json").stdout)
        predictor = (found.get("status") or {}).get("components", {}).get("predictor", {})
        return sorted((t.get("tag"), t["revisionName"], t["percent"]) for t in predictor.get("traffic", []))

    expected = [("latest", "split-predictor-00002", 50), ("prev", "split-predictor-00001", 50)]
    wait_until(lambda: traffic() == expected, "the canary split", platform)
    for _ in range(16):
        with stream(platform, "split", max_tokens=3) as response:
            assert list(texts(response)) == ["b", "c", "d", "[DONE]"]
    # Each revision's replica generated some of them (by its own metrics, read at its tag's host).
    for tag in ("latest", "prev"):
        tokens = metric(platform, f"{tag}-split-predictor.default.localhost", "vllm:generation_tokens_total")
        assert tokens and tokens % 3 == 0, (tag, tokens)
    platform.cli("delete", "isvc", "split")


GRAPH = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "InferenceGraph",
    "metadata": {"name": "writer", "namespace": "default"},
    "spec": {
        "nodes": {
            "root": {
                "routerType": "Sequence",
                # As written for a cluster: no port. It reaches the service through the gateway.
                "steps": [
                    {
                        "name": "complete",
                        "serviceUrl": "http://alphabet.default.localhost/openai/v1/completions",
                    }
                ],
            }
        }
    },
}


def test_an_inference_graph_step_calls_an_openai_endpoint(platform):
    platform.apply(GRAPH)
    platform.cli("wait", "--for=condition=Ready", "ig/writer", "--timeout=300s")
    body = {"model": "alphabet", "prompt": "p", "max_tokens": 3}
    answer = platform.request("POST", host("writer"), "/", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["text"] == "qrs"
    assert answer.json()["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}

    # The openai client, pointed at the graph, gets the step's completion.
    client = openai.OpenAI(
        base_url=f"{platform.gateway_url}/openai/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"Host": host("writer")},
    )
    with client:
        assert client.completions.create(model="alphabet", prompt="u", max_tokens=2).choices[0].text == "vw"

    # A step's error is the graph's answer, in OpenAI's form.
    refused = platform.request("POST", host("writer"), "/", json={"model": "nope", "prompt": "a"})
    assert refused.status_code == 404 and refused.json()["error"]["param"] == "model"

    # As in KServe, the router answers with the step's whole response: a stream comes back at once,
    # every event in one body.
    streamed = platform.request("POST", host("writer"), "/", json={**body, "stream": True})
    assert streamed.status_code == 200
    events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) == 4
    platform.cli("delete", "ig", "writer")


def test_a_model_from_hf_comes_from_the_hugging_face_cache_of_an_offline_machine(platform):
    log = platform.cli("logs", "alphabet").stdout
    assert "fetching hf://tiny-org/alphabet from the Hugging Face cache" in log
    assert f"is commit {'a' * 40} in the Hugging Face cache" in log

    platform.apply(alphabet_service("missing", 0, storage_uri="hf://tiny-org/missing"))

    def failure() -> dict | None:
        found = json.loads(platform.cli("get", "isvc", "missing", "-o", "json").stdout)
        return ((found.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo")

    info = wait_until(failure, "the storage initializer to fail", platform)
    assert info["location"] == "storage-initializer"
    assert "tiny-org/missing at revision 'main' is not in the Hugging Face cache" in info["message"]
    platform.cli("delete", "isvc", "missing")
