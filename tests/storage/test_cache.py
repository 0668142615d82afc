"""Two replicas asking for the same model at once: one download, in separate processes."""

import os
import subprocess
import sys
import textwrap

import httpx

from modelplane.storage import ModelCache, fetch

from .servers import start_http

FETCH = textwrap.dedent(
    """
    import sys
    from modelplane.storage import TransferOptions, fetch
    print(fetch(sys.argv[1], options=TransferOptions(concurrency=2, part_size=1 << 20)), flush=True)
    """
)


def test_two_processes_at_once_download_once(tmp_path, cache_dir):
    data = os.urandom(8 * 1024 * 1024)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "model.bin").write_bytes(data)
    server = start_http(tmp_path / "www")
    try:
        uri = f"{server.url}/model.bin"
        replicas = [
            subprocess.Popen(
                [sys.executable, "-c", FETCH, uri], stdout=subprocess.PIPE, text=True, env=os.environ
            )
            for _ in range(3)
        ]
        folders = {replica.communicate(timeout=120)[0].strip() for replica in replicas}
        assert all(replica.returncode == 0 for replica in replicas)
        assert len(folders) == 1
        assert (cache_dir / folders.pop()).parent.parent == cache_dir  # an entry of the cache
        sent = httpx.get(f"{server.url}/__stats").json()["body_bytes"]
        assert len(data) <= sent < 2 * len(data)  # one download, plus the one-byte probes
    finally:
        server.stop()


def test_restart_with_the_storage_unreachable_uses_the_cached_copy(tmp_path, cache_dir, fast_retry):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "model.bin").write_bytes(b"weights")
    server = start_http(tmp_path / "www")
    uri = f"{server.url}/model.bin"
    try:
        first = fetch(uri, options=fast_retry)
    finally:
        server.stop()
    assert fetch(uri, options=fast_retry) == first


def test_a_killed_filler_leaves_only_a_staging_folder_that_is_cleaned_up(tmp_path, cache_dir):
    cache = ModelCache(cache_dir)
    name = cache.entry_name("s3://bucket/model", "v1")
    stale = cache_dir / ".tmp" / f"{name}.abandoned"
    (stale / "model").mkdir(parents=True)
    (stale / "model" / "half.bin").write_bytes(b"half")
    assert cache.lookup("s3://bucket/model", "v1") is None

    def build(folder):
        folder.mkdir()
        (folder / "whole.bin").write_bytes(b"whole")

    model = cache.fill("s3://bucket/model", "v1", build, {"uri": "s3://bucket/model"})
    assert [p.name for p in model.iterdir()] == ["whole.bin"]
    assert not stale.exists()
    assert cache.lookup("s3://bucket/model", "v1") == model


def test_one_uri_on_two_servers_is_two_entries(cache_dir):
    cache = ModelCache(cache_dir)

    def build(folder):
        folder.mkdir()
        (folder / "model.bin").write_bytes(b"weights")

    one = cache.fill("s3://bucket/model", "v1", build, {}, endpoint="http://one:9000")
    assert cache.lookup("s3://bucket/model", "v1", endpoint="http://one:9000") == one
    assert cache.lookup("s3://bucket/model", "v1", endpoint="http://two:9000") is None
    assert cache.latest("s3://bucket/model", endpoint="http://two:9000") is None
    assert cache.latest("s3://bucket/model", endpoint="http://one:9000") == one
    # A URI that names its server alone keeps the name its entries had before endpoints counted.
    plain = cache.fill("https://example.com/model.bin", "v1", build, {})
    assert plain.parent.name.startswith(f"example.com-model.bin-{_digest('https://example.com/model.bin')}-")


def _digest(text):
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_a_cached_model_changed_or_damaged_since_is_fetched_again(tmp_path, cache_dir):
    weights = os.urandom(4096)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "model.bin").write_bytes(weights)
    server = start_http(tmp_path / "www")
    sent = 0

    def downloaded() -> bool:  # whether the model came again since last asked (not only the probes)
        nonlocal sent
        before, sent = sent, httpx.get(f"{server.url}/__stats").json()["body_bytes"]
        return sent - before >= len(weights)

    try:
        uri = f"{server.url}/model.bin"
        model = fetch(uri)
        assert downloaded()
        (model / "__pycache__").mkdir()  # what a server may write beside its model is no change
        (model / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"compiled")
        assert fetch(uri) == model and not downloaded()
        (model / "model.bin").write_bytes(b"x" * len(weights))  # a server that wrote into its model
        assert (fetch(uri) / "model.bin").read_bytes() == weights and downloaded()
        (model / "model.bin").unlink()
        assert (fetch(uri) / "model.bin").read_bytes() == weights and downloaded()
        assert fetch(uri) == model and not downloaded()
        assert not list((cache_dir / ".tmp").iterdir())  # the changed copies are gone
    finally:
        server.stop()
