"""The gateway as an HTTP/1.1 proxy: streaming, keep-alive, headers and what happens when things break."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httptools
import httpx
import orjson
import pytest

from modelplane.local.gateway.http1.exchange import MAY_BE_STALE_AFTER, STALE_CLOSE_WINDOW
from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread

APP = Path(__file__).with_name("upstream_app.py")
HOST = "echo.default.localhost"


@contextlib.contextmanager
def upstream(name: str, *flags: str):
    process = subprocess.Popen([sys.executable, str(APP), name, *flags], stdout=subprocess.PIPE, text=True)
    try:
        yield f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def running_gateway(routes: dict[str, Backend]):
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(RouteTable({host: Route((backend,)) for host, backend in routes.items()}))
    try:
        yield gateway
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def echo():
    with upstream("echo-1") as address:
        yield address


@pytest.fixture
def gateway(echo):
    with running_gateway({HOST: Backend("echo-1", (echo,))}) as gateway:
        yield gateway


@pytest.fixture
def client(gateway):
    with httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client:
        yield client


def eventually(condition, what: str, deadline: float = 20.0):
    """Waits for a condition the test cannot observe directly (another process catching up)."""
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class RawConnection:
    """A client socket that sends exact bytes and parses the responses that come back."""

    def __init__(self, gateway) -> None:
        self.sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
        self.responses: list[dict] = []
        self._parser = httptools.HttpResponseParser(self)
        self._current: dict = {}

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int = 1) -> list[dict]:
        while len(self.responses) < count:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the gateway closed the connection")
            self._parser.feed_data(data)
        taken, self.responses = self.responses[:count], self.responses[count:]
        return taken

    def read_until_closed(self) -> bytes:
        chunks = []
        while data := self.sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()

    def on_message_begin(self) -> None:
        self._current = {"headers": {}, "body": b""}

    def on_header(self, name: bytes, value: bytes) -> None:
        self._current["headers"][name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self._current["status"] = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._current["body"] += body

    def on_message_complete(self) -> None:
        self.responses.append(self._current)


@pytest.fixture
def raw(gateway):
    connection = RawConnection(gateway)
    yield connection
    connection.close()


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_request_id_is_added_when_missing_and_kept_when_given(client):
    response = client.get("/v1/models/echo")
    sent = response.json()["headers"]["x-request-id"]
    assert uuid.UUID(sent).version == 4
    assert response.headers["x-request-id"] == sent
    given = client.get("/v1/models/echo", headers={"x-request-id": "abc-123"})
    assert given.json()["headers"]["x-request-id"] == "abc-123"
    assert given.json()["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_hop_by_hop_headers_stay_at_the_gateway(raw):
    raw.send(
        request(
            "GET",
            "/v1/models/echo",
            "Connection: keep-alive, X-Private",
            "X-Private: secret",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "Proxy-Authorization: Basic eDp5",
            "X-Kept: yes",
        )
    )
    [response] = raw.read()
    seen = httpx.Response(200, content=response["body"]).json()["headers"]
    for name in ("x-private", "keep-alive", "te", "proxy-authorization"):
        assert name not in seen
    assert seen["x-kept"] == "yes"


def test_upstream_connections_are_pooled_across_client_connections(gateway):
    ports = set()
    for _ in range(10):
        with httpx.Client(base_url=gateway.url, headers={"host": HOST}) as fresh:
            ports.add(fresh.get("/v1/models/echo").json()["client_port"])
    assert len(ports) == 1


def test_keep_alive_and_pipelined_requests_are_answered_in_order(raw):
    raw.send(
        b"".join(request("POST", f"/v1/models/m{index}:predict", body=b"%d" % index) for index in range(3))
    )
    responses = raw.read(3)
    paths = [httpx.Response(200, content=response["body"]).json()["path"] for response in responses]
    assert paths == ["/v1/models/m0:predict", "/v1/models/m1:predict", "/v1/models/m2:predict"]
    raw.send(request("GET", "/v1/models/again"))
    [again] = raw.read()
    assert again["status"] == 200


def test_a_chunked_request_body_is_streamed_through(raw):
    parts = [b"a" * 10, b"b" * 70000, b"c"]
    body = b"".join(b"%x\r\n%b\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    raw.send(request("POST", "/v1/models/echo:predict", "Transfer-Encoding: chunked") + body)
    [response] = raw.read()
    seen = httpx.Response(200, content=response["body"]).json()
    assert seen["body_length"] == 70011
    assert seen["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert seen["headers"]["transfer-encoding"] == "chunked"


def test_a_chunked_response_is_relayed_chunked(raw, client):
    raw.send(request("GET", "/chunked?n=5"))
    [response] = raw.read()
    assert response["headers"]["transfer-encoding"] == "chunked"
    assert response["body"] == b"chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;"
    assert client.get("/chunked?n=2").text == "chunk-0;chunk-1;"


def test_large_bodies_stream_both_ways(client):
    block = bytes(range(256)) * 4096  # 1 MiB

    def upload():
        for _ in range(16):
            yield block

    seen = client.post("/v1/models/echo:predict", content=upload()).json()
    assert seen["body_length"] == 16 * len(block)
    assert seen["body_sha256"] == hashlib.sha256(block * 16).hexdigest()
    size = 16 * 1024 * 1024
    download = client.get(f"/bytes?n={size}")
    assert download.content == (bytes(range(256)) * (size // 256))


def test_expect_100_continue_is_answered_before_the_body(raw):
    raw.send(request("POST", "/v1/models/echo:predict", "Expect: 100-continue", "Content-Length: 5"))
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        interim += raw.sock.recv(1)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    raw.send(b"hello")
    [response] = raw.read()
    seen = httpx.Response(200, content=response["body"]).json()
    assert seen["body_length"] == 5
    assert "expect" not in seen["headers"]


def test_head_gets_headers_only_and_the_connection_stays_usable(raw):
    raw.send(request("HEAD", "/bytes?n=100"))
    head = b""  # read byte by byte: a parser cannot know that a HEAD response has no body
    while not head.endswith(b"\r\n\r\n"):
        head += raw.sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 100\r\n" in head.lower()
    raw.send(request("GET", "/v1/models/after-head"))
    [response] = raw.read()
    assert httpx.Response(200, content=response["body"]).json()["path"] == "/v1/models/after-head"


def test_connection_close_from_the_client_is_honoured(raw):
    raw.send(request("GET", "/v1/models/echo", "Connection: close"))
    data = raw.read_until_closed()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in data.lower()


def test_what_follows_a_closing_request_is_not_read(raw):
    """After `Connection: close` no further request is read (a GET's body sent without a length, say)."""
    raw.send(request("GET", "/first", "Connection: close") + b'{"not": "a request"}')
    answer = raw.read_until_closed()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1


def test_a_malformed_request_after_good_ones_is_refused_after_their_answers(raw):
    raw.send(request("GET", "/first") + request("GET", "/second") + b"NOT HTTP AT ALL\r\n\r\n")
    answer = raw.read_until_closed()
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert answer.rindex(b"HTTP/1.1 400 ") > answer.rindex(b"HTTP/1.1 200 ")
    assert b"malformed HTTP request" in answer


def test_a_request_whose_body_is_malformed_before_it_went_on_is_a_400(raw):
    raw.send(request("POST", "/echo", "Transfer-Encoding: chunked") + b"zz\r\n")
    answer = raw.read_until_closed()
    assert answer.startswith(b"HTTP/1.1 400 ") and b"chunk size" in answer


def test_an_absolute_form_target_routes_by_its_host(raw):
    raw.send(
        b"GET http://%s/where HTTP/1.1\r\nHost: elsewhere.localhost\r\nConnection: close\r\n\r\n"
        % HOST.encode()
    )
    (answer,) = raw.read()
    assert answer["status"] == 200 and orjson.loads(answer["body"])["path"] == "/where"


def test_an_http10_client_gets_its_response_and_a_close(raw):
    raw.send(f"GET /v1/models/echo HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    data = raw.read_until_closed()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"replica":"echo-1"' in data


def test_a_malformed_request_is_a_400(raw):
    raw.send(b"GET /x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nBad Header Line\r\n\r\n")
    data = raw.read_until_closed()
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b'{"error":"malformed HTTP request' in data


# "warm": an idle pooled connection to the replica exists, so the request is forwarded at once from
# the read callback; "cold": the gateway has to connect first, in a task. Both paths must clean up.
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_client_disconnect_cancels_the_upstream_request(echo, warm):
    with running_gateway({HOST: Backend("echo-1", (echo,))}) as gateway:
        if warm:
            httpx.get(f"{gateway.url}/v1/models/echo", headers={"host": HOST})
        before = httpx.get(f"http://{echo}/stats").json()["disconnects"]
        raw = RawConnection(gateway)
        raw.send(request("GET", "/slow?seconds=60"))
        # /stats counts itself, so two in flight means the slow request has reached the replica.
        eventually(lambda: httpx.get(f"http://{echo}/stats").json()["in_flight"] == 2, "the replica has it")
        assert gateway.revision_stats()["echo-1"].in_flight == 1
        raw.close()
        eventually(
            lambda: httpx.get(f"http://{echo}/stats").json()["disconnects"] == before + 1,
            "the replica sees it",
        )
        eventually(lambda: gateway.revision_stats()["echo-1"].in_flight == 0, "the slot is given back")


def test_a_replica_crash_mid_response_cuts_the_client_response():
    with upstream("crashing") as crashing, upstream("healthy") as healthy:
        routes = {
            HOST: Backend("crashing-1", (crashing,)),
            "ok.default.localhost": Backend("ok-1", (healthy,)),
        }
        with running_gateway(routes) as gateway:
            assert httpx.get(f"{gateway.url}/warm-up", headers={"host": HOST}).status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(f"{gateway.url}/crash", headers={"host": HOST}, timeout=30)
            after = httpx.get(f"{gateway.url}/crash", headers={"host": HOST}, timeout=30)
            assert after.status_code == 502
            assert "crashing-1" in after.json()["error"]
            assert httpx.get(f"{gateway.url}/x", headers={"host": "ok.default.localhost"}).status_code == 200
            eventually(
                lambda: gateway.revision_stats()["crashing-1"].in_flight == 0, "the slot is given back"
            )


def test_a_replica_crash_after_its_head_is_a_502():
    with (
        upstream("crashing") as crashing,
        running_gateway({HOST: Backend("crashing-1", (crashing,))}) as gateway,
    ):
        response = httpx.get(f"{gateway.url}/crash-after-head", headers={"host": HOST}, timeout=30)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error.startswith(f"replica {crashing} of revision crashing-1 ")  # closed or reset the connection
    assert error.endswith(" before the response was complete")


def free_port_nobody_listens_on() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refusing_replica_is_skipped_and_a_dead_revision_is_a_502(echo):
    dead = f"127.0.0.1:{free_port_nobody_listens_on()}"
    routes = {HOST: Backend("echo-1", (dead, echo)), "dead.default.localhost": Backend("dead-1", (dead,))}
    with running_gateway(routes) as gateway:
        with httpx.Client(base_url=gateway.url, headers={"host": HOST}) as client:
            for _ in range(10):
                assert client.post("/v1/models/echo:predict", content=b"{}").json()["replica"] == "echo-1"
        response = httpx.post(
            f"{gateway.url}/x", headers={"host": "dead.default.localhost"}, content=b"{}", timeout=60
        )
    assert response.status_code == 502
    assert response.json()["error"].startswith(f"cannot connect to replica {dead} of revision dead-1")


def test_a_request_on_a_stale_pooled_connection_is_sent_again():
    """A connection idle for a while may have been closed by the replica as the request went out."""
    with (
        upstream("drops-second", "--raw") as dropping,
        running_gateway({HOST: Backend("raw-1", (dropping,))}) as gateway,
        httpx.Client(base_url=gateway.url, headers={"host": HOST}) as client,
    ):
        first = client.post("/v1/models/raw:predict", content=b"{}")
        time.sleep(MAY_BE_STALE_AFTER + 0.1)  # idle in the pool long enough to have gone stale
        second = client.post("/v1/models/raw:predict", content=b"{}")
    assert first.status_code == second.status_code == 200
    assert first.json()["client_port"] != second.json()["client_port"]


def test_a_request_the_replica_died_on_is_not_sent_to_another():
    """A connection just used that closes on a POST was cut by a replica that died on the request (one
    that runs it out of memory, say): sending it again would only take the next replica down too."""
    with (
        upstream("drops-second", "--raw") as dropping,
        running_gateway({HOST: Backend("raw-1", (dropping,))}) as gateway,
        httpx.Client(base_url=gateway.url, headers={"host": HOST}) as client,
    ):
        assert client.post("/v1/models/raw:predict", content=b"{}").status_code == 200
        second = client.post("/v1/models/raw:predict", content=b"{}")
    assert second.status_code == 502
    assert "before the response was complete" in second.json()["error"]


def test_a_request_a_replica_worked_on_and_died_on_is_not_sent_again_after_an_idle_while():
    """A pooled connection idle long enough to have gone stale, whose replica takes the request and
    dies on it a while later (an OOM kill): the request is not sent to the next replica to kill it too."""
    process = subprocess.Popen(
        [sys.executable, str(APP), "raw-1", "--raw", "--hold"], stdout=subprocess.PIPE, text=True
    )
    try:
        dying = f"127.0.0.1:{int(process.stdout.readline())}"
        with (
            running_gateway({HOST: Backend("raw-1", (dying,))}) as gateway,
            httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client,
            concurrent.futures.ThreadPoolExecutor(1) as pool,
        ):
            assert client.post("/v1/models/raw:predict", content=b"{}").status_code == 200
            time.sleep(MAY_BE_STALE_AFTER + 0.1)  # idle in the pool long enough to have gone stale
            second = pool.submit(client.post, "/v1/models/raw:predict", content=b"{}")
            assert process.stdout.readline() == "held\n"  # the replica has the request
            time.sleep(STALE_CLOSE_WINDOW * 3)  # and works on it a while before it dies
            httpx.get(f"http://{dying}/release")
            answer = second.result()
    finally:
        process.terminate()
        process.wait(10)
    assert answer.status_code == 502, answer.text
    assert "before the response was complete" in answer.json()["error"]


@pytest.mark.parametrize("rerouted", [False, True], ids=["scaled-down", "new-revision"])
def test_a_request_a_stopping_replica_closed_on_goes_to_one_that_serves(echo, rerouted):
    """A replica leaves the routes before it is stopped, and a stopping replica answers what it read:
    one that closes on a request without a word after it left never took the request (it went out
    as the replica closed its idle connections), so the request goes to a replica that serves."""
    process = subprocess.Popen(
        [sys.executable, str(APP), "raw-1", "--raw", "--hold"], stdout=subprocess.PIPE, text=True
    )
    try:
        stopping = f"127.0.0.1:{int(process.stdout.readline())}"
        with (
            running_gateway({HOST: Backend("raw-1", (stopping,))}) as gateway,
            httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client,
            concurrent.futures.ThreadPoolExecutor(1) as pool,
        ):
            assert client.post("/v1/models/raw:predict", content=b"{}").status_code == 200
            second = pool.submit(client.post, "/v1/models/raw:predict", content=b"{}")
            assert process.stdout.readline() == "held\n"  # on the pooled connection, just used
            backend = Backend("echo-1", (echo,)) if rerouted else Backend("raw-1", (echo,))
            gateway.update_routes(RouteTable({HOST: Route((backend,))}))
            httpx.get(f"http://{stopping}/release")
            answer = second.result()
    finally:
        process.terminate()
        process.wait(10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["replica"] == "echo-1"


def test_a_request_a_replica_died_on_is_not_sent_to_another_even_once_it_left_the_routes(echo):
    """The routes name the replicas that died lately: a request one of them closed on may be what
    killed it (it ran it out of memory, say), and it is answered 502 rather than sent on to kill the
    next replica too, also when the gateway learns of the death before it sees the connection close."""
    process = subprocess.Popen(
        [sys.executable, str(APP), "raw-1", "--raw", "--hold"], stdout=subprocess.PIPE, text=True
    )
    try:
        died = f"127.0.0.1:{int(process.stdout.readline())}"
        with (
            running_gateway({HOST: Backend("raw-1", (died,))}) as gateway,
            httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client,
            concurrent.futures.ThreadPoolExecutor(1) as pool,
        ):
            assert client.post("/v1/models/raw:predict", content=b"{}").status_code == 200
            second = pool.submit(client.post, "/v1/models/raw:predict", content=b"{}")
            assert process.stdout.readline() == "held\n"
            routes = {HOST: Route((Backend("raw-1", (echo,)),))}
            gateway.update_routes(RouteTable(routes, crashed=frozenset({died})))
            httpx.get(f"http://{died}/release")
            answer = second.result()
    finally:
        process.terminate()
        process.wait(10)
    assert answer.status_code == 502, answer.text
    assert "before the response was complete" in answer.text


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_replica_too_slow_to_answer_is_a_504(echo, warm):
    with running_gateway({HOST: Backend("slow-1", (echo,), timeout_seconds=0.5)}) as gateway:
        if warm:
            httpx.get(f"{gateway.url}/v1/models/echo", headers={"host": HOST})
        response = httpx.get(f"{gateway.url}/slow?seconds=30", headers={"host": HOST}, timeout=30)
        assert response.status_code == 504
        assert response.json() == {"error": "revision slow-1 did not start responding within 0.5s"}
        eventually(lambda: gateway.revision_stats()["slow-1"].in_flight == 0, "the slot is given back")


def test_idle_client_connections_are_closed():
    thread = GatewayThread(GatewayConfig(port=0, client_idle_timeout=0.2))
    gateway = thread.start()
    try:
        raw = RawConnection(gateway)
        raw.sock.settimeout(30)
        assert raw.read_until_closed() == b""
        raw.close()
    finally:
        thread.stop()


def test_stopping_lets_the_responses_under_way_finish(echo):
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(RouteTable({HOST: Route((Backend("echo-1", (echo,)),))}))
    raw = RawConnection(gateway)
    raw.send(request("GET", "/slow?seconds=0.5"))
    eventually(lambda: gateway.revision_stats()["echo-1"].in_flight == 1, "the request reaches the replica")
    thread.stop()
    data = raw.read_until_closed()
    raw.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"replica":"echo-1"' in data


def test_stopping_answers_a_request_waiting_for_a_revision_at_zero_with_a_503():
    """Nothing will start the revision's first replica once the gateway stops: the request waiting for
    it is answered with the reason, not cut when the drain ends."""
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(RouteTable({HOST: Route((Backend("zero-1", ()),))}))
    raw = RawConnection(gateway)
    raw.send(request("GET", "/v1/models/zero"))
    eventually(lambda: gateway.revision_stats()["zero-1"].queued == 1, "the request waits for a replica")
    thread.stop()
    data = raw.read_until_closed()
    raw.close()
    assert data.startswith(b"HTTP/1.1 503 "), data[:200]
    assert b"the platform is stopping" in data


def test_a_request_sent_as_the_gateway_stops_is_answered_with_a_close(echo, monkeypatch):
    """An idle kept-alive connection whose next request crossed the stop is answered (with
    `Connection: close`), not cut."""
    monkeypatch.setattr("modelplane.local.gateway.server.STOP_LINGER", 30.0)
    thread = GatewayThread(GatewayConfig(port=0))
    gateway = thread.start()
    gateway.update_routes(RouteTable({HOST: Route((Backend("echo-1", (echo,)),))}))
    raw = RawConnection(gateway)
    raw.send(request("GET", "/v1/models/echo"))
    raw.read()  # an idle kept-alive connection
    port = gateway.port
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stopped = pool.submit(thread.stop)
        eventually(lambda: not accepts(port), "the gateway to stop accepting")
        raw.send(request("GET", "/v1/models/echo"))
        data = raw.read_until_closed()
        stopped.result(timeout=60)
    raw.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:200]
    assert b"\r\nconnection: close\r\n" in data.lower()


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


def test_a_port_in_use_is_an_error_at_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        thread = GatewayThread(GatewayConfig(port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="(?i)address already in use"):
            thread.start()


def test_an_upgrade_is_served_as_plain_http_and_the_connection_closes(raw):
    raw.send(request("GET", "/v1/models/echo", "Connection: Upgrade", "Upgrade: websocket"))
    data = raw.read_until_closed()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in data.lower()
    assert b'"upgrade"' not in data.lower()


def test_a_body_that_ends_with_the_replicas_connection_is_rechunked_for_the_client():
    with (
        upstream("raw", "--raw") as raw_replica,
        running_gateway({HOST: Backend("raw-1", (raw_replica,))}) as gateway,
    ):
        connection = RawConnection(gateway)
        try:
            connection.send(request("GET", "/until-close"))
            [response] = connection.read()
            assert response["headers"]["transfer-encoding"] == "chunked"
            assert response["body"] == b"the body, then the end"
            connection.send(request("GET", "/until-close"))  # the client connection stays usable
            [again] = connection.read()
            assert again["body"] == b"the body, then the end"
        finally:
            connection.close()
