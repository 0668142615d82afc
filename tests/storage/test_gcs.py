import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from modelplane.storage import (
    ConfigurationError,
    CredentialStore,
    NotFoundError,
    RetryPolicy,
    StorageError,
    TransferOptions,
    fetch,
)

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


def test_a_cached_copy_serves_only_the_endpoint_it_came_from(gcs):
    gcs.blob("m/model.bin").upload_from_string(b"weights")
    document = {"type": "gs", "bucket": gcs.name}
    store = CredentialStore(
        documents={
            "emulator": {**document, "endpoint_url": gcs.endpoint},
            "elsewhere": {**document, "endpoint_url": "http://127.0.0.1:1"},
        }
    )
    options = TransferOptions(retry=RetryPolicy(attempts=2, initial_delay=0.01))
    assert read_tree(fetch({"key": "emulator", "path": "m"}, store=store)) == {"model.bin": b"weights"}
    with pytest.raises(StorageError, match="gs://"):
        fetch({"key": "elsewhere", "path": "m"}, store=store, options=options)


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


class _TokenHandler(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, as far as a service account needs it."""

    requests: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.requests.append(self.rfile.read(length).decode())
        body = json.dumps({"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def test_service_account_from_the_storage_config(gcs, isolated):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    gcs.blob("m/model.bin").upload_from_string(b"weights")
    token_server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    threading.Thread(target=token_server.serve_forever, daemon=True).start()
    try:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        account = {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "1",
            "private_key": pem,
            "client_email": "fetcher@test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"http://127.0.0.1:{token_server.server_port}/token",
        }
        document = {
            "type": "gs",
            "bucket": gcs.name,
            "endpoint_url": gcs.endpoint,
            "base64_service_account": base64.b64encode(json.dumps(account).encode()).decode(),
        }
        store = isolated / "storage-config"
        store.mkdir(parents=True)
        (store / "gcs.json").write_text(json.dumps(document))
        assert read_tree(fetch({"key": "gcs", "path": "m"})) == {"model.bin": b"weights"}
        assert any("jwt-bearer" in request for request in _TokenHandler.requests)
    finally:
        token_server.shutdown()


def test_a_failing_server_is_tried_as_the_retry_policy_says(monkeypatch):
    """One layer of retries (the fetcher's five attempts), not the client's own two minutes of them."""
    from modelplane.storage import StorageError

    requests = []

    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with pytest.raises(StorageError, match="fetching gs://models/iris failed: 503"):
            fetch("gs://models/iris")
    finally:
        server.shutdown()
        server.server_close()
    # (The client also reads the bucket's metadata on a thread of its own, as it likes.)
    listings = [path for path in requests if path.startswith("/storage/v1/b/models/o?")]
    assert len(listings) == 5
