import base64
import hashlib
import json

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from modelplane.storage import ConfigurationError, NotFoundError, TransferOptions, fetch

from .helpers import model_files, read_tree, zip_of


@pytest.fixture
def gcs(gcs_server, request):
    client = storage.Client(
        credentials=AnonymousCredentials(), project="test", client_options={"api_endpoint": gcs_server.url}
    )
    name = "models-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    bucket = client.create_bucket(name)
    bucket.endpoint = gcs_server.url  # type: ignore[attr-defined]
    return bucket


def upload_tree(bucket, root, prefix):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            bucket.blob(f"{prefix}/{path.relative_to(root).as_posix()}").upload_from_filename(str(path))


def test_prefix_through_the_emulator_env(tmp_path, gcs, monkeypatch):
    files = model_files(tmp_path / "flowers")
    upload_tree(gcs, tmp_path / "flowers", "tf/flowers")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    options = TransferOptions(concurrency=4, part_size=1024 * 1024)
    assert read_tree(fetch(f"gs://{gcs.name}/tf/flowers", options=options)) == files


def test_archive_with_storage_spec_endpoint(tmp_path, gcs, isolated):
    files = {"model.onnx": b"onnx bytes", "labels.txt": b"cat\ndog\n"}
    gcs.blob("m/model.zip").upload_from_filename(str(zip_of(tmp_path / "model.zip", files)))
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    (store / "gcs.json").write_text(
        json.dumps({"type": "gs", "bucket": gcs.name, "endpoint_url": gcs.endpoint})
    )
    assert read_tree(fetch({"key": "gcs", "path": "m/model.zip"})) == files


def test_missing_prefix(gcs, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    with pytest.raises(NotFoundError, match=f"no model found at gs://{gcs.name}/nothing"):
        fetch(f"gs://{gcs.name}/nothing")


def test_bad_service_account_is_not_echoed(gcs, isolated):
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    secret = base64.b64encode(b'{"private_key": "-----BEGIN very secret').decode()
    (store / "gcs.json").write_text(
        json.dumps({"type": "gs", "bucket": gcs.name, "base64_service_account": secret})
    )
    with pytest.raises(ConfigurationError, match="service-account key") as caught:
        fetch({"key": "gcs", "path": "m"})
    assert "very secret" not in str(caught.value) and secret not in str(caught.value)
