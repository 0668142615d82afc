import hashlib
import json
import os
import subprocess
import sys

import boto3
import pytest

from modelplane.storage import (
    AccessDeniedError,
    CredentialStore,
    NotFoundError,
    RetryPolicy,
    StorageError,
    TransferError,
    TransferOptions,
    fetch,
)

from .helpers import model_files, read_tree, tar_of
from .servers import CuttingProxy, start_moto

KEYS = {"access_key_id": "modelplane-test-key", "secret_access_key": "modelplane-test-secret"}


@pytest.fixture
def s3(moto_server, request):
    client = boto3.client(
        "s3",
        endpoint_url=moto_server.url,
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
        region_name="us-east-1",
    )
    bucket = "models-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket  # type: ignore[attr-defined]
    client.endpoint = moto_server.url  # type: ignore[attr-defined]
    return client


def upload_tree(client, root, prefix):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=client.bucket,
                Key=f"{prefix}/{path.relative_to(root).as_posix()}",
                Body=path.read_bytes(),
            )


def s3_env(monkeypatch, s3):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_prefix_with_environment_settings(tmp_path, s3, monkeypatch):
    files = model_files(tmp_path / "iris")
    upload_tree(s3, tmp_path / "iris", "sklearn/iris")
    s3.put_object(Bucket=s3.bucket, Key="sklearn/iris2/other.bin", Body=b"not part of iris")
    s3.put_object(Bucket=s3.bucket, Key="sklearn/iris/", Body=b"")  # a folder marker
    s3_env(monkeypatch, s3)
    options = TransferOptions(concurrency=4, part_size=1024 * 1024)  # the 3 MiB file goes in ranges
    folder = fetch(f"s3://{s3.bucket}/sklearn/iris", options=options)
    assert read_tree(folder) == files


def test_allow_and_ignore_patterns(tmp_path, s3, monkeypatch):
    for name in ["model.safetensors", "model.bin", "config.json", "docs/readme.md"]:
        s3.put_object(Bucket=s3.bucket, Key=f"llm/{name}", Body=name.encode())
    s3_env(monkeypatch, s3)
    folder = fetch(f"s3://{s3.bucket}/llm", allow_patterns=["*.safetensors", "*.json"])
    assert sorted(read_tree(folder)) == ["config.json", "model.safetensors"]
    monkeypatch.setenv("STORAGE_IGNORE_PATTERNS", '["*.bin", "docs/*"]')
    assert sorted(read_tree(fetch(f"s3://{s3.bucket}/llm"))) == ["config.json", "model.safetensors"]
    with pytest.raises(NotFoundError, match="matches the allow and ignore patterns"):
        fetch(f"s3://{s3.bucket}/llm", allow_patterns=["*.onnx"])


def test_connection_cut_midway_is_resumed(s3, moto_server, monkeypatch):
    data = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=data)
    proxy = CuttingProxy(moto_server.port, cut_after=2 * 1024 * 1024)
    try:
        s3_env(monkeypatch, s3)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        options = TransferOptions(concurrency=1, retry=RetryPolicy(attempts=3, initial_delay=0.01))
        folder = fetch(f"s3://{s3.bucket}/m", options=options)
        assert (folder / "model.bin").read_bytes() == data
        assert proxy.cuts == 1
    finally:
        proxy.stop()


def test_single_object_and_archive(tmp_path, s3, monkeypatch):
    s3.put_object(Bucket=s3.bucket, Key="m/model.joblib", Body=b"weights")
    files = {"saved_model.pb": os.urandom(2000), "variables/v.data": b"v"}
    s3.put_object(
        Bucket=s3.bucket, Key="m/model.tar.gz", Body=tar_of(tmp_path / "m.tar.gz", files).read_bytes()
    )
    s3_env(monkeypatch, s3)
    assert read_tree(fetch(f"s3://{s3.bucket}/m/model.joblib")) == {"model.joblib": b"weights"}
    assert read_tree(fetch(f"s3://{s3.bucket}/m/model.tar.gz")) == files


def test_storage_spec_with_credentials_store(tmp_path, s3, isolated):
    files = model_files(tmp_path / "iris", big=100_000)
    upload_tree(s3, tmp_path / "iris", "sklearn")
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    document = {"type": "s3", "endpoint_url": s3.endpoint, "region": "us-east-1", "bucket": "wrong", **KEYS}
    (store / "localMinIO.json").write_text(json.dumps(document))
    spec = {"key": "localMinIO", "path": "sklearn", "parameters": {"bucket": s3.bucket}}
    assert read_tree(fetch(spec)) == files


def test_kserve_storage_config_env(tmp_path, s3, monkeypatch):
    s3.put_object(Bucket=s3.bucket, Key="x/model.bin", Body=b"weights")
    document = {"type": "s3", "endpoint_url": s3.endpoint, "region": "us-east-1", "bucket": s3.bucket, **KEYS}
    monkeypatch.setenv("STORAGE_CONFIG", json.dumps(document))
    assert read_tree(fetch({"path": "x"})) == {"model.bin": b"weights"}


def test_a_spec_without_a_key_reads_kserves_default_entry_for_its_type(s3, isolated):
    s3.put_object(Bucket=s3.bucket, Key="x/model.bin", Body=b"weights")
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    document = {"type": "s3", "endpoint_url": s3.endpoint, "region": "us-east-1", "bucket": s3.bucket, **KEYS}
    (store / "default_s3").write_text(json.dumps(document))
    assert read_tree(fetch({"path": "x", "parameters": {"type": "s3"}})) == {"model.bin": b"weights"}


def test_a_spec_without_a_key_needs_no_entry_when_its_parameters_say_it_all(s3):
    s3.put_object(Bucket=s3.bucket, Key="x/model.bin", Body=b"weights")
    parameters = {
        "type": "s3",
        "bucket": s3.bucket,
        "endpoint_url": s3.endpoint,
        "region": "us-east-1",
        **KEYS,
    }
    assert read_tree(fetch({"path": "x", "parameters": parameters})) == {"model.bin": b"weights"}
    with pytest.raises(StorageError, match="no storage config named 'default'.*storage.parameters.type"):
        fetch({"path": "x"})
    with pytest.raises(StorageError, match="no storage config named 'mine'"):
        fetch({"key": "mine", "path": "x", "parameters": parameters})


def test_changed_object_is_a_new_version(s3, monkeypatch):
    s3_env(monkeypatch, s3)
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"v1")
    first = fetch(f"s3://{s3.bucket}/m")
    assert fetch(f"s3://{s3.bucket}/m") == first
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"v2")
    second = fetch(f"s3://{s3.bucket}/m")
    assert second != first and (second / "model.bin").read_bytes() == b"v2"


def test_md5_etag_is_checked(s3, monkeypatch):
    from modelplane.storage.backends.base import RemoteObject
    from modelplane.storage.backends.s3 import S3Backend

    s3_env(monkeypatch, s3)
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"weights")
    original = S3Backend.list_objects

    def tampered(self):
        [obj] = original(self)
        assert obj.checksum is not None and obj.checksum.algorithm == "md5"
        wrong = type(obj.checksum)("md5", hashlib.md5(b"other").digest())
        return [RemoteObject(obj.name, obj.key, obj.size, obj.version, wrong)]

    monkeypatch.setattr(S3Backend, "list_objects", tampered)
    with pytest.raises(StorageError, match="md5 checksum does not match"):
        fetch(f"s3://{s3.bucket}/m/model.bin")


def test_a_prefix_that_only_begins_other_names_says_what_it_found(s3, monkeypatch):
    # KServe's plain prefix match would fetch model-old/ here; modelplane reads a folder, and says so.
    s3.put_object(Bucket=s3.bucket, Key="model-old/model.joblib", Body=b"x")
    s3.put_object(Bucket=s3.bucket, Key="model/", Body=b"")  # a folder marker alone
    s3_env(monkeypatch, s3)
    with pytest.raises(NotFoundError) as refused:
        fetch(f"s3://{s3.bucket}/model")
    message = str(refused.value)
    assert message.startswith(f"no model found at s3://{s3.bucket}/model: no file lies under model/")
    assert "model-old/model.joblib" in message and "folder" in message


def test_errors_are_clear_and_hold_no_secret(s3, monkeypatch):
    s3_env(monkeypatch, s3)
    with pytest.raises(NotFoundError, match=f"no model found at s3://{s3.bucket}/nothing"):
        fetch(f"s3://{s3.bucket}/nothing")
    with pytest.raises(NotFoundError, match="does not exist"):
        fetch("s3://no-such-bucket-here/m")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-WRONG-KEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"x")
    # moto accepts any key unless told otherwise; a bad endpoint shows the error path instead.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")
    with pytest.raises(StorageError) as caught:
        fetch(
            f"s3://{s3.bucket}/m", options=TransferOptions(retry=RetryPolicy(attempts=2, initial_delay=0.01))
        )
    assert "wrong-secret-value" not in str(caught.value) and "AKIA-WRONG-KEY" not in str(caught.value)


def test_tls_settings(tmp_path, s3, monkeypatch):
    from modelplane.storage import ConfigurationError, StorageConfig, parse_uri
    from modelplane.storage.backends.s3 import S3Backend

    location = parse_uri(f"s3://{s3.bucket}/m")
    with pytest.raises(ConfigurationError, match="the CA bundle .*missing.pem does not exist"):
        S3Backend(location, StorageConfig({"ca_bundle": str(tmp_path / "missing.pem")}))
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert S3Backend(location, StorageConfig({"ca_bundle": str(bundle)}))._verify() == str(bundle)
    monkeypatch.setenv("S3_VERIFY_SSL", "0")
    assert S3Backend(location, StorageConfig({"ca_bundle": str(bundle)}))._verify() is False
    # The storage config wins over the environment.
    assert S3Backend(location, StorageConfig({"verify_ssl": "true"}))._verify() is True


def test_logs_hold_no_secret(s3, isolated, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.DEBUG, logger="modelplane")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")  # modelplane's own retry is the one logged
    store = isolated / "storage-config"
    store.mkdir(parents=True)
    document = {"type": "s3", "endpoint_url": "http://127.0.0.1:1", "bucket": s3.bucket, **KEYS}
    (store / "k.json").write_text(json.dumps(document))
    with pytest.raises(StorageError) as caught:
        fetch(
            {"key": "k", "path": "m"},
            options=TransferOptions(retry=RetryPolicy(attempts=2, initial_delay=0.01)),
        )
    text = caplog.text + str(caught.value)
    assert caplog.records  # the retry was logged
    assert KEYS["secret_access_key"] not in text and KEYS["access_key_id"] not in text


def test_access_denied(s3, monkeypatch):
    s3_env(monkeypatch, s3)
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"x")
    s3.put_bucket_policy(
        Bucket=s3.bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": f"arn:aws:s3:::{s3.bucket}/*",
                    }
                ],
            }
        ),
    )
    monkeypatch.setenv("awsAnonymousCredential", "true")  # unsigned requests: the policy applies
    with pytest.raises(AccessDeniedError, match="access denied"):
        fetch(f"s3://{s3.bucket}/m/model.bin")


def test_a_cached_copy_serves_only_the_server_it_came_from(s3, monkeypatch, fast_retry):
    """The same bucket and path on another S3 server, unreachable, is not given the first server's copy."""
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")
    s3.put_object(Bucket=s3.bucket, Key="m/model.bin", Body=b"weights")
    document = {"type": "s3", "region": "us-east-1", "bucket": s3.bucket}
    store = CredentialStore(
        documents={
            "good": {**document, "endpoint_url": s3.endpoint, **KEYS},
            "other": {**document, "endpoint_url": "http://127.0.0.1:1", "access_key_id": "someone-else"},
        }
    )
    first = fetch({"key": "good", "path": "m"}, store=store, options=fast_retry)
    assert fetch({"key": "good", "path": "m"}, store=store, options=fast_retry) == first
    with pytest.raises(StorageError, match="127.0.0.1:1") as caught:
        fetch({"key": "other", "path": "m"}, store=store, options=fast_retry)
    assert "copy" not in str(caught.value)
    record = json.loads((first.parent / "fetch.json").read_text())
    assert record["endpoint"] == s3.endpoint and "someone-else" not in json.dumps(record)


def test_the_server_a_copy_came_from_serves_it_while_unreachable(monkeypatch, fast_retry):
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")
    server = start_moto()
    try:
        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", **_boto_keys())
        client.create_bucket(Bucket="models")
        client.put_object(Bucket="models", Key="m/model.bin", Body=b"weights")
        document = {"type": "s3", "endpoint_url": server.url, "region": "us-east-1", "bucket": "models"}
        store = CredentialStore(documents={"k": {**document, **KEYS}})
        first = fetch({"key": "k", "path": "m"}, store=store, options=fast_retry)
    finally:
        server.stop()
    assert fetch({"key": "k", "path": "m"}, store=store, options=fast_retry) == first


def test_a_copy_fetched_with_other_patterns_does_not_stand_in_for_the_whole_model(monkeypatch, fast_retry):
    """While the server is unreachable, only a copy fetched with the same allow and ignore patterns serves:
    the one fetched with `*.json` lacks the weights."""
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")
    server = start_moto()
    try:
        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", **_boto_keys())
        client.create_bucket(Bucket="models")
        client.put_object(Bucket="models", Key="m/config.json", Body=b"{}")
        client.put_object(Bucket="models", Key="m/model.bin", Body=b"weights")
        document = {"type": "s3", "endpoint_url": server.url, "region": "us-east-1", "bucket": "models"}
        store = CredentialStore(documents={"k": {**document, **KEYS}})
        config_only = fetch(
            {"key": "k", "path": "m"}, store=store, options=fast_retry, allow_patterns=["*.json"]
        )
        assert sorted(p.name for p in config_only.iterdir()) == ["config.json"]
    finally:
        server.stop()
    with pytest.raises(StorageError, match="unreachable|connect"):
        fetch({"key": "k", "path": "m"}, store=store, options=fast_retry, allow_patterns=[])
    again = fetch({"key": "k", "path": "m"}, store=store, options=fast_retry, allow_patterns=["*.json"])
    assert again == config_only


def _boto_keys() -> dict[str, str]:
    return {"aws_access_key_id": KEYS["access_key_id"], "aws_secret_access_key": KEYS["secret_access_key"]}


def test_keys_that_would_be_one_file_or_a_file_and_a_folder_are_refused(s3, monkeypatch):
    """Refused before anything is downloaded, naming both keys, and not as a transfer to try again."""
    from modelplane.storage.backends.s3 import S3Backend

    s3_env(monkeypatch, s3)
    reads = []
    original = S3Backend.read

    def read(self, obj, *args):
        reads.append(obj.key)
        return original(self, obj, *args)

    monkeypatch.setattr(S3Backend, "read", read)
    s3.put_object(Bucket=s3.bucket, Key="fd/a", Body=b"file")
    s3.put_object(Bucket=s3.bucket, Key="fd/a/b", Body=b"child")
    s3.put_object(Bucket=s3.bucket, Key="dup/model.joblib", Body=b"ten bytes!")
    s3.put_object(Bucket=s3.bucket, Key="dup//model.joblib", Body=b"ten more bytes")
    with pytest.raises(
        StorageError, match="fd/a would be the file a, and fd/a/b needs a folder of that name"
    ) as caught:
        fetch(f"s3://{s3.bucket}/fd")
    assert not isinstance(caught.value, TransferError)
    with pytest.raises(
        StorageError, match="dup//model.joblib and dup/model.joblib would both be the file model.joblib"
    ):
        fetch(f"s3://{s3.bucket}/dup")
    assert reads == []
    assert read_tree(fetch(f"s3://{s3.bucket}/fd", ignore_patterns=["a/*"])) == {"a": b"file"}
    command = [sys.executable, "-m", "modelplane", "storage", "fetch", f"s3://{s3.bucket}/fd"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"modelplane storage: s3://{s3.bucket}/fd: fd/a")


def test_a_key_with_a_dot_segment_is_skipped_with_a_warning(tmp_path, s3, monkeypatch, caplog):
    s3_env(monkeypatch, s3)
    for key in ("iris/model.joblib", "iris/../escape.txt", "iris/./twice.txt"):
        s3.put_object(Bucket=s3.bucket, Key=key, Body=b"x")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]} >= {"iris/../escape.txt"}
    folder = fetch(f"s3://{s3.bucket}/iris", tmp_path / "model", use_cache=False)
    assert read_tree(folder) == {"model.joblib": b"x"}
    assert not (tmp_path / "escape.txt").exists()
    skipped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "iris/../escape.txt" in message and "outside the model folder" in message for message in skipped
    )
    assert any("iris/./twice.txt" in message for message in skipped)
