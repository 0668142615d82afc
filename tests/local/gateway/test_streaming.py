"""Streamed answers through the gateway: Server-Sent Events from a generating replica pass unbuffered,
a client that leaves stops the generation and frees its slot, a stream counts as one request in flight
while it lasts, and a request that waited for a replica streams like any other.

The replica is a real `modelplane serve` of tests/server/alphabet_generator.py, whose V1 predict tells
how many generations are running and how many were stopped before their end.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time

import httpx
import openai
import pytest

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread
from tests.server.processes import REPO_ROOT, serve

MODEL_CLASS = str(REPO_ROOT / "tests" / "server" / "alphabet_generator.py") + ":AlphabetModel"
HOST = "alphabet.default.localhost"
REVISION = "alphabet-predictor-00001"
# Each token takes this long: a whole answer of 20 tokens takes 10 s, its first event half a second.
STEP_SECONDS = 0.5


@pytest.fixture(scope="module")
def replica():
    process = serve(
        "--model-class",
        MODEL_CLASS,
        "--model-name",
        "alphabet",
        grpc=False,
        env={"ALPHABET_STEP_SECONDS": str(STEP_SECONDS)},
    )
    yield process
    process.stop()


@contextlib.contextmanager
def running_gateway(*replicas: str, container_concurrency: int = 0, timeout_seconds: float | None = None):
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    route(gateway, *replicas, container_concurrency=container_concurrency, timeout_seconds=timeout_seconds)
    try:
        yield gateway
    finally:
        thread.stop()


def route(
    gateway, *replicas: str, container_concurrency: int = 0, timeout_seconds: float | None = None
) -> None:
    backend = Backend(
        REVISION, replicas, container_concurrency=container_concurrency, timeout_seconds=timeout_seconds
    )
    gateway.update_routes(RouteTable({HOST: Route((backend,))}))


def address(replica) -> str:
    return replica.url.removeprefix("http://")


def generations(replica) -> dict:
    """{"running": ..., "stopped_early": ...}, asked of the replica itself."""
    return httpx.post(f"{replica.url}/v1/models/alphabet:predict", json={"instances": [0]}, timeout=30).json()


def eventually(condition, what: str, deadline: float = 30.0):
    give_up = time.monotonic() + deadline
    while not (result := condition()):
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)
    return result


def stream(gateway, max_tokens: int = 20):
    body = {"model": "alphabet", "prompt": "a", "max_tokens": max_tokens, "stream": True}
    return httpx.stream(
        "POST", f"{gateway.url}/openai/v1/completions", json=body, headers={"host": HOST}, timeout=60
    )


def events(response: httpx.Response):
    """The data of each Server-Sent Event, as it arrives."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line.removeprefix("data: ")


def text_of(event: str) -> str:
    return json.loads(event)["choices"][0]["text"]


def test_each_event_reaches_the_client_while_the_replica_is_still_generating(replica):
    with running_gateway(address(replica)) as gateway, stream(gateway) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        received = events(response)
        assert text_of(next(received)) == "b"
        # Had the gateway held the answer back, the generation would be over by now.
        assert generations(replica)["running"] == 1
        assert text_of(next(received)) == "c"
        assert generations(replica)["running"] == 1


def complete(gateway, prompt: str, max_tokens: int) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/openai/v1/completions",
        json={"model": "alphabet", "prompt": prompt, "max_tokens": max_tokens},
        headers={"host": HOST},
        timeout=60,
    )


# "warm": the gateway holds an idle connection to the replica and forwards the stream from the client's
# read callback; "cold": it connects first, in a task. A client that leaves must stop both.
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_client_that_abandons_a_stream_stops_the_generation_and_frees_its_slot(replica, warm):
    before = generations(replica)["stopped_early"]
    with running_gateway(address(replica), container_concurrency=1) as gateway:
        if warm:
            assert complete(gateway, "a", 1).status_code == 200
        with stream(gateway) as response:
            received = events(response)  # (a generator dropped would close the response on its own)
            assert text_of(next(received)) == "b"
            assert gateway.revision_stats()[REVISION].in_flight == 1
        # The client is gone after one token: the replica sees the disconnect and stops generating.
        eventually(lambda: generations(replica) == {"running": 0, "stopped_early": before + 1}, "the stop")
        eventually(lambda: gateway.revision_stats()[REVISION].in_flight == 0, "the slot given back")
        # The revision takes one request at a time: the next one is served at once.
        answer = complete(gateway, "x", 2)
        assert answer.status_code == 200 and answer.json()["choices"][0]["text"] == "yz"


def test_a_stream_is_one_request_in_flight_until_its_last_event(replica):
    with running_gateway(address(replica)) as gateway:
        with stream(gateway, max_tokens=3) as response:
            received = events(response)
            next(received)
            stats = gateway.revision_stats()[REVISION]
            assert (stats.in_flight, stats.requests_total) == (1, 1)
            assert [text_of(event) for event in received if event != "[DONE]"] == ["c", "d"]
        eventually(lambda: gateway.revision_stats()[REVISION].in_flight == 0, "the stream to be counted out")
        stats = gateway.revision_stats()[REVISION]
        # The time integral of the requests in flight grew while the stream lasted, and stopped with it.
        assert stats.concurrency_seconds > 0
        later = gateway.revision_stats()[REVISION]
        assert later.concurrency_seconds == stats.concurrency_seconds, "nothing is in flight any more"


def test_a_stream_counts_as_load_for_the_revisions_timeout_at_most(replica):
    """A stream held open (here 10 s of tokens) stops counting for the autoscaler after the timeout, so
    held streams cannot keep a revision scaled up; it still holds its slot until it ends."""
    with running_gateway(address(replica), timeout_seconds=1.0) as gateway, stream(gateway) as response:
        received = events(response)
        assert text_of(next(received)) == "b"

        def counted_out():
            before = gateway.revision_stats()[REVISION]
            time.sleep(0.1)
            after = gateway.revision_stats()[REVISION]
            return after if after.concurrency_seconds == before.concurrency_seconds else None

        stats = eventually(counted_out, "the stream to stop counting as load")
        assert stats.in_flight == 1
        assert stats.concurrency_seconds == 1.0
        assert generations(replica)["running"] == 1


def test_a_request_that_waited_for_a_replica_streams_event_by_event(replica):
    received: queue.Queue = queue.Queue()

    def client(gateway) -> None:
        try:
            with stream(gateway, max_tokens=4) as response:
                for event in events(response):
                    received.put(event)
                    if event != "[DONE]":
                        # Wait for the test to look at the replica before taking the next event.
                        received.join()
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            received.put(exc)

    with running_gateway() as gateway:  # a revision at zero
        thread = threading.Thread(target=client, args=(gateway,), daemon=True)
        thread.start()
        eventually(lambda: gateway.revision_stats()[REVISION].queued == 1, "the request to wait")
        route(gateway, address(replica))
        first = received.get(timeout=60)
        assert text_of(first) == "b", first
        assert generations(replica)["running"] == 1
        received.task_done()
        rest = []
        while (event := received.get(timeout=60)) != "[DONE]":
            rest.append(text_of(event))
            received.task_done()
        thread.join(30)
    assert rest == ["c", "d", "e"]


def test_the_openai_client_streams_a_chat_through_the_gateway(replica):
    with running_gateway(address(replica)) as gateway:
        client = openai.OpenAI(
            base_url=f"{gateway.url}/openai/v1",
            api_key="unused",
            max_retries=0,
            default_headers={"Host": HOST},
        )
        with client:
            chunks = client.chat.completions.create(
                model="alphabet", messages=[{"role": "user", "content": "w"}], max_tokens=3, stream=True
            )
            content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert content == "uvw"  # the chat template ends with "<assistant>": its last letter is t
