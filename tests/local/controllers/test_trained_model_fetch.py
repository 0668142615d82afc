"""A TrainedModel's (or a ModelMesh model's) fetch that fails says why, as a plain service's does: the
storage's own message, with the model named by where it points."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest

from modelplane.local.controllers.trained_models import fetch_model
from modelplane.storage import CredentialStore
from tests.storage.servers import start_moto

KEYS = {"access_key_id": "modelplane-test-key", "secret_access_key": "modelplane-test-secret"}


@pytest.fixture(scope="module")
def moto():
    server = start_moto()
    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
    )
    client.create_bucket(Bucket="models")
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPLANE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_failed_fetch_says_what_the_storage_said(tmp_path, home, moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    log = tmp_path / "replica.log"
    with pytest.raises(RuntimeError) as caught:
        asyncio.run(fetch_model("s3://models/sklearn/gone", tmp_path / "gone", log))
    why = "no model found at s3://models/sklearn/gone"
    assert str(caught.value) == f"fetching s3://models/sklearn/gone failed: {why}"
    assert f"modelplane storage: {why}" in log.read_text()  # the replica's log has it too


def test_a_storage_spec_is_named_by_where_it_points(tmp_path, home, moto):
    """ModelMesh hands a `storage` spec as JSON: the message names its URI, not the JSON."""
    document = {"type": "s3", "endpoint_url": moto.url, "region": "us-east-1", "bucket": "models", **KEYS}
    store = CredentialStore(documents={"moto": document})
    spec = json.dumps({"storage": {"key": "moto", "path": "sklearn/gone"}, "storageUri": None})
    with pytest.raises(RuntimeError) as caught:
        asyncio.run(fetch_model(spec, tmp_path / "gone", tmp_path / "replica.log", credentials=lambda: store))
    assert str(caught.value) == (
        "fetching s3://models/sklearn/gone failed: no model found at s3://models/sklearn/gone"
    )
