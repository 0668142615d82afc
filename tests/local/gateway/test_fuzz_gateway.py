"""The gateway and the model server behind it fuzzed with hypothesis, as raw bytes on a socket: whatever
a client sends (methods, targets, headers, framing, bodies), each request is answered, every answer is
below 500 and says why when it is a 4xx, and both serve on. Bounded to a few seconds (CI runs it)."""

from __future__ import annotations

import os
import socket
import string

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from tests.local.gateway.test_grpc import running_gateway
from tests.protocol.http1_raw import RawResponse, ResponseReader
from tests.server.processes import start_models_server

HOST = "echo.default.localhost"
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Each strategy mostly well-formed, sometimes not: most requests reach the model server.
methods = st.sampled_from(
    [b"GET", b"POST", b"POST", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"BREW", b"G T"]
)
paths = st.sampled_from(
    [
        b"/v1/models/echo:predict",
        b"/v2/models/echo/infer",
        b"/v2/models/echo/ready",
        b"/v2/health/live",
        b"/v2/models/nope/infer",
        b"http://echo.default.localhost/v1/models/echo:predict",
        b"/v1/models/echo:predict?x=%zz",
        b"*",
    ]
)
odd_targets = st.binary(min_size=1, max_size=40).filter(lambda t: not set(t) & set(b" \r\n"))
targets = st.integers(0, 9).flatmap(lambda draw: odd_targets if draw == 0 else paths)
token = st.text(string.ascii_letters + string.digits + "-_.!#$%&'*+^`|~", min_size=1, max_size=16)
header_names = token.map(str.encode) | st.sampled_from(
    [b"Content-Type", b"Expect", b"Connection", b"Upgrade", b"TE", b"Trailer", b"X-Request-Id", b"Host"]
)
text_values = st.text(string.ascii_letters + string.digits + string.punctuation + " ", max_size=30).map(
    str.encode
)
odd_values = st.binary(max_size=20).filter(lambda v: not set(v) & set(b"\r\n"))
header_values = st.integers(0, 19).flatmap(lambda draw: odd_values if draw == 0 else text_values)
bodies = st.binary(max_size=300) | st.sampled_from([b'{"instances": [[1, 2]]}', b'{"inputs": []}'])
framings = st.sampled_from(["length", "short-length", "chunked", "bad-chunked", "none"])


def request(method: bytes, target: bytes, headers: list, body: bytes, framing: str) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + HOST.encode()]
    lines += [name + b": " + value for name, value in headers]
    if framing == "length":
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "short-length":  # what is left over reads as the next request
        lines.append(b"Content-Length: %d" % (len(body) // 2))
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    elif framing == "bad-chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def servers():
    """The ports of the gateway and of the model server behind it."""
    server = start_models_server()
    try:
        table = RouteTable({HOST: Route((Backend("echo-1", (f"127.0.0.1:{server.http_port}",)),))})
        with running_gateway(table, header_timeout=2.0) as gateway:
            yield {"gateway": gateway.port, "model server": server.http_port}
    finally:
        server.stop()


def answers(port: int, data: bytes) -> list[RawResponse]:
    """The responses to `data`, read until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        if data.startswith(b"HEAD "):  # no body follows the head, whatever its Content-Length says
            head = b""
            while b"\r\n\r\n" not in head and (more := sock.recv(65536)):
                head += more
            return [RawResponse(status=int(head.split(b" ", 2)[1]))] if head else []
        reader = ResponseReader(sock)
        while reader.read():
            pass
    return reader.complete


@pytest.mark.parametrize("where", ["gateway", "model server"])
@FUZZ
@given(
    method=methods,
    target=targets,
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    body=bodies,
    framing=framings,
)
def test_any_request_is_answered_without_a_server_error(
    servers, where, method, target, headers, body, framing
):
    responses = answers(servers[where], request(method, target, headers, body, framing))
    assert responses, f"the {where} closed the connection without an answer"
    for response in responses:
        assert response.status < 500, (response.status, response.body)
        if response.status >= 400 and response.header(b"content-type") == b"application/json":
            assert orjson.loads(response.body)["error"]


@pytest.mark.parametrize("where", ["gateway", "model server"])
def test_both_serve_on_after_the_fuzzing(servers, where):
    answer = httpx.post(
        f"http://127.0.0.1:{servers[where]}/v1/models/echo:predict",
        headers={"host": HOST},
        json={"instances": [[1, 2]]},
    )
    assert answer.status_code == 200 and answer.json() == {"predictions": [[1, 2]]}
