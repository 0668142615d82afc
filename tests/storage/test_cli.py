import io
import logging
import os
import subprocess
import sys

from modelplane.storage.progress import BarProgress, LogProgress

from .helpers import read_tree, tar_of
from .servers import start_http


def modelplane(*args):
    return subprocess.run(
        [sys.executable, "-m", "modelplane", "storage", "fetch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )


def test_fetch_into_dest(tmp_path):
    files = {"model.bin": os.urandom(10_000), "meta/info.json": b"{}"}
    (tmp_path / "www").mkdir()
    tar_of(tmp_path / "www" / "model.tar.gz", files)
    server = start_http(tmp_path / "www")
    try:
        for extra in ([], ["--no-cache"]):
            dest = tmp_path / f"mnt-{len(extra)}" / "models"
            result = modelplane(f"{server.url}/model.tar.gz", str(dest), *extra)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == str(dest)
            assert read_tree(dest) == files
    finally:
        server.stop()


def test_keep_existing_leaves_a_fetched_model_alone(tmp_path):
    """A storage initializer that runs again in the same pod finds its model already there."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.bin").write_bytes(b"weights")
    dest = tmp_path / "provision" / "models"
    first = modelplane(str(tmp_path / "model"), str(dest), "--no-cache", "--keep-existing")
    assert first.returncode == 0, first.stderr
    (tmp_path / "model" / "other.bin").write_bytes(b"another file")
    again = modelplane(str(tmp_path / "model"), str(dest), "--no-cache", "--keep-existing")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(dest)
    assert read_tree(dest) == {"model.bin": b"weights"}
    without = modelplane(str(tmp_path / "model"), str(dest), "--no-cache")
    assert without.returncode == 2 and "exists and is not an empty folder" in without.stderr
    relative = subprocess.run(  # DEST named from the working folder: printed from /, as a fetch prints it
        [sys.executable, "-m", "modelplane", "storage", "fetch", "unused", "models", "--keep-existing"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=dest.parent,
    )
    assert relative.stdout.strip() == str(dest), relative.stderr


def test_without_dest_prints_the_cached_folder(tmp_path, cache_dir):
    (tmp_path / "model.joblib").write_bytes(b"weights")
    result = modelplane(str(tmp_path / "model.joblib"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(cache_dir))


def test_user_errors_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.bin").write_bytes(b"weights")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.bin").write_bytes(b"something else")
    for source, message in [
        ("ftp://host/model", "unknown storage scheme ftp://"),
        ('{"key": "nope", "path": "x"}', "no storage config named 'nope'"),
        ("{not json", "not valid JSON"),
        (str(tmp_path / "missing"), "does not exist"),
        (str(tmp_path / "model"), "exists and is not an empty folder"),
    ]:
        dest = tmp_path / ("full" if "not an empty folder" in message else "dest")
        result = modelplane(source, str(dest))
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "dest").exists()


def test_bar_on_a_terminal():
    stream = io.StringIO()
    bar = BarProgress(stream)
    bar.start("s3://bucket/model", 10 * 1024 * 1024)
    bar.advance(10 * 1024 * 1024)
    bar.finish()
    assert "[##############################] 100%" in stream.getvalue()
    assert "s3://bucket/model: 10.0 MiB" in stream.getvalue()


def test_log_lines_elsewhere(caplog):
    caplog.set_level(logging.INFO, "modelplane.storage")
    progress = LogProgress(interval=0, threshold=1024)
    progress.start("s3://bucket/model", 4096)
    progress.advance(2048)
    progress.advance(2048)
    progress.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("fetching s3://bucket/model")
    assert any("(50%)" in m for m in messages)
    assert messages[-1].startswith("fetched s3://bucket/model")
