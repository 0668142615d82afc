"""Storage credentials on `modelplane up`: a ServiceAccount's Secrets read from the store, resolved to
the values a fetch gets, with the files they name in a private folder while the fetch runs."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from modelplane.api.service_account_credentials import CredentialsError
from modelplane.local.api.admission import default_admission
from modelplane.local.api.storage_credentials import StorageCredentials
from modelplane.local.api.store import Store, store_path

KEY_JSON = json.dumps({"type": "service_account", "project_id": "p"})


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(store_path(tmp_path), admit=default_admission())
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "s3creds",
                    "namespace": "team",
                    "annotations": {"serving.kserve.io/s3-endpoint": "http://127.0.0.1:9"},
                },
                "stringData": {"AWS_ACCESS_KEY_ID": "id-1", "AWS_SECRET_ACCESS_KEY": "key-1"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "gcs", "namespace": "team"},
                "stringData": {"gcloud-application-credentials.json": KEY_JSON},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "models", "namespace": "team"},
                "secrets": [{"name": "s3creds"}, {"name": "gcs"}],
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "broken", "namespace": "team"},
                "secrets": [{"name": "not-there"}],
            },
        ]
    )
    return store


def test_values_are_resolved_and_files_live_only_while_the_fetch_runs(store):
    credentials = StorageCredentials(store).of_service_account("team", "models")
    assert credentials.env["AWS_ACCESS_KEY_ID"] == "id-1"
    assert credentials.env["AWS_SECRET_ACCESS_KEY"] == "key-1"
    assert credentials.env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    with credentials.materialized() as env:
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        assert path.name == "gcloud-application-credentials.json"
        assert path.read_text() == KEY_JSON
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        assert env["AWS_SECRET_ACCESS_KEY"] == "key-1"
    assert not path.exists() and not path.parent.parent.exists()


def test_a_missing_secret_or_account_is_an_error_a_missing_default_is_not(store):
    credentials = StorageCredentials(store)
    with pytest.raises(CredentialsError, match='secret "not-there"'):
        credentials.of_service_account("team", "broken")
    with pytest.raises(CredentialsError, match='serviceaccount "nobody"'):
        credentials.of_service_account("team", "nobody")
    assert not credentials.of_service_account("team", None).env


def test_the_annotation_secret_and_the_storage_config_secret_name(store):
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "my-storage", "namespace": "team"},
                "stringData": {"main": json.dumps({"type": "s3", "bucket": "b"})},
            }
        ]
    )
    credentials = StorageCredentials(store)
    chosen = credentials.of_service_account("team", "models", "s3creds")
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in chosen.env and chosen.env["AWS_ACCESS_KEY_ID"] == "id-1"
    documents = credentials.for_namespace("team", "my-storage")
    assert documents.get("main")["bucket"] == "b"


def test_materialized_without_files_is_the_env_alone(store):
    credentials = StorageCredentials(store).of_service_account("team", "models", "s3creds")
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    with credentials.materialized() as env:
        assert env == credentials.env
        assert set(os.listdir(os.environ.get("TMPDIR", "/tmp"))) == before


def test_a_secret_of_bytes_that_are_not_text_is_mounted_as_they_are(store):
    key_file = b"\x30\x82\x01\xff\xfe not UTF-8"
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "gcs", "namespace": "team"},
                "data": {"gcloud-application-credentials.json": base64.b64encode(key_file).decode()},
            }
        ]
    )
    credentials = StorageCredentials(store).of_service_account("team", "models")
    with credentials.materialized() as env:
        assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_bytes() == key_file


def test_a_variable_with_a_nul_byte_is_an_error_that_shows_no_value(store):
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hf", "namespace": "team"},
                "data": {"HF_TOKEN": base64.b64encode(b"hf_\x00hidden").decode()},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "hub", "namespace": "team"},
                "secrets": [{"name": "hf"}],
            },
        ]
    )
    with pytest.raises(CredentialsError, match='secret "hf" key HF_TOKEN: a NUL byte') as raised:
        StorageCredentials(store).of_service_account("team", "hub")
    assert "hidden" not in str(raised.value)
