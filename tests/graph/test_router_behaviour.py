"""The router's behaviour beyond the e2e scenarios: KServe's edge cases, and where modelplane does better."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from urllib.parse import quote

import httpx
import pytest
from conftest import graph, sequence

INPUT = {"instances": [[1, 2]]}


def reply(
    stub, body: str, status: int = 200, content_type: str = "application/json", delay_ms: int = 0
) -> str:
    path = f"/reply?status={status}&body={quote(body)}&content_type={quote(content_type)}"
    if delay_ms:
        path += f"&delay_ms={delay_ms}"
    return stub.at(path)


def free_port_url() -> str:
    """A URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/models/m:predict"


def metric(router, name: str, **labels: str) -> float:
    text = router.client.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if match and match[1] == name and ",".join(sorted(match[2].split(","))) == wanted:
            return float(match[3])
    return 0.0


def test_every_path_and_method_runs_the_graph(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})))
    for method, path in [("POST", "/v1/models/x:predict"), ("PUT", "/anything?q=1"), ("GET", "/")]:
        response = router.client.request(method, path, content=b'{"a":1}')
        assert (response.status_code, response.json()) == (200, {"a": 1})
    assert {r["path"] for r in stub.requests()} == {"/echo"}


def test_readyz_answers_200_with_an_empty_body(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})))
    response = router.client.get("/readyz")
    assert (response.status_code, response.content) == (200, b"")


def test_sequence_passes_the_previous_response_only_when_data_is_response(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": reply(stub, '{"predictions":[1]}')},
                {"serviceUrl": stub.at("/echo"), "data": "$response"},
                {"serviceUrl": stub.at("/echo"), "data": "$response.predictions"},
            )
        )
    )
    assert router.post(INPUT).json() == INPUT
    bodies = [json.loads(r["body"]) for r in stub.requests()]
    assert bodies == [INPUT, {"predictions": [1]}, INPUT]


def test_map_predictions_to_instances_keeps_other_bodies(stub, start_router):
    router = start_router(
        graph(sequence({"serviceUrl": stub.at("/echo"), "mapPredictionsToInstances": True}))
    )
    cases = [
        ({"predictions": [1, 2], "instances": [9], "other": 1}, {"instances": [1, 2]}),
        ({"Predictions": [3]}, {"instances": [3]}),  # KServe matches the key case-insensitively
        ({"predictions": "text"}, {"predictions": "text"}),
        ({"predictions": []}, {"predictions": []}),
        ([1, 2], [1, 2]),
    ]
    for sent, received in cases:
        assert router.post(sent).json() == received


def test_a_condition_on_the_first_step_is_an_invalid_response(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo"), "condition": "instances"})))
    response = router.post(INPUT)
    assert response.status_code == 500
    assert response.json() == {"error": "Failed to process request", "cause": "invalid response"}


def test_a_condition_after_a_non_json_response_is_an_invalid_response(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": reply(stub, "plain words", content_type="text/plain")},
                {"serviceUrl": stub.at("/echo"), "condition": "instances"},
            )
        )
    )
    assert router.post(INPUT).json()["cause"] == "invalid response"


def test_downstream_status_and_body_pass_through_with_content_type_by_body(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": reply(stub, "teapot", 418, "text/plain")})))
    response = router.post(INPUT)
    assert (response.status_code, response.text) == (418, "teapot")
    assert response.headers["content-type"].startswith("text/plain")


def test_a_204_passes_through_without_a_body(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": reply(stub, "", 204)})))
    response = router.post(INPUT)
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers


def test_switch_on_invalid_json_matches_nothing(stub, start_router):
    root = {"routerType": "Switch", "steps": [{"serviceUrl": stub.at("/echo"), "condition": "instances"}]}
    router = start_router(graph(root))
    response = router.post(content=b"not json")
    assert response.status_code == 404
    assert response.json()["cause"] == "None of the routes matched with the switch condition"
    assert router.post(INPUT).json() == INPUT


def test_a_switch_without_match_inside_a_sequence_is_a_500(stub, start_router):
    switch = {"routerType": "Switch", "steps": [{"serviceUrl": stub.at("/echo"), "condition": "nothing"}]}
    router = start_router(graph(sequence({"nodeName": "pick"}), pick=switch))
    response = router.post(INPUT)
    assert response.status_code == 500
    assert response.json()["cause"] == "None of the routes matched with the switch condition"


def test_splitter_follows_the_weights(stub, start_router):
    root = {
        "routerType": "Splitter",
        "steps": [
            {"serviceUrl": reply(stub, '{"to":"a"}'), "weight": 50},
            {"serviceUrl": reply(stub, '{"to":"b"}'), "weight": 50},
            {"serviceUrl": reply(stub, '{"to":"never"}'), "weight": 0},
        ],
    }
    router = start_router(graph(root))
    seen = {router.post(INPUT).json()["to"] for _ in range(60)}
    assert seen == {"a", "b"}  # the chance of missing one is 2**-59


def test_ensemble_keys_unnamed_steps_by_index_and_sorts_keys(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"serviceUrl": reply(stub, '{"b":1,"a":2}')},
            {"name": "named", "serviceUrl": reply(stub, "null")},
        ],
    }
    router = start_router(graph(root))
    response = router.post(INPUT)
    assert response.text == '{"0":{"a":2,"b":1},"named":null}'


def test_ensemble_step_that_is_not_an_object_fails_the_node(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "ok", "serviceUrl": stub.at("/success")},
            {"name": "list", "serviceUrl": reply(stub, "[1]")},
        ],
    }
    router = start_router(graph(root))
    response = router.post(INPUT)
    assert response.status_code == 500
    assert response.json()["cause"] == (
        f'step 1 ("list") of node "root" ({reply(stub, "[1]")}) answered a JSON array; an Ensemble step '
        "must answer a JSON object"
    )


def test_unreachable_and_unusable_targets_are_500_naming_the_step(stub, start_router):
    router = start_router(
        {
            "nodes": {
                "root": {"routerType": "Switch", "steps": [
                    {"name": "down", "serviceUrl": free_port_url(), "condition": "[@this].#(t==down)"},
                    {"name": "unresolved", "serviceName": "isvc", "condition": "[@this].#(t==unresolved)"},
                ]}
            }
        }
    )  # fmt: skip
    # A serviceUrl that is no URL (KServe's TestMalformedURL) is refused at start (test_validation.py).
    for name in ("down", "unresolved"):
        response = router.post({"t": name})
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "Failed to process request"
        assert f'("{name}")' in body["cause"]


def test_step_timeout_is_a_504_naming_the_step(stub, start_router):
    spec = graph(
        sequence(
            {"name": "fast", "serviceUrl": stub.at("/echo")},
            {"name": "slow", "serviceUrl": reply(stub, "{}", delay_ms=3000)},
        )
    )
    spec["routerTimeouts"] = {"serviceClient": 1}
    router = start_router(spec)
    response = router.post(INPUT)
    assert response.status_code == 504
    cause = response.json()["cause"]
    assert 'step 1 ("slow") of node "root"' in cause and "serviceClient" in cause
    assert metric(router, "modelplane_graph_step_requests_total", node="root", step="slow", status="504") == 1


def test_server_write_timeout_is_a_504_naming_the_running_step(stub, start_router):
    spec = graph(sequence({"name": "slow", "serviceUrl": reply(stub, "{}", delay_ms=3000)}))
    spec["routerTimeouts"] = {"serverWrite": 1}
    router = start_router(spec)
    response = router.post(INPUT)
    assert response.status_code == 504
    cause = response.json()["cause"]
    assert "serverWrite" in cause and '("slow")' in cause


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_timeout_of_zero_or_less_is_no_limit_as_in_go(stub, start_router, seconds):
    """KServe hands the timeouts to Go's http.Client and http.Server, where zero or less is no limit."""
    spec = graph(sequence({"name": "slow", "serviceUrl": reply(stub, '{"ok":1}', delay_ms=300)}))
    spec["routerTimeouts"] = dict.fromkeys(
        ("serviceClient", "serverRead", "serverWrite", "serverIdle"), seconds
    )
    router = start_router(spec)
    response = router.post(INPUT)
    assert (response.status_code, response.json()) == (200, {"ok": 1})
    host, port = router.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: router\r\nContent-Length: 7\r\n\r\n")
        time.sleep(0.6)  # past the sweep that would have answered 408
        sock.sendall(b'{"a":1}')
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")


def test_hard_ensemble_failure_cancels_the_steps_still_running(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "fails", "serviceUrl": stub.at("/error"), "dependency": "Hard"},
            {"name": "slow", "serviceUrl": reply(stub, "{}", delay_ms=10000)},
        ],
    }
    router = start_router(graph(root))
    response = router.post(INPUT)
    assert response.status_code == 404
    assert (
        metric(router, "modelplane_graph_step_requests_total", node="root", step="slow", status="cancelled")
        == 1
    )


def test_the_first_failing_hard_step_in_step_order_decides_the_ensemble(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {
                "name": "slow",
                "serviceUrl": reply(stub, '{"first":1}', 404, delay_ms=300),
                "dependency": "Hard",
            },
            {"name": "fast", "serviceUrl": reply(stub, '{"second":2}', 503), "dependency": "Hard"},
        ],
    }
    router = start_router(graph(root))
    response = router.post(INPUT)
    assert (response.status_code, response.json()) == (404, {"first": 1})


def test_metrics_count_nodes_and_steps_by_status(stub, start_router):
    switch = {
        "routerType": "Switch",
        "steps": [{"name": "s", "serviceUrl": stub.at("/error"), "condition": "x"}],
    }
    router = start_router(graph(sequence({"name": "first", "nodeName": "pick"}), pick=switch))
    router.post({"x": 1})
    router.post({"x": 1})
    router.post({"y": 1})
    assert metric(router, "modelplane_graph_node_requests_total", node="root", status="404") == 2
    assert metric(router, "modelplane_graph_node_requests_total", node="root", status="500") == 1
    assert metric(router, "modelplane_graph_node_requests_total", node="pick", status="404") == 3
    assert metric(router, "modelplane_graph_step_requests_total", node="pick", step="s", status="404") == 2
    assert metric(router, "modelplane_graph_step_latency_seconds_count", node="root", step="first") == 3
    assert router.client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_large_bodies_go_through_whole(stub, start_router):
    router = start_router(
        graph(
            sequence({"serviceUrl": stub.at("/echo")}, {"serviceUrl": stub.at("/echo"), "data": "$response"})
        )
    )
    body = {"instances": [[i * 0.5 for i in range(1000)] for _ in range(200)]}
    response = router.post(body)
    assert response.status_code == 200 and response.json() == body


def test_keeps_serving_on_reused_connections(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})))
    with httpx.Client(base_url=router.url) as client:
        for i in range(50):
            assert client.post("/", content=json.dumps({"i": i})).json() == {"i": i}


def test_a_key_there_twice_is_read_as_go_reads_it(stub, start_router):
    """Go's gjson sees the first of two members of one name (names compared after unescaping); the
    body still reaches the step as it was sent."""
    root = {
        "routerType": "Switch",
        "steps": [
            {"serviceUrl": reply(stub, '{"to":"a"}'), "condition": '[@this].#(route=="a")'},
            {"serviceUrl": reply(stub, '{"to":"b"}'), "condition": '[@this].#(route=="b")'},
        ],
    }
    router = start_router(graph(root))
    assert router.post(content=b'{"route":"a","route":"b"}').json() == {"to": "a"}
    assert router.post(content=b'{"route":"b","rout\\u0065":"a"}').json() == {"to": "b"}
    assert router.post(content=b'{"route": "a"}').json() == {"to": "a"}


# Redirects and credentials in the URL, as KServe's Go http.Client has them.


def redirect(stub, status: int, to: str | None = None, path: str = "/redirect") -> str:
    target = stub.at(f"{path}?status={status}")
    return target if to is None else f"{target}&to={quote(to, safe='')}"


def headers_of(request: dict) -> dict[str, str]:
    return {name: value for name, value in request["headers"]}


@pytest.mark.parametrize("status", [307, 308])
def test_a_307_or_308_is_followed_with_the_post_and_its_body(stub, start_router, status):
    """A FastAPI predictor answers a path without its trailing slash so."""
    router = start_router(graph(sequence({"serviceUrl": redirect(stub, status, "../echo", "/v1/redirect")})))
    response = router.post(INPUT)
    assert (response.status_code, response.json()) == (200, INPUT)
    first, second = stub.requests()
    assert (first["method"], first["path"]) == ("POST", "/v1/redirect")
    assert (second["method"], second["path"], json.loads(second["body"])) == ("POST", "/echo", INPUT)
    assert headers_of(second)["content-type"] == "application/json"
    assert headers_of(second)["referer"] == redirect(stub, status, "../echo", "/v1/redirect")


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_301_302_or_303_is_followed_with_a_get_without_a_body(stub, start_router, status):
    router = start_router(graph(sequence({"serviceUrl": redirect(stub, status, stub.at("/success?x=1"))})))
    response = router.post(INPUT)
    assert (response.status_code, response.json()) == (200, {"predictions": [{"message": "SUCCESS"}]})
    _, second = stub.requests()
    assert (second["method"], second["path"], second["query"], second["body"]) == (
        "GET",
        "/success",
        "x=1",
        "",
    )
    headers = headers_of(second)
    assert "content-length" not in headers and "content-type" not in headers
    assert headers["referer"] == redirect(stub, status, stub.at("/success?x=1"))


def test_a_redirect_without_location_is_the_answer(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": redirect(stub, 302, "")})))
    response = router.post(INPUT)
    assert (response.status_code, response.text) == (302, "moved")


def test_the_tenth_redirect_in_a_row_is_an_error_naming_the_step(stub, start_router):
    router = start_router(graph(sequence({"name": "loop", "serviceUrl": redirect(stub, 307)})))
    response = router.post(INPUT)
    assert response.status_code == 500
    cause = response.json()["cause"]
    assert cause.startswith('step 0 ("loop") of node "root"') and cause.endswith("stopped after 10 redirects")
    assert len(stub.requests()) == 10


def test_a_redirect_elsewhere_that_cannot_be_called_is_an_error_naming_the_step(stub, start_router):
    router = start_router(graph(sequence({"name": "away", "serviceUrl": redirect(stub, 302, "ftp://x/y")})))
    response = router.post(INPUT)
    assert response.status_code == 500
    assert '("away")' in response.json()["cause"] and "ftp" in response.json()["cause"]


def test_credentials_in_the_url_are_sent_as_basic_auth_and_kept_out_of_messages(stub, start_router):
    port = stub.url.rsplit(":", 1)[1]
    url = f"http://us%40er:s3cret%21@127.0.0.1:{port}/echo"
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": url}, {"name": "down", "serviceUrl": f"http://u:pw@{free_port_url()[7:]}"}
            )
        )
    )
    response = router.post(INPUT)
    (request,) = stub.requests()
    assert headers_of(request)["authorization"] == "Basic " + base64.b64encode(b"us@er:s3cret!").decode()
    assert headers_of(request)["host"] == f"127.0.0.1:{port}"
    assert response.status_code == 500 and "u:***@" in response.json()["cause"]
    assert "pw" not in response.json()["cause"]


def test_a_propagated_authorization_wins_over_the_urls_credentials(stub, start_router):
    port = stub.url.rsplit(":", 1)[1]
    router = start_router(
        graph(sequence({"serviceUrl": f"http://u:p@127.0.0.1:{port}/echo"})),
        env={"PROPAGATE_HEADERS": "Authorization"},
    )
    router.post(INPUT, headers={"Authorization": "Bearer t"})
    router.post(INPUT)
    with_header, without = stub.requests()
    assert headers_of(with_header)["authorization"] == "Bearer t"
    assert headers_of(without)["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_authorization_stays_on_its_host_through_redirects(stub, start_router):
    """Go keeps Authorization on redirects within the host (the URL's credentials come again with a
    relative Location) and drops it for the rest of the chain once a redirect leaves the host."""
    port = stub.url.rsplit(":", 1)[1]
    back = f"http://localhost:{port}/redirect?status=307&to={quote(stub.at('/echo'), safe='')}"
    chain = redirect(stub, 307, "/redirect?status=308&to=" + quote(back, safe=""))
    router = start_router(graph(sequence({"serviceUrl": chain})), env={"PROPAGATE_HEADERS": "Authorization"})
    assert router.post(INPUT, headers={"Authorization": "Bearer t"}).json() == INPUT
    seen = [(headers_of(r)["host"], headers_of(r).get("authorization")) for r in stub.requests()]
    here, there = f"127.0.0.1:{port}", f"localhost:{port}"
    assert seen == [(here, "Bearer t"), (here, "Bearer t"), (there, None), (here, None)]

    credentials = f"http://u:p@127.0.0.1:{port}/redirect?status=307&to=%2Fecho"
    router = start_router(graph(sequence({"serviceUrl": credentials})))
    assert router.post(INPUT).json() == INPUT
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert [headers_of(r).get("authorization") for r in stub.requests()] == [basic, basic]


# Bodies orjson refuses and Go reads: Go's gjson checks syntax only, Go's encoding/json reads bytes that
# are not UTF-8 (and lone surrogate escapes) as U+FFFD.
LATIN_1 = b'{"kind":"a","name":"caf\xe9"}'
SURROGATE = b'{"kind":"a","name":"\\ud800x"}'
HUGE = b'{"kind":"a","score":1e400}'


def test_a_switch_reads_what_gos_gjson_reads(stub, start_router):
    root = {
        "routerType": "Switch",
        "steps": [
            {"serviceUrl": reply(stub, '{"to":"huge"}'), "condition": "[@this].#(score>1e308)"},
            {"serviceUrl": stub.at("/echo"), "condition": '[@this].#(kind=="a")'},
        ],
    }
    router = start_router(graph(root))
    for body in (LATIN_1, SURROGATE):
        response = router.post(content=body)
        assert (response.status_code, response.content) == (200, body)
    assert router.post(content=HUGE).json() == {"to": "huge"}
    assert router.post(content=b'{"kind":"a","score":NaN}').status_code == 404


def test_a_sequence_condition_reads_what_gos_gjson_reads(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": stub.at("/echo")}, {"serviceUrl": stub.at("/success"), "condition": "score"}
            )
        )
    )
    assert router.post(content=HUGE).json() == {"predictions": [{"message": "SUCCESS"}]}


def test_an_ensemble_reads_what_gos_encoding_json_reads(stub, start_router):
    root = {"routerType": "Ensemble", "steps": [{"name": "e", "serviceUrl": stub.at("/echo")}]}
    router = start_router(graph(root))
    assert router.post(content=LATIN_1).json() == {"e": {"kind": "a", "name": "caf\ufffd"}}
    assert router.post(content=SURROGATE).json() == {"e": {"kind": "a", "name": "\ufffdx"}}
    response = router.post(content=HUGE)  # encoding/json refuses a number beyond float64, and so KServe
    assert response.status_code == 500 and "beyond float64" in response.json()["cause"]


def test_map_predictions_to_instances_reads_what_gos_encoding_json_reads(stub, start_router):
    router = start_router(
        graph(sequence({"serviceUrl": stub.at("/echo"), "mapPredictionsToInstances": True}))
    )
    assert router.post(content=b'{"predictions":["caf\xe9"]}').json() == {"instances": ["caf\ufffd"]}
    assert router.post(content=b'{"predictions":[1e400]}').content == b'{"predictions":[1e400]}'


def test_an_answer_go_s_json_valid_accepts_is_application_json(stub, start_router):
    """KServe sets the Content-Type when `json.Valid` says yes, which checks syntax only: a number
    beyond float64 is valid JSON there, though encoding/json cannot read it."""
    router = start_router(graph(sequence({"serviceUrl": stub.at("/echo")})))
    for body in (HUGE, LATIN_1):
        response = router.post(content=body)
        assert (response.content, response.headers["content-type"]) == (body, "application/json")


def test_a_service_url_with_spaces_or_non_ascii_is_called_escaped_as_go_calls_it(stub, start_router):
    router = start_router(graph(sequence({"serviceUrl": stub.at("/models/m x/é?a=b c&d=%41")})))
    assert router.post(INPUT).json() == {"detail": "Not Found"}
    [call] = stub.requests()
    assert (call["path"], call["query"]) == ("/models/m x/é", "a=b%20c&d=%41")
