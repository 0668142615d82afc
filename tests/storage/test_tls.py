"""A TLS failure that no retry heals (an untrusted certificate, an endpoint that does not speak TLS)
fails the fetch at its first connection, saying why; a connection refused is still tried again."""

from __future__ import annotations

import socket

import pytest

from modelplane.storage import RetryPolicy, StorageConfig, StorageError, TransferOptions, fetch
from modelplane.storage.spec import Source
from modelplane.storage.uri import parse_uri

from .tls_endpoint import UntrustedEndpoint

RETRIES = TransferOptions(retry=RetryPolicy(attempts=3, initial_delay=0.01))


@pytest.fixture
def untrusted(tmp_path):
    endpoint = UntrustedEndpoint(tmp_path)
    yield endpoint
    endpoint.stop()


def s3_source(endpoint_url: str) -> Source:
    config = {
        "endpoint_url": endpoint_url,
        "access_key_id": "a",
        "secret_access_key": "b",
        "region": "us-east-1",
    }
    return Source(parse_uri("s3://models/iris"), StorageConfig(config))


def test_an_untrusted_certificate_fails_an_http_fetch_at_once(untrusted, tmp_path):
    with pytest.raises(StorageError, match="TLS certificate was not verified") as caught:
        fetch(f"{untrusted.url}/model.joblib", tmp_path / "model", use_cache=False, options=RETRIES)
    assert "trying again cannot help" in str(caught.value)
    assert "SSL_CERT_FILE" in str(caught.value)
    assert untrusted.connections == 1


def test_an_untrusted_certificate_fails_an_s3_fetch_at_once(untrusted, tmp_path):
    """botocore would retry it itself too, as any connection error."""
    with pytest.raises(StorageError, match="TLS certificate was not verified") as caught:
        fetch(s3_source(untrusted.url), tmp_path / "model", use_cache=False, options=RETRIES)
    assert "ca_bundle" in str(caught.value) and "verify_ssl" in str(caught.value)
    assert untrusted.connections == 1


def test_an_endpoint_that_does_not_speak_tls_fails_at_once(tmp_path):
    plain = UntrustedEndpoint(tmp_path, tls=False)
    try:
        with pytest.raises(StorageError, match="does not speak TLS"):
            fetch(f"{plain.url}/model.joblib", tmp_path / "model", use_cache=False, options=RETRIES)
        assert plain.connections == 1
    finally:
        plain.stop()


def test_a_refused_connection_is_still_tried_again(tmp_path, caplog):
    with socket.socket() as closed:  # a port with nothing listening
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(StorageError):
        fetch(f"https://127.0.0.1:{port}/model.joblib", tmp_path / "model", use_cache=False, options=RETRIES)
    assert "retrying" in caplog.text
