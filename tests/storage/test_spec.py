import json

import pytest

from modelplane.storage import ConfigurationError, CredentialStore, StorageConfig, resolve


def write(folder, key, document, suffix=".json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}{suffix}").write_text(json.dumps(document))


MINIO = {
    "type": "s3",
    "access_key_id": "AKIAEXAMPLEKEY",
    "secret_access_key": "very-secret-value",
    "endpoint_url": "http://127.0.0.1:9000",
    "bucket": "default-bucket",
    "region": "us-east-1",
}


def test_spec_resolves_against_the_default_store(isolated):
    write(isolated / "storage-config", "localMinIO", MINIO)
    source = resolve(
        storage={"key": "localMinIO", "path": "sklearn/iris", "parameters": {"bucket": "example-models"}}
    )
    assert source.uri == "s3://example-models/sklearn/iris"
    assert source.config["endpoint_url"] == "http://127.0.0.1:9000"
    assert source.config["secret_access_key"] == "very-secret-value"


def test_store_folder_can_be_given_and_holds_secret_style_files(tmp_path):
    write(tmp_path / "creds", "gcs", {"type": "gs", "bucket": "b-models"}, suffix="")
    source = resolve(storage={"key": "gcs", "path": "flowers"}, store=CredentialStore(tmp_path / "creds"))
    assert source.uri == "gs://b-models/flowers"


def test_a_pvc_storage_names_its_claim_as_modelmesh_s_does(tmp_path):
    write(tmp_path, "localPVC", {"type": "pvc", "name": "models"})
    store = CredentialStore(tmp_path)
    source = resolve(storage={"key": "localPVC", "path": "tensorflow/mnist.savedmodel"}, store=store)
    assert source.uri == "pvc://models/tensorflow/mnist.savedmodel"
    write(tmp_path, "nameless", {"type": "pvc"})
    with pytest.raises(ConfigurationError, match="has type pvc and no name"):
        resolve(storage={"key": "nameless", "path": "x"}, store=store)


def test_store_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPLANE_STORAGE_CONFIG_DIR", str(tmp_path / "elsewhere"))
    write(
        tmp_path / "elsewhere", "default", {"type": "azure", "account_name": "acct1", "container": "models"}
    )
    assert resolve(storage={"path": "iris"}).uri == "https://acct1.blob.core.windows.net/models/iris"


def test_kserve_style_storage_config_env(monkeypatch):
    monkeypatch.setenv("STORAGE_CONFIG", json.dumps(MINIO))
    monkeypatch.setenv("STORAGE_OVERRIDE_CONFIG", json.dumps({"bucket": "override-bucket"}))
    source = resolve(storage={"key": "anything", "path": "m"})
    assert source.uri == "s3://override-bucket/m"
    # A plain storageUri also picks the env document up, for its credentials.
    assert resolve("s3://other/m").config["access_key_id"] == "AKIAEXAMPLEKEY"


def test_uri_and_key_together_take_the_uri_and_the_credentials(isolated):
    write(isolated / "storage-config", "minio", MINIO)
    source = resolve("s3://explicit/path", {"key": "minio"})
    assert source.uri == "s3://explicit/path"
    assert source.config["access_key_id"] == "AKIAEXAMPLEKEY"


def test_uri_and_path_together_are_refused(isolated):
    write(isolated / "storage-config", "minio", MINIO)
    with pytest.raises(ConfigurationError, match="only one of storageUri and storage.path"):
        resolve("s3://explicit/path", {"key": "minio", "path": "sklearn/iris"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"key": "missing"}, "no storage config named 'missing'"),
        ({"key": "../etc/passwd"}, "not a valid storage key"),
        ({"key": "nobucket", "path": "x"}, "names no bucket"),
        ({"key": "notype"}, "has no type"),
        ({"key": "minio", "bogus": 1}, "unknown field"),
    ],
)
def test_spec_errors_are_clear_and_hold_no_secret(isolated, spec, message):
    write(isolated / "storage-config", "nobucket", {"type": "s3", "secret_access_key": "very-secret-value"})
    write(isolated / "storage-config", "notype", {"secret_access_key": "very-secret-value"})
    with pytest.raises(ConfigurationError, match=message) as caught:
        resolve(storage=spec)
    assert "very-secret-value" not in str(caught.value)


def test_broken_document_is_not_echoed(isolated):
    folder = isolated / "storage-config"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text('{"secret_access_key": "very-secret-value",')
    with pytest.raises(ConfigurationError) as caught:
        resolve(storage={"key": "bad"})
    assert "very-secret-value" not in str(caught.value)


def test_config_masks_secrets_in_repr_and_messages():
    config = StorageConfig(MINIO)
    assert "very-secret-value" not in repr(config)
    assert "AKIAEXAMPLEKEY" not in repr(config)
    assert "http://127.0.0.1:9000" in repr(config)
    assert config.redact("denied for very-secret-value") == "denied for ***"


def test_flags_accept_kserve_spellings(monkeypatch):
    monkeypatch.setenv("S3_VERIFY_SSL", "0")
    assert StorageConfig().flag("verify_ssl", "S3_VERIFY_SSL", default=True) is False
    assert StorageConfig({"anonymous": "True"}).flag("anonymous") is True
    with pytest.raises(ConfigurationError):
        StorageConfig({"anonymous": "maybe"}).flag("anonymous")


def test_documents_given_come_before_the_folder_which_still_answers_other_keys(isolated):
    """A platform's storage-config Secret (its documents) first; the per-key files keep working."""
    write(isolated / "storage-config", "localMinIO", MINIO)
    write(isolated / "storage-config", "files", {"type": "gs", "bucket": "from-files"})
    secret = {"localMinIO": {**MINIO, "bucket": "from-secret"}}
    store = CredentialStore(documents=secret, documents_from="Secret default/storage-config")
    assert resolve(storage={"key": "localMinIO", "path": "m"}, store=store).uri == "s3://from-secret/m"
    assert resolve(storage={"key": "files", "path": "m"}, store=store).uri == "gs://from-files/m"
    with pytest.raises(ConfigurationError, match="looked in Secret default/storage-config and "):
        resolve(storage={"key": "nowhere", "path": "m"}, store=store)
