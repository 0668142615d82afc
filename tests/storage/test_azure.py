import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from modelplane.storage import (
    AccessDeniedError,
    CredentialStore,
    NotFoundError,
    RetryPolicy,
    StorageError,
    TransferOptions,
    fetch,
)

from .helpers import model_files, read_tree, tar_of

# Azurite's well-known development account.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture
def container(azurite_server, request):
    endpoint = f"{azurite_server.url}/{ACCOUNT}"
    service = BlobServiceClient(endpoint, credential={"account_name": ACCOUNT, "account_key": KEY})
    name = "models-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    client = service.create_container(name)
    client.endpoint = endpoint  # type: ignore[attr-defined]
    return client


def upload_tree(container, root, prefix):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            container.upload_blob(f"{prefix}/{path.relative_to(root).as_posix()}", path.read_bytes())


def uri(container, path):
    return f"https://{ACCOUNT}.blob.core.windows.net/{container.container_name}/{path}"


def test_account_key_from_environment(tmp_path, container, monkeypatch):
    files = model_files(tmp_path / "iris")
    upload_tree(container, tmp_path / "iris", "sklearn/iris")
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", container.endpoint)
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", KEY)
    options = TransferOptions(concurrency=4, part_size=1024 * 1024)
    assert read_tree(fetch(uri(container, "sklearn/iris"), options=options)) == files


def test_sas_token_in_the_uri_stays_out_of_messages(tmp_path, container, monkeypatch):
    container.upload_blob("m/model.bin", b"weights")
    sas = generate_container_sas(
        ACCOUNT,
        container.container_name,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", container.endpoint)
    assert read_tree(fetch(uri(container, "m") + "?" + sas)) == {"model.bin": b"weights"}
    with pytest.raises(NotFoundError) as caught:
        fetch(uri(container, "missing") + "?" + sas)
    assert sas not in str(caught.value)


def test_storage_spec_with_archive(tmp_path, container, isolated):
    files = {"model.pt": b"torch", "extra/handler.py": b"print(1)"}
    container.upload_blob("m/model.tar.gz", tar_of(tmp_path / "m.tgz", files).read_bytes())
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    document = {
        "type": "azure",
        "account_name": ACCOUNT,
        "container": container.container_name,
        "account_key": KEY,
        "endpoint_url": container.endpoint,
    }
    (store / "azure.json").write_text(json.dumps(document))
    assert read_tree(fetch({"key": "azure", "path": "m/model.tar.gz"})) == files


def test_a_cached_copy_serves_only_the_endpoint_it_came_from(container, monkeypatch):
    from azure.core.exceptions import ServiceRequestError

    from modelplane.storage.backends.azure import AzureBackend

    container.upload_blob("m/model.bin", b"weights")
    document = {"type": "azure", "account_name": ACCOUNT, "container": container.container_name}
    store = CredentialStore(
        documents={
            "azurite": {**document, "account_key": KEY, "endpoint_url": container.endpoint},
            "elsewhere": {**document, "account_key": KEY, "endpoint_url": f"http://127.0.0.1:1/{ACCOUNT}"},
        }
    )
    options = TransferOptions(retry=RetryPolicy(attempts=1, initial_delay=0.01))
    first = fetch({"key": "azurite", "path": "m"}, store=store)
    assert read_tree(first) == {"model.bin": b"weights"}

    def unreachable(self):  # as the client says after its own retries, which take a minute
        raise ServiceRequestError("connection refused")

    monkeypatch.setattr(AzureBackend, "list_objects", unreachable)
    assert fetch({"key": "azurite", "path": "m"}, store=store, options=options) == first
    with pytest.raises(StorageError, match="connection refused"):
        fetch({"key": "elsewhere", "path": "m"}, store=store, options=options)


def test_anonymous_access_to_a_private_container_is_denied(container, monkeypatch):
    container.upload_blob("m/model.bin", b"weights")
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", container.endpoint)
    with pytest.raises((AccessDeniedError, NotFoundError)) as caught:
        fetch(uri(container, "m"))
    assert KEY not in str(caught.value)


def test_anonymous_access_to_a_public_container(azurite_server, monkeypatch):
    endpoint = f"{azurite_server.url}/{ACCOUNT}"
    service = BlobServiceClient(endpoint, credential={"account_name": ACCOUNT, "account_key": KEY})
    public = service.create_container("public-models", public_access="container")
    public.upload_blob("m/model.bin", b"open weights")
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", endpoint)
    folder = fetch(f"https://{ACCOUNT}.blob.core.windows.net/public-models/m")
    assert read_tree(folder) == {"model.bin": b"open weights"}
