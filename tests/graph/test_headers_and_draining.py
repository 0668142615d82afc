"""PROPAGATE_HEADERS, and the router's draining on SIGTERM."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest
from conftest import graph, sequence

from modelplane.graph.headers import HeaderPropagator, canonical_header_name, compile_header_patterns

INCOMING = [
    (b"host", b"router"),
    (b"content-length", b"2"),
    (b"test-header-1", b"one"),
    (b"test-header-2", b"two"),
    (b"test-header-2", b"again"),
    (b"authorization", b"Bearer x"),
    (b"x-request-id", b"abc"),
]


def rendered(value: str | None) -> list[str]:
    patterns, _ = compile_header_patterns(value)
    return HeaderPropagator(patterns).render(INCOMING).decode().splitlines()


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (None, ["Content-Type: application/json"]),
        ("", ["Content-Type: application/json"]),
        ("Test-Header-1", ["Test-Header-1: one", "Content-Type: application/json"]),
        (
            "Test-Header-*,Auth*",
            [
                "Test-Header-1: one",
                "Test-Header-2: two",
                "Test-Header-2: again",
                "Authorization: Bearer x",
                "Content-Type: application/json",
            ],
        ),
        ("Test-Header-[0-9,Auth*", ["Authorization: Bearer x", "Content-Type: application/json"]),
        (
            ".*",
            [
                "Test-Header-1: one",
                "Test-Header-2: two",
                "Test-Header-2: again",
                "Authorization: Bearer x",
                "X-Request-Id: abc",
                "Content-Type: application/json",
            ],
        ),
    ],
)
def test_headers_propagate_as_in_kserve(patterns, expected):
    assert rendered(patterns) == expected


def test_a_pattern_that_does_not_compile_is_reported_and_skipped():
    patterns, errors = compile_header_patterns("Test-Header-[0-9,Auth*")
    assert [p.pattern for p in patterns] == ["Auth*"]
    assert len(errors) == 1 and "Test-Header-[0-9" in errors[0]


def test_a_propagated_content_type_wins():
    patterns, _ = compile_header_patterns("Content-Type")
    block = HeaderPropagator(patterns).render([(b"content-type", b"application/x-ndjson")])
    assert block == b"Content-Type: application/x-ndjson\r\n"


def test_canonical_names():
    assert canonical_header_name("x-REQUEST-id") == "X-Request-Id"
    assert canonical_header_name("odd name") == "odd name"


def test_the_router_passes_matching_headers_to_every_step(stub, start_router):
    router = start_router(
        graph(sequence({"serviceUrl": stub.at("/echo")}, {"serviceUrl": stub.at("/echo")})),
        env={"PROPAGATE_HEADERS": "Authorization,X-Trace-*"},
    )
    router.post({}, headers={"Authorization": "Bearer t", "X-Trace-Id": "42", "X-Other": "no"})
    for request in stub.requests():
        headers = {k: v for k, v in request["headers"]}
        assert headers["authorization"] == "Bearer t"
        assert headers["x-trace-id"] == "42"
        assert headers["content-type"] == "application/json"
        assert "x-other" not in headers


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CONSOLE_TRACING = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}


def test_the_trace_context_passes_to_the_steps_unchanged_when_the_router_does_not_trace(stub, start_router):
    router = start_router(
        graph(sequence({"serviceUrl": stub.at("/echo")})), env={"OTEL_SDK_DISABLED": "true"}
    )
    router.post({}, headers={"traceparent": TRACEPARENT, "tracestate": "a=b", "X-Other": "no"})
    (request,) = stub.requests()
    headers = dict(request["headers"])
    assert (headers["traceparent"], headers["tracestate"]) == (TRACEPARENT, "a=b")
    assert "x-other" not in headers


def test_a_tracing_router_names_its_own_span_to_the_steps(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})), env=CONSOLE_TRACING)
    router.post({}, headers={"traceparent": TRACEPARENT, "tracestate": "a=b"})
    (request,) = stub.requests()
    headers = dict(request["headers"])
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACEPARENT.split("-")[1], "01")
    assert parent_id != TRACEPARENT.split("-")[2]
    assert headers["tracestate"] == "a=b"


def test_a_trace_the_router_begins_unsampled_goes_on_unsampled(stub, start_router):
    """As at the gateway: the steps learn the decision, and do not trace what the router did not."""
    router = start_router(
        graph(sequence({"serviceUrl": stub.at("/echo")})),
        env={**CONSOLE_TRACING, "OTEL_TRACES_SAMPLER": "always_off"},
    )
    router.post({})
    (request,) = stub.requests()
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", dict(request["headers"])["traceparent"])


def test_sigterm_drains_then_stops(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})), drain_seconds=2)
    assert router.client.get("/readyz").status_code == 200
    router.proc.send_signal(signal.SIGTERM)

    readyz = router.client.get("/readyz")
    while readyz.status_code == 200:  # the signal may take a moment to land
        time.sleep(0.05)
        readyz = router.client.get("/readyz")
    assert (readyz.status_code, readyz.text) == (503, "shutting down\n")
    # While draining it still serves the graph.
    assert router.post({"still": "served"}).json() == {"still": "served"}

    assert router.proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(router.url + "/readyz")
