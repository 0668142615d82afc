"""A disk that fills up during a fetch: one clear line, no retries, nothing half-written kept.

The disk is a real 1 MiB tmpfs, mounted in a user and mount namespace of the fetch's own (`unshare`,
no root needed where unprivileged user namespaces are allowed). Where they are not, the fetch runs
with RLIMIT_FSIZE at 1 MiB instead: the kernel then fails its writes past that size with EFBIG.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import model_files
from .servers import start_http

SMALL = 1024 * 1024
# Mounts a small tmpfs on $0, runs the rest, then lists the files left on it into $FILES_LEFT.
_ON_A_SMALL_DISK = (
    'mount -t tmpfs -o size=1m modelplane-test "$0" || exit 99; '
    '"$@"; code=$?; find "$0" -type f > "$FILES_LEFT"; exit $code'
)


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def small_disk():
    return "tmpfs" if _namespaces_work() else "rlimit"


def fetch_on_a_small_disk(
    kind: str, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`modelplane storage fetch ARGS` where `{disk}` in ARGS is a folder on a 1 MiB disk; the files
    that are left there afterwards, relative to it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    command = [sys.executable, "-m", "modelplane", "storage", "fetch", *(a.format(disk=disk) for a in args)]
    files_left = tmp_path / "files-left"
    env = {**os.environ, "FILES_LEFT": str(files_left)}
    if kind == "tmpfs":
        wrapped = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _ON_A_SMALL_DISK, str(disk)]
        result = subprocess.run(wrapped + command, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode != 99, result.stderr
        left = [Path(line).relative_to(disk).as_posix() for line in files_left.read_text().splitlines()]
    else:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL, SMALL)),
        )
        left = sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*") if p.is_file())
    return result, left


@pytest.fixture
def model_server(tmp_path):
    (tmp_path / "www").mkdir()
    files = model_files(tmp_path / "www" / "model", big=3 * SMALL)
    server = start_http(tmp_path / "www")
    try:
        yield server, files
    finally:
        server.stop()


def assert_one_clear_line(result: subprocess.CompletedProcess, url: str) -> None:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("modelplane storage:")]
    assert errors == [result.stderr.splitlines()[-1]], result.stderr
    assert errors[0].startswith(f"modelplane storage: no space left to fetch {url}"), result.stderr
    assert "nothing of it was kept" in errors[0]
    assert "Traceback" not in result.stderr
    assert "retrying" not in result.stderr  # a full disk stays full: no download again


def test_a_full_disk_fails_the_fetch_into_the_cache_and_keeps_nothing(small_disk, tmp_path, model_server):
    server, _files = model_server
    url = f"{server.url}/model/model.bin"
    result, left = fetch_on_a_small_disk(small_disk, tmp_path, url, "--cache-dir", "{disk}/cache")
    assert_one_clear_line(result, url)
    # Only the entry's lock file: no model folder, nothing in staging.
    assert [name for name in left if not name.startswith("cache/.locks/")] == []


def test_a_full_disk_fails_the_fetch_into_a_folder_and_leaves_it_empty(small_disk, tmp_path, model_server):
    server, _files = model_server
    url = f"{server.url}/model/model.bin"
    result, left = fetch_on_a_small_disk(small_disk, tmp_path, url, "{disk}/models", "--no-cache")
    assert_one_clear_line(result, url)
    assert left == []


def test_a_model_that_fits_is_fetched(small_disk, tmp_path):
    """The same small disk takes a model that fits: the failures above are the disk's size."""
    (tmp_path / "www" / "model").mkdir(parents=True)
    (tmp_path / "www" / "model" / "model.bin").write_bytes(os.urandom(SMALL // 4))
    server = start_http(tmp_path / "www")
    try:
        result, left = fetch_on_a_small_disk(
            small_disk, tmp_path, f"{server.url}/model/model.bin", "{disk}/models", "--no-cache"
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert left == ["models/model.bin"]
