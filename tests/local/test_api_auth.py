"""`--auth-token-file`: the control-plane API answers only requests bearing the token, and the CLI sends it;
`modelplane up` does not listen beyond loopback without one."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from modelplane.local.api_process import ApiProcess

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
    assert httpx.get(api + "/healthz").text == "ok"


def test_the_cli_sends_the_token_from_its_flag_or_the_environment(api):
    refused = cli("get", "isvc", "--server", api)
    assert refused.returncode == 2 and "Unauthorized" in refused.stderr
    assert cli("get", "isvc", "--server", api, "--token", TOKEN).returncode == 0
    assert cli("get", "isvc", "--server", api, env={"MODELPLANE_TOKEN": TOKEN}).returncode == 0


def test_up_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    exposed = cli("up", "--home", str(tmp_path), "--host", "0.0.0.0")
    assert exposed.returncode == 2
    assert "--auth-token-file" in exposed.stderr and "--insecure" in exposed.stderr
    (tmp_path / "short").write_text("tiny")
    short = cli("up", "--home", str(tmp_path), "--auth-token-file", str(tmp_path / "short"))
    assert short.returncode == 2 and "shorter than 16 characters" in short.stderr
