"""hf:// URIs: repositories of the Hugging Face Hub, fetched with huggingface_hub into its cache and
linked into modelplane's. No test reaches the internet: the Hugging Face cache is filled by hand in the
layout huggingface_hub keeps, or by a local Hub (hub_server.py) that speaks the part of the Hub's API
snapshot_download uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from modelplane.local.ports import free_loopback_port
from modelplane.storage import (
    ConfigurationError,
    CredentialStore,
    InvalidURIError,
    NotFoundError,
    fetch,
    parse_uri,
)

from .helpers import hub_cache_repository, read_tree
from .servers import HERE, Server

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"model_type": "gpt2", "n_layer": 1}',
    "tokenizer.json": b'{"version": "1.0"}',
    "weights/model.safetensors": os.urandom(4096),
}
TOKEN = "hf_s3cretTokenNobodyMaySee"


@pytest.fixture(autouse=True)
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache of the test's own, offline, with no token or endpoint from outside."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf-home" / "hub"


def cache_repository(hub: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT, **refs: str):
    return hub_cache_repository(hub, repo_id, files, commit, **refs)


def storage_fetch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelplane", "storage", "fetch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


# -- URIs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "repository", "revision"),
    [
        ("hf://tiny-org/tiny-gpt", "tiny-org/tiny-gpt", ""),
        ("hf://tiny-org/tiny-gpt:v1.2", "tiny-org/tiny-gpt", "v1.2"),
        (f"hf://Org_1/model.v2-b:{COMMIT}", "Org_1/model.v2-b", COMMIT),
    ],
)
def test_hub_uris_name_a_repository_and_a_revision(uri, repository, revision):
    location = parse_uri(uri)
    assert (location.kind, location.path, location.revision) == ("hf", repository, revision)
    assert location.display == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("hf://", "expected hf://<owner>/<model>[:<revision>]"),
        ("hf://only-a-model", "expected hf://<owner>/<model>"),
        ("hf:///model", "expected hf://<owner>/<model>"),
        ("hf://org/", "expected hf://<owner>/<model>"),
        ("hf://org/model/extra", "expected hf://<owner>/<model>"),
        ("hf://org/:v1", "expected hf://<owner>/<model>"),
        ("hf://org/bad--name", "not a valid Hugging Face Hub name"),
        ("hf://org/-model", "not a valid Hugging Face Hub name"),
        ("hf://org/model:", "not a valid revision"),
        ("hf://org/model:a b", "not a valid revision"),
        ("hf://org/model?x=1", "not a valid Hugging Face Hub name"),
    ],
)
def test_malformed_hub_uris_are_refused_before_anything_starts(uri, message):
    with pytest.raises(InvalidURIError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_uri(uri)


# -- the Hugging Face cache, offline -----------------------------------------------------------------


def test_an_offline_machine_serves_a_cached_repository_by_branch_and_by_commit(hub_env, cache_dir):
    cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    by_branch = fetch("hf://tiny-org/tiny-gpt")
    assert read_tree(by_branch) == FILES
    assert by_branch.is_relative_to(cache_dir), "linked into modelplane's cache like every model"
    record = json.loads((by_branch.parent / "fetch.json").read_text())
    assert record["commit"] == COMMIT and record["uri"] == "hf://tiny-org/tiny-gpt"
    assert fetch("hf://tiny-org/tiny-gpt") == by_branch, "the second fetch finds the cached entry"

    by_commit = fetch(f"hf://tiny-org/tiny-gpt:{COMMIT}")
    assert read_tree(by_commit) == FILES
    # Links, not copies: the model takes the disk space of the Hugging Face cache only.
    blob = (hub_env / "models--tiny-org--tiny-gpt" / "snapshots" / COMMIT / "config.json").resolve()
    assert (by_commit / "config.json").stat().st_ino == blob.stat().st_ino


def test_a_branch_follows_its_ref_to_the_commit_it_names(hub_env):
    cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    newer = {**FILES, "config.json": b'{"model_type": "gpt2", "n_layer": 2}'}
    cache_repository(hub_env, "tiny-org/tiny-gpt", newer, commit="f" * 40, v2="f" * 40)
    assert read_tree(fetch("hf://tiny-org/tiny-gpt:v2")) == newer
    assert read_tree(fetch(f"hf://tiny-org/tiny-gpt:{'f' * 40}")) == newer
    # main moved to the newer commit too (cache_repository wrote refs/main): a new cache entry.
    assert read_tree(fetch("hf://tiny-org/tiny-gpt")) == newer


def test_into_a_destination_and_with_patterns(hub_env, tmp_path):
    cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    dest = fetch("hf://tiny-org/tiny-gpt", tmp_path / "mnt" / "models")
    assert dest == tmp_path / "mnt" / "models" and read_tree(dest) == FILES
    only_json = fetch("hf://tiny-org/tiny-gpt", allow_patterns=["*.json"], ignore_patterns=["tok*"])
    assert read_tree(only_json) == {"config.json": FILES["config.json"]}
    direct = fetch("hf://tiny-org/tiny-gpt", tmp_path / "direct", use_cache=False)
    assert read_tree(direct) == FILES


def test_a_repository_missing_from_the_cache_is_a_clear_error_naming_it(hub_env):
    cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    with pytest.raises(NotFoundError) as missing:
        fetch("hf://tiny-org/no-such-model")
    assert "tiny-org/no-such-model" in str(missing.value) and "HF_HUB_OFFLINE" in str(missing.value)
    with pytest.raises(NotFoundError, match="revision 'v9'"):
        fetch("hf://tiny-org/tiny-gpt:v9")
    with pytest.raises(NotFoundError, match="matches the allow and ignore patterns"):
        fetch("hf://tiny-org/tiny-gpt", allow_patterns=["*.bin"])


def test_without_network_the_cache_serves_even_when_offline_mode_is_not_set(hub_env):
    cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    # Nobody listens at the endpoint: the Hub cannot be reached. A process of its own, so that
    # huggingface_hub reads HF_HUB_OFFLINE=0 when it is imported.
    no_network = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{free_loopback_port()}"}
    for uri in ("hf://tiny-org/tiny-gpt", f"hf://tiny-org/tiny-gpt:{COMMIT}"):
        result = storage_fetch(uri, env=no_network)
        assert result.returncode == 0, result.stderr
        assert read_tree(Path(result.stdout.strip())) == FILES
    missing = storage_fetch("hf://tiny-org/other", env=no_network)
    assert missing.returncode == 1
    assert "the Hub cannot be reached, and tiny-org/other at revision 'main' is not in" in missing.stderr


def test_a_model_fetched_before_is_served_when_the_hugging_face_cache_lost_it(hub_env):
    repository = cache_repository(hub_env, "tiny-org/tiny-gpt", FILES)
    first = fetch("hf://tiny-org/tiny-gpt")
    for path in sorted(repository.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    assert fetch("hf://tiny-org/tiny-gpt") == first


def test_the_command_answers_one_line_for_a_missing_repository(hub_env):
    result = storage_fetch("hf://tiny-org/no-such-model")
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("modelplane")]
    assert "tiny-org/no-such-model" in line and "not in the Hugging Face cache" in line


def test_a_storage_spec_of_type_hf_names_the_repository(tmp_path):
    folder = tmp_path / "creds"
    folder.mkdir()
    (folder / "hub.json").write_text(json.dumps({"type": "hf", "hf_token": TOKEN}))
    store = CredentialStore(folder)
    with pytest.raises(NotFoundError) as missing:
        fetch({"key": "hub", "path": "tiny-org/no-such-model:v1"}, store=store)
    assert "hf://tiny-org/no-such-model:v1" in str(missing.value)
    with pytest.raises(ConfigurationError, match="supported: s3, gs, azure, hf"):
        (folder / "odd.json").write_text(json.dumps({"type": "ftp"}))
        fetch({"key": "odd", "path": "x"}, store=store)


# -- a Hub: downloads, tokens ----------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path):
    root = tmp_path / "hub-repositories"
    for name, data in FILES.items():
        path = root / "tiny-org" / "tiny-gpt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    server = Server(
        [sys.executable, str(HERE / "hub_server.py"), str(root), "--token", TOKEN],
        ready=r"listening on (\d+)",
    )
    yield server
    server.stop()


def hub_stats(hub: Server) -> dict:
    import httpx

    return httpx.get(f"{hub.url}/__stats", timeout=10).json()


def test_a_download_sends_the_storage_config_token_and_never_shows_it(hub, hub_env, tmp_path):
    folder = tmp_path / "creds"
    folder.mkdir()
    (folder / "hub.json").write_text(json.dumps({"type": "hf", "hf_token": TOKEN, "endpoint_url": hub.url}))
    online = {"HF_HUB_OFFLINE": "0"}
    spec = json.dumps({"key": "hub", "path": "tiny-org/tiny-gpt"})
    result = storage_fetch(spec, "--credentials-dir", str(folder), env=online)
    assert result.returncode == 0, result.stderr
    assert read_tree(Path(result.stdout.strip())) == FILES
    seen = hub_stats(hub)["authorizations"]
    assert seen and set(seen) == {f"Bearer {TOKEN}"}
    assert TOKEN not in result.stdout + result.stderr
    # The download went to the Hugging Face cache: offline, with the Hub gone, it still serves.
    assert (hub_env / "models--tiny-org--tiny-gpt" / "refs" / "main").is_file()
    hub.stop()
    again = storage_fetch("hf://tiny-org/tiny-gpt", "--cache-dir", str(tmp_path / "fresh-cache"))
    assert again.returncode == 0, again.stderr
    assert read_tree(Path(again.stdout.strip())) == FILES


def test_hf_token_from_the_environment_and_a_refused_token(hub, tmp_path):
    online = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url}
    refused = storage_fetch("hf://tiny-org/tiny-gpt", env={**online, "HF_TOKEN": "hf_wrongButAlsoSecret"})
    assert refused.returncode == 2
    assert "tiny-org/tiny-gpt" in refused.stderr and "token" in refused.stderr
    assert "hf_wrongButAlsoSecret" not in refused.stdout + refused.stderr
    accepted = storage_fetch("hf://tiny-org/tiny-gpt", env={**online, "HF_TOKEN": TOKEN})
    assert accepted.returncode == 0, accepted.stderr
    assert read_tree(Path(accepted.stdout.strip())) == FILES
    assert TOKEN not in accepted.stdout + accepted.stderr
    unknown = storage_fetch("hf://tiny-org/tiny-gpt:v7", env={**online, "HF_TOKEN": TOKEN})
    assert unknown.returncode == 2 and "has no revision 'v7'" in unknown.stderr


class UnreachableHub:
    """A loopback port that closes every connection once it has read the request line: a Hub that
    cannot be reached, which records what each connection asked for."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with connection:
                connection.settimeout(5)
                try:
                    self.requests.append(connection.recv(4096).decode("latin-1").split("\r\n")[0])
                except OSError:
                    self.requests.append("")

    def about_the_repository(self) -> list[str]:
        # huggingface_hub 2.x also asks for its AI-agent registry once a day, whatever it downloads.
        return [line for line in self.requests if "tiny-org" in line or not line]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def unreachable_hub():
    unreachable = UnreachableHub()
    yield unreachable
    unreachable.close()


def fetched_commit(hub: Server, hub_env: Path, *patterns: str) -> str:
    """Fetch tiny-org/tiny-gpt's main from `hub` (with `--allow` patterns), stop the Hub, and answer
    the commit main named."""
    online = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN}
    allow = [argument for pattern in patterns for argument in ("--allow", pattern)]
    first = storage_fetch("hf://tiny-org/tiny-gpt", *allow, env=online)
    assert first.returncode == 0, first.stderr
    hub.stop()
    return (hub_env / "models--tiny-org--tiny-gpt" / "refs" / "main").read_text()


def test_a_commit_fetched_whole_before_is_served_without_asking_the_hub(
    hub, hub_env, unreachable_hub, tmp_path
):
    commit = fetched_commit(hub, hub_env)
    unreachable = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": unreachable_hub.url, "HF_TOKEN": TOKEN}
    again = storage_fetch(
        f"hf://tiny-org/tiny-gpt:{commit}", "--cache-dir", str(tmp_path / "fresh"), env=unreachable
    )
    assert again.returncode == 0, again.stderr
    assert read_tree(Path(again.stdout.strip())) == FILES
    assert unreachable_hub.about_the_repository() == [], (
        "a commit never changes: its complete snapshot needs no Hub"
    )


def test_a_commit_fetched_before_with_other_patterns_goes_to_the_hub_for_the_rest(
    hub, hub_env, unreachable_hub, tmp_path
):
    commit = fetched_commit(hub, hub_env, "*.json")
    unreachable = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": unreachable_hub.url, "HF_TOKEN": TOKEN}
    whole = storage_fetch(
        f"hf://tiny-org/tiny-gpt:{commit}", "--cache-dir", str(tmp_path / "fresh"), env=unreachable
    )
    assert unreachable_hub.about_the_repository(), "the snapshot lacks the weights: only the Hub has them"
    assert whole.returncode == 1
    assert (
        f"the Hub cannot be reached, and the Hugging Face cache {hub_env} holds only part of tiny-org/tiny-gpt "
        f"at revision '{commit}'"
    ) in whole.stderr
