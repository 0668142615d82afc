import json
import os

import httpx
import pytest

from modelplane.storage import AccessDeniedError, NotFoundError, StorageError, fetch

from .helpers import read_tree, tar_of, zip_of
from .servers import start_http


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    return root


def stats(server):
    return httpx.get(f"{server.url}/__stats").json()


def test_single_file(served, cache_dir, fast_retry):
    data = os.urandom(5 * 1024 * 1024 + 17)
    (served / "model.joblib").write_bytes(data)
    server = start_http(served)
    try:
        folder = fetch(f"{server.url}/model.joblib", options=fast_retry)
        assert read_tree(folder) == {"model.joblib": data}
        assert folder.is_relative_to(cache_dir)
        # Several ranges were fetched at once: more than the probe and one GET.
        assert stats(server)["requests"] > 2
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["model.tar.gz", "model.tgz", "model.tar", "model.zip"])
def test_archives_are_unpacked(served, name):
    files = {"model.bin": os.urandom(1000), "sub/config.json": b"{}"}
    if name.endswith(".zip"):
        zip_of(served / name, files)
    else:
        tar_of(served / name, files, "w" if name.endswith(".tar") else "w:gz")
    server = start_http(served)
    try:
        folder = fetch(f"{server.url}/{name}")
        assert read_tree(folder) == files
    finally:
        server.stop()


def test_an_archive_named_in_the_query_string_is_unpacked(served):
    # KServe reads the type from the query string when the path's name has none.
    files = {"model.bin": os.urandom(1000), "sub/config.json": b"{}"}
    tar_of(served / "download", files)
    (served / "model.joblib").write_bytes(b"weights")
    server = start_http(served)
    try:
        assert read_tree(fetch(f"{server.url}/download?file=model.tar.gz")) == files
        assert read_tree(fetch(f"{server.url}/model.joblib?token=abc")) == {"model.joblib": b"weights"}
    finally:
        server.stop()


def test_empty_file(served):
    (served / "empty.bin").write_bytes(b"")
    server = start_http(served)
    try:
        assert read_tree(fetch(f"{server.url}/empty.bin")) == {"empty.bin": b""}
    finally:
        server.stop()


def test_second_fetch_is_served_from_the_cache(served, fast_retry):
    (served / "model.bin").write_bytes(os.urandom(100_000))
    server = start_http(served)
    try:
        first = fetch(f"{server.url}/model.bin", options=fast_retry)
        sent = stats(server)["body_bytes"]
        second = fetch(f"{server.url}/model.bin", options=fast_retry)
        assert first == second
        assert stats(server)["body_bytes"] - sent <= 1  # only the one-byte probe
        # A new version of the file is a new cache entry.
        (served / "model.bin").write_bytes(b"new weights")
        third = fetch(f"{server.url}/model.bin", options=fast_retry)
        assert third != first
        assert (third / "model.bin").read_bytes() == b"new weights"
    finally:
        server.stop()


def test_dropped_connection_is_resumed(served, fast_retry):
    data = os.urandom(3 * 1024 * 1024)
    (served / "model.bin").write_bytes(data)
    server = start_http(served, "--cut-first", "200000", "--no-ranges")
    try:
        folder = fetch(f"{server.url}/model.bin", options=fast_retry)
        assert (folder / "model.bin").read_bytes() == data
        assert stats(server)["cuts"] == 1
    finally:
        server.stop()


def test_dropped_connection_in_a_range_is_resumed_from_where_it_stopped(served, fast_retry):
    data = os.urandom(4 * 1024 * 1024)
    (served / "model.bin").write_bytes(data)
    server = start_http(served, "--cut-first", "300000")
    try:
        folder = fetch(f"{server.url}/model.bin", options=fast_retry)
        assert (folder / "model.bin").read_bytes() == data
        assert stats(server)["body_bytes"] < len(data) + 150_000  # not the 300000 bytes again
    finally:
        server.stop()


def test_a_server_that_always_drops_the_connection_ends_in_an_error(served, cache_dir, fast_retry):
    (served / "model.bin").write_bytes(os.urandom(1024 * 1024))
    server = start_http(served, "--cut-always", "100000", "--no-ranges")
    try:
        # Without ranges every retry starts over, and gets no further than the last one.
        with pytest.raises(StorageError, match="model.bin"):
            fetch(f"{server.url}/model.bin", options=fast_retry)
        assert stats(server)["cuts"] == 1 + fast_retry.retry.attempts  # the size probe, then each try
        assert [p for p in cache_dir.iterdir() if not p.name.startswith(".")] == []
    finally:
        server.stop()


def test_server_killed_midway_leaves_nothing_and_a_retry_succeeds(served, cache_dir, fast_retry):
    data = os.urandom(4 * 1024 * 1024)
    (served / "model.bin").write_bytes(data)
    server = start_http(served, "--die-after", str(len(data) // 2))
    uri = f"{server.url}/model.bin"
    try:
        with pytest.raises(StorageError, match="model.bin"):
            fetch(uri, options=fast_retry)
        assert server.process.wait(10) == 1  # the server died midway through the body
        entries = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
        assert entries == []
        assert list((cache_dir / ".tmp").iterdir()) == []
        # The same server comes back, on the same port: the next fetch succeeds.
        server = start_http(served, port=server.port)
        folder = fetch(uri, options=fast_retry)
        assert (folder / "model.bin").read_bytes() == data
    finally:
        server.stop()


def test_errors_name_the_problem_without_credentials(served, monkeypatch):
    (served / "private").mkdir()
    (served / "private" / "m.bin").write_bytes(b"x")
    server = start_http(served)
    try:
        with pytest.raises(NotFoundError, match="404"):
            fetch(f"{server.url}/nothing.bin")
        with pytest.raises(AccessDeniedError, match="403") as caught:
            fetch(f"{server.url}/private/m.bin?token=hunter2-secret")
        assert "hunter2-secret" not in str(caught.value)
        # Headers for a host come from `<host>-headers`, as a JSON object.
        monkeypatch.setenv("127.0.0.1-headers", json.dumps({"Authorization": "Bearer let-me-in"}))
        assert (fetch(f"{server.url}/private/m.bin") / "m.bin").read_bytes() == b"x"
    finally:
        server.stop()


def test_pinned_checksum_is_checked(served):
    (served / "model.bin").write_bytes(b"weights")
    server = start_http(served)
    try:
        wrong = "0" * 64
        with pytest.raises(StorageError, match="sha256 checksum does not match"):
            fetch(f"{server.url}/model.bin#sha256={wrong}")
        import hashlib

        right = hashlib.sha256(b"weights").hexdigest()
        assert (fetch(f"{server.url}/model.bin#sha256={right}") / "model.bin").read_bytes() == b"weights"
    finally:
        server.stop()


def test_unreachable_server_is_a_clear_error(fast_retry):
    from modelplane.local.ports import free_loopback_port

    with pytest.raises(StorageError, match=r"http://127\.0\.0\.1:\d+/model\.bin"):
        fetch(f"http://127.0.0.1:{free_loopback_port()}/model.bin", options=fast_retry)
