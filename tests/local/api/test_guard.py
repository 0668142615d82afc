"""The control-plane API refuses what a web page could send it: cross-site requests, bodies a
browser sends without a preflight, and a Host that is not the API's own (DNS rebinding)."""

from __future__ import annotations

import json

import httpx
import pytest

from modelplane.local.api.guard import SameSiteGuard

SRS = "/apis/serving.kserve.io/v1alpha1/namespaces/default/servingruntimes"


def runtime(name: str) -> dict:
    """A ServingRuntime whose container runs a shell command: what an attacker would create."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": name},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [
                {"name": "kserve-container", "image": "x", "command": ["sh", "-c", "touch /tmp/x"]}
            ],
        },
    }


def refused(response: httpx.Response, code: int, reason: str) -> str:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["reason"] == reason
    return body["message"]


def stored(api: httpx.Client, name: str) -> bool:
    return api.get(f"{SRS}/{name}").status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ],
)
def test_a_body_a_browser_sends_without_a_preflight_is_refused(api, content_type):
    """As a page served on another port of this machine sends it, from a browser that sends no
    Sec-Fetch-Site (whose Origin, of a loopback name, passes)."""
    name = f"simple-{abs(hash(content_type)) % 10_000}"
    headers = {"origin": "http://localhost:3000"} | ({"content-type": content_type} if content_type else {})
    response = api.post(SRS, content=json.dumps(runtime(name)), headers=headers)
    message = refused(response, 415, "UnsupportedMediaType")
    assert "application/json" in message
    assert not stored(api, name)


def test_an_untyped_body_without_an_origin_is_json_as_kubernetes_takes_it(api):
    """The kubernetes Python client sends its creates and replaces with no Content-Type; a browser
    sends no POST without an Origin, nor a PUT to another site without a preflight."""
    assert api.post(SRS, content=json.dumps(runtime("untyped"))).status_code == 201
    replaced = runtime("untyped") | {"metadata": {"name": "untyped", "labels": {"put": "untyped"}}}
    answer = api.put(f"{SRS}/untyped", content=json.dumps(replaced))
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["labels"] == {"put": "untyped"}
    untyped_patch = api.patch(f"{SRS}/untyped", content=json.dumps({"metadata": {"labels": None}}))
    refused(untyped_patch, 415, "UnsupportedMediaType")  # as Kubernetes: a patch names its kind


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "application/json"])
def test_a_patch_of_another_type_is_told_the_types_a_patch_takes(api, content_type):
    """`curl -X PATCH -d ...` sends a form; the answer must name the patch types (what the server takes
    for a PATCH), not JSON and YAML, which a PATCH is refused in too."""
    assert api.post(SRS, content=json.dumps(runtime("patched")), headers={"content-type": "application/json"})
    headers = {"content-type": content_type} if content_type else {}
    response = api.patch(
        f"{SRS}/patched", content=json.dumps({"metadata": {"labels": {"a": "b"}}}), headers=headers
    )
    message = refused(response, 415, "UnsupportedMediaType")
    accepted = message.split("accepted media types include: ")[1]
    assert "application/merge-patch+json" in accepted and "application/json-patch+json" in accepted, message
    assert "application/apply-patch+yaml" in accepted, message
    assert "application/yaml" not in accepted and "text/yaml" not in accepted, message


def test_a_create_of_another_type_is_told_json_and_yaml(api):
    response = api.post(SRS, content=json.dumps(runtime("form")), headers={"content-type": "text/plain"})
    accepted = refused(response, 415, "UnsupportedMediaType").split("accepted media types include: ")[1]
    assert "application/json" in accepted and "application/yaml" in accepted
    assert "patch" not in accepted


def test_a_foreign_origin_is_refused_even_with_a_json_body(api):
    response = api.post(SRS, json=runtime("from-a-page"), headers={"origin": "https://evil.example"})
    assert "evil.example" in refused(response, 403, "Forbidden")
    assert refused(api.get(SRS, headers={"origin": "null"}), 403, "Forbidden")
    cross_site = api.get(SRS, headers={"sec-fetch-site": "cross-site"})
    assert "Sec-Fetch-Site" in refused(cross_site, 403, "Forbidden")
    assert not stored(api, "from-a-page")


def test_a_rebound_host_name_is_refused(api):
    port = httpx.URL(str(api.base_url)).port
    response = api.post(SRS, json=runtime("rebound"), headers={"host": f"attacker.example:{port}"})
    assert "attacker.example" in refused(response, 403, "Forbidden")
    assert refused(api.get(SRS, headers={"host": "attacker.example"}), 403, "Forbidden")
    assert not stored(api, "rebound")


def test_the_api_s_own_callers_are_served(api):
    port = httpx.URL(str(api.base_url)).port
    assert api.post(SRS, json=runtime("from-the-cli")).status_code == 201
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert api.get(f"{SRS}/from-the-cli", headers={"host": host}).status_code == 200, host
    same_origin = {"origin": f"http://localhost:{port}", "sec-fetch-site": "same-origin"}
    assert api.get(SRS, headers=same_origin).status_code == 200
    yaml_body = "apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: as-yaml}\n"
    yaml_body += "spec: {containers: [{name: c, image: x}]}\n"
    assert api.post(SRS, content=yaml_body, headers={"content-type": "application/yaml"}).status_code == 201


def test_the_guard_answers_to_the_bound_address_and_any_name_on_a_wildcard():
    bound = SameSiteGuard.for_address("192.0.2.7")
    bound.check("GET", {"host": "192.0.2.7:8180"}, "")
    bound.check("GET", {"host": "localhost"}, "")
    with pytest.raises(Exception, match="Host"):
        bound.check("GET", {"host": "198.51.100.1"}, "")
    anywhere = SameSiteGuard.for_address("0.0.0.0")
    anywhere.check("GET", {"host": "models.example.com"}, "")
    with pytest.raises(Exception, match="unknown format"):
        anywhere.check("POST", {"host": "models.example.com"}, "text/plain")


@pytest.mark.parametrize(
    "guard",
    [SameSiteGuard.for_address("0.0.0.0"), SameSiteGuard.for_address("127.0.0.1", token_required=True)],
    ids=["wildcard", "token"],
)
def test_a_guard_answering_to_any_name_takes_only_origins_of_that_name(guard):
    guard.check("GET", {"host": "models.example.com:8180"}, "")
    guard.check("GET", {"host": "models.example.com", "origin": "https://models.example.com:8180"}, "")
    for origin in ("http://evil.example", "null", "file://"):
        with pytest.raises(Exception, match="cross-site"):
            guard.check("GET", {"host": "models.example.com", "origin": origin}, "")


def test_a_yaml_alias_bomb_is_refused_before_it_expands(api):
    body = "apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: bomb}\n"
    body += 'spec: {containers: [{name: c, image: x}]}\nl0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, 10):
        body += f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 8) + "]\n"
    response = api.post(SRS, content=body, headers={"content-type": "application/yaml"})
    assert "YAML aliases would expand" in refused(response, 400, "BadRequest")
    assert not stored(api, "bomb")


@pytest.mark.parametrize("depth", [201, 300, 1023])
def test_a_json_body_nested_too_deep_is_a_400(api, depth):
    def config_map(name: str, levels: int) -> str:  # the body and "deep" are the first two levels
        deep = '{"x":' * (levels - 2) + "{}" + "}" * (levels - 2)
        return f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"deep":{deep}}}'

    json_type = {"content-type": "application/json"}
    configmaps = "/api/v1/namespaces/default/configmaps"
    response = api.post(configmaps, content=config_map(f"deep-{depth}", depth), headers=json_type)
    assert "nested more than 200 levels deep" in refused(response, 400, "BadRequest")
    accepted = api.post(configmaps, content=config_map(f"deep-{depth}", 200), headers=json_type)
    assert accepted.status_code == 201
