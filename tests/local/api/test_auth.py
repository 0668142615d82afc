"""`--auth-token-file`: the control-plane API answers only requests bearing the token, and the CLI sends it;
`modelplane up` does not listen beyond loopback without one."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys

import httpx
import pytest

from modelplane.local.api.process import ApiProcess

TOKEN = "s3cret-t0ken-of-some-length"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    with ApiProcess(folder / "home", auth_token_file=token_file) as process:
        yield process.url


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelplane", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN])
def test_requests_without_the_token_are_401(api, authorization):
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.get(api + ISVCS, headers=headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"


def test_the_token_opens_the_api_and_health_needs_none(api):
    assert httpx.get(api + ISVCS, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(api + ISVCS, headers={"authorization": f"BEARER {TOKEN}"}).status_code == 200
    assert httpx.get(api + "/healthz").text == "ok"


def test_a_review_needs_the_token_and_names_its_bearer(api):
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    path = api + "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    assert httpx.post(path, json=review).status_code == 401
    answer = httpx.post(path, json=review, headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 201
    assert answer.json()["status"]["userInfo"] == {
        "username": "modelplane:token",
        "groups": ["system:authenticated"],
    }


def test_the_cli_sends_the_token_from_its_flag_or_the_environment(api):
    refused = cli("get", "isvc", "--server", api)
    assert refused.returncode == 1 and "Unauthorized" in refused.stderr
    assert cli("get", "isvc", "--server", api, "--token", TOKEN).returncode == 0
    assert cli("get", "isvc", "--server", api, env={"MODELPLANE_TOKEN": TOKEN}).returncode == 0


def test_the_cli_takes_a_token_with_the_newline_of_its_file(api):
    assert cli("get", "isvc", "--server", api, env={"MODELPLANE_TOKEN": TOKEN + "\n"}).returncode == 0
    assert cli("get", "isvc", "--server", api, "--token", f" {TOKEN}\n").returncode == 0


def test_a_token_with_a_line_break_inside_is_refused_without_showing_it(api):
    secret = "first-half-of-it\nsecond-half-of-it"
    refused = cli("get", "isvc", "--server", api, "--token", secret)
    assert refused.returncode == 1
    assert refused.stderr == (
        "modelplane get: the token (--token or MODELPLANE_TOKEN) holds whitespace or control characters: "
        "give it as one line\n"
    )


def test_a_certificate_authority_the_cli_cannot_use_is_one_line(tmp_path):
    (tmp_path / "not-pem").write_text("hello")
    missing = cli(
        "get", "isvc", "--server", "https://127.0.0.1:1", "--certificate-authority", str(tmp_path / "no")
    )
    assert missing.stderr == (
        f"modelplane get: cannot read the certificate authority {tmp_path / 'no'}: No such file or directory\n"
    )
    not_pem = cli(
        "get", "isvc", "--server", "https://127.0.0.1:1", env={"MODELPLANE_CA": str(tmp_path / "not-pem")}
    )
    assert not_pem.stderr == (
        f"modelplane get: the certificate authority {tmp_path / 'not-pem'} holds no PEM certificate "
        "(NO_CERTIFICATE_OR_CRL_FOUND)\n"
    )


def test_up_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    exposed = cli("up", "--home", str(tmp_path), "--host", "0.0.0.0")
    assert exposed.returncode == 2
    assert "--auth-token-file" in exposed.stderr and "--insecure" in exposed.stderr
    (tmp_path / "short").write_text("tiny")
    short = cli("up", "--home", str(tmp_path), "--auth-token-file", str(tmp_path / "short"))
    assert short.returncode == 2 and "shorter than 16 characters" in short.stderr


def test_insecure_where_it_changes_nothing_is_said(capsys):
    from modelplane.cli.up import _check_exposure

    _check_exposure("127.0.0.1", None, True)
    assert (
        capsys.readouterr().err
        == "Warning: --insecure changes nothing: 127.0.0.1 is reached from this machine only\n"
    )
    _check_exposure("0.0.0.0", "a-token-long-enough", True)
    assert capsys.readouterr().err == "Warning: --insecure changes nothing: the API asks for the token\n"
    _check_exposure("0.0.0.0", None, True)
    assert capsys.readouterr().err == ""


def test_a_new_home_is_the_users_alone(tmp_path):
    from modelplane.local.platform import home_lock

    with home_lock(tmp_path / "home"):
        assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory):
    from tests.local.certificates import write_certificates

    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = write_certificates(folder)
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    with ApiProcess(folder / "home", auth_token_file=token_file, tls=(cert, key)) as process:
        yield process.url, ca


def test_the_api_over_tls_with_the_token(tls_api):
    url, ca = tls_api
    assert url.startswith("https://127.0.0.1:")
    assert (
        httpx.get(
            url + ISVCS,
            verify=ssl.create_default_context(cafile=ca),
            headers={"authorization": f"Bearer {TOKEN}"},
        ).status_code
        == 200
    )
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + ISVCS)  # a certificate the system does not trust
    cli_env = {"MODELPLANE_TOKEN": TOKEN, "MODELPLANE_CA": str(ca)}
    assert cli("get", "isvc", "--server", url, env=cli_env).returncode == 0
    flags = cli("get", "isvc", "--server", url, "--token", TOKEN, "--certificate-authority", str(ca))
    assert flags.returncode == 0, flags.stderr
    untrusted = cli("get", "isvc", "--server", url, "--token", TOKEN)
    assert untrusted.returncode == 1
    assert untrusted.stderr == (
        f"modelplane get: TLS with the control plane at {url} failed: the certificate was refused: unable to "
        "get local issuer certificate (name the certificate authority that signed its certificate with "
        "--certificate-authority)\n"
    )


def test_plain_http_to_the_tls_port_says_to_use_https(tls_api):
    url, ca = tls_api
    plain = url.replace("https://", "http://")
    answer = cli("get", "isvc", "--server", plain, "--token", TOKEN)
    assert answer.returncode == 1
    assert answer.stderr == (
        f"modelplane get: The plain HTTP request was sent to an HTTPS port: use {url}{ISVCS}\n"
    )
    # A Kubernetes Status (as every refusal of the API), before any token is asked for.
    refused = httpx.get(plain + ISVCS + "?limit=1")
    assert refused.status_code == 400
    assert refused.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"The plain HTTP request was sent to an HTTPS port: use {url}{ISVCS}?limit=1",
        "reason": "BadRequest",
        "code": 400,
    }
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"GET /api HTTP/1.1\r\n\r\n")  # no Host: the address connected to
        answer = raw.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"use %b/api" % url.encode() in answer
    verify = ssl.create_default_context(cafile=ca)
    assert httpx.get(url + ISVCS, verify=verify, headers={"authorization": f"Bearer {TOKEN}"}).is_success


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_sends_the_token_over_tls(tls_api, tmp_path):
    url, ca = tls_api
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: mp, cluster: {{server: '{url}', certificate-authority: '{ca}'}}}}]\n"
        f"users: [{{name: me, user: {{token: '{TOKEN}'}}}}]\n"
        "contexts: [{name: mp, context: {cluster: mp, user: me, namespace: default}}]\n"
        "current-context: mp\n"
    )
    result = subprocess.run(
        ["kubectl", "get", "isvc"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(config)},
    )
    assert result.returncode == 0, result.stderr
    wrong = config.read_text().replace(TOKEN, "not-the-token-at-all")
    config.write_text(wrong)
    refused = subprocess.run(
        ["kubectl", "get", "isvc"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(config)},
    )
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr


def test_up_applies_its_host_token_and_tls(tmp_path):
    """`modelplane up` itself: the API it starts is the TLS one, asking for the token."""
    from tests.e2e.platform_process import PlatformProcess
    from tests.local.certificates import write_certificates

    ca, cert, key = write_certificates(tmp_path)
    (tmp_path / "token").write_text(TOKEN)
    home = tmp_path / "home"
    home.mkdir()
    options = ["--auth-token-file", str(tmp_path / "token"), "--tls-cert", str(cert), "--tls-key", str(key)]
    platform = PlatformProcess(home, *options).start()
    try:
        assert platform.api_url.startswith("https://")
        assert (
            httpx.get(platform.api_url + ISVCS, verify=ssl.create_default_context(cafile=ca)).status_code
            == 401
        )
        answer = httpx.get(
            platform.api_url + ISVCS,
            verify=ssl.create_default_context(cafile=ca),
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200
    finally:
        platform.stop()
