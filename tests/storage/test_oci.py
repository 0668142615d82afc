"""oci:// URIs: the /models folder of an image (a KServe modelcar), pulled from a real registry (the
CNCF distribution registry, Debian's docker-registry) over the distribution API."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bcrypt
import httpx
import pytest

from modelplane.storage import (
    AccessDeniedError,
    ArchiveError,
    InvalidURIError,
    NotFoundError,
    TransferError,
    fetch,
    parse_uri,
)
from modelplane.storage.archive import Limits
from modelplane.storage.image_layers import image_models

from .helpers import read_tree
from .oci_images import ARCHITECTURE, layer, push_image, push_index
from .servers import start_registry

BASE = layer({"bin": None, "bin/sh": "-> /bin/busybox", "etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})
WEIGHTS = os.urandom(2048)


def uri(registry_server, reference: str) -> str:
    return f"oci://127.0.0.1:{registry_server.port}/{reference}"


def test_the_models_folder_of_an_image_is_fetched_and_cached(registry_server, cache_dir):
    models = layer({"models": None, "models/model.bin": WEIGHTS, "models/config/settings.json": b"{}"})
    push_image(registry_server.url, "models/iris", "v1", [BASE, models])
    folder = fetch(uri(registry_server, "models/iris:v1"))
    assert read_tree(folder) == {"model.bin": WEIGHTS, "config/settings.json": b"{}"}
    assert folder.is_relative_to(cache_dir)
    assert fetch(uri(registry_server, "models/iris:v1")) == folder  # the same digest: the same folder

    push_image(registry_server.url, "models/iris", "v1", [BASE, layer({"models/model.bin": b"retrained"})])
    again = fetch(uri(registry_server, "models/iris:v1"))
    assert again != folder and read_tree(again) == {"model.bin": b"retrained"}


def test_upper_layers_white_out_what_lower_ones_wrote(registry_server):
    lower = layer({"models/a.txt": b"a", "models/old/b.txt": b"b", "models/keep.txt": b"k"}, compress=False)
    upper = layer({"models/.wh.old": b"", "models/.wh.a.txt": b"", "models/c.txt": b"c"})
    push_image(registry_server.url, "models/whiteouts", "v1", [BASE, lower, upper])
    assert read_tree(fetch(uri(registry_server, "models/whiteouts:v1"))) == {"keep.txt": b"k", "c.txt": b"c"}

    opaque = layer({"models/.wh..wh..opq": b"", "models/only.txt": b"o"})
    push_image(registry_server.url, "models/whiteouts", "v2", [BASE, lower, opaque])
    assert read_tree(fetch(uri(registry_server, "models/whiteouts:v2"))) == {"only.txt": b"o"}


def test_a_digest_and_an_image_index_name_the_image(registry_server):
    mine = push_image(registry_server.url, "models/multi", "mine", [layer({"models/m.txt": b"this machine"})])
    other = push_image(registry_server.url, "models/multi", "other", [layer({"models/m.txt": b"elsewhere"})])
    arch = {"amd64": "arm64"}.get(ARCHITECTURE, "amd64")
    index = push_index(registry_server.url, "models/multi", "latest", {arch: other, ARCHITECTURE: mine})
    assert read_tree(fetch(uri(registry_server, "models/multi"))) == {"m.txt": b"this machine"}
    assert read_tree(fetch(uri(registry_server, f"models/multi@{other}"))) == {"m.txt": b"elsewhere"}
    assert index.startswith("sha256:")


def test_what_cannot_be_served_says_why(registry_server):
    push_image(registry_server.url, "models/empty", "v1", [BASE])
    with pytest.raises(NotFoundError, match="has no /models folder: a modelcar image keeps its model there"):
        fetch(uri(registry_server, "models/empty:v1"))
    with pytest.raises(NotFoundError, match=r"no such image \(the image is not in the registry\)"):
        fetch(uri(registry_server, "models/nothing:v1"))
    escape = layer({"models/evil": "-> ../../etc/passwd"})
    push_image(registry_server.url, "models/escape", "v1", [escape])
    with pytest.raises(ArchiveError, match="points outside the target folder"):
        fetch(uri(registry_server, "models/escape:v1"))
    with pytest.raises(InvalidURIError, match="is not a valid repository name"):
        parse_uri("oci://127.0.0.1:5000/Models")


def test_links_in_models_stay_inside_it(registry_server, cache_dir, tmp_path):
    kept = {"models/v1/model.bin": WEIGHTS, "models/current.bin": "-> v1/model.bin"}
    push_image(registry_server.url, "models/linked", "v1", [BASE, layer({"models": None, **kept})])
    folder = fetch(uri(registry_server, "models/linked:v1"))
    assert (folder / "current.bin").read_bytes() == WEIGHTS

    # Inside the image's root, but the model folder's parent once /models is the model: the cache
    # entry (its fetch.json), or the folder holding a dest and the models beside it.
    for link in ("-> ..", "-> ../fetch.json"):
        escape = layer({"models": None, "models/model.bin": WEIGHTS, "models/up": link})
        push_image(registry_server.url, "models/parent", "v1", [BASE, escape])
        with pytest.raises(ArchiveError, match=r"link 'up' points outside the target folder"):
            fetch(uri(registry_server, "models/parent:v1"))
        (tmp_path / "repo" / "another-model").mkdir(parents=True, exist_ok=True)
        with pytest.raises(ArchiveError, match=r"link 'up' points outside the target folder"):
            fetch(uri(registry_server, "models/parent:v1"), tmp_path / "repo" / "mine", use_cache=False)
        assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["another-model"]
    assert [p for p in cache_dir.iterdir() if p.name not in (".locks", ".tmp")] == [folder.parent]
    assert list((cache_dir / ".tmp").iterdir()) == []


def test_a_later_layer_changes_nothing_through_a_link_that_leads_outside(tmp_path):
    # `models/up` looks inside when written; once `b` and `c` are there it leads two folders up, to
    # the folder that holds the model, which a later layer's whiteout or file would then reach.
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "victim.txt").write_text("not the model's")
    escape = {"models": None, "models/up": "-> b/c/../..", "models/b": "-> .", "models/c": "-> ."}
    for later in ({"models/up/.wh.victim.txt": b""}, {"models/up/victim.txt": b"overwritten"}):
        (tmp_path / "layers").mkdir()
        layers = [tmp_path / "layers" / "escape", tmp_path / "layers" / "later"]
        layers[0].write_bytes(layer(escape))
        layers[1].write_bytes(layer(later))
        with pytest.raises(
            ArchiveError, match=r"'up/(\.wh\.)?victim.txt' would be written through a link outside"
        ):
            image_models(layers, entry / "model", Limits(), "oci://registry.example/escape")
        assert (entry / "victim.txt").read_text() == "not the model's"
        assert sorted(p.name for p in entry.iterdir()) == ["victim.txt"]
        shutil.rmtree(tmp_path / "layers")


def test_a_cached_image_serves_while_its_registry_is_unreachable(tmp_path):
    registry = start_registry(tmp_path)
    try:
        push_image(registry.url, "models/offline", "v1", [layer({"models/m.txt": b"m"})])
        folder = fetch(uri(registry, "models/offline:v1"))
    finally:
        registry.stop()
    assert fetch(uri(registry, "models/offline:v1")) == folder
    with pytest.raises(TransferError, match="the registry is unreachable"):
        fetch(uri(registry, "models/never-fetched:v1"))


def test_the_cli_fetches_an_image(registry_server, tmp_path):
    push_image(registry_server.url, "models/cli", "v1", [layer({"models/model.bin": WEIGHTS})])
    dest = tmp_path / "mnt" / "models"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelplane",
            "storage",
            "fetch",
            uri(registry_server, "models/cli:v1"),
            str(dest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert read_tree(Path(dest)) == {"model.bin": WEIGHTS}


def test_the_pull_secrets_a_platform_lists_come_before_dockers_config(tmp_path, monkeypatch):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(b"puller:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)) + b"\n")
    registry = start_registry(tmp_path, htpasswd=htpasswd)
    try:
        push_image(
            registry.url, "models/private", "v1", [layer({"models/m.txt": b"m"})],
            auth=httpx.BasicAuth("puller", "s3cret"),
        )  # fmt: skip
        host = f"127.0.0.1:{registry.port}"
        (tmp_path / "docker").mkdir()
        wrong = {"auths": {host: {"auth": base64.b64encode(b"puller:wrong").decode()}}}
        (tmp_path / "docker" / "config.json").write_text(json.dumps(wrong))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        # a kubernetes.io/dockercfg Secret's `.dockercfg`: the auths map alone, no "auths" around it
        legacy = tmp_path / ".dockercfg"
        legacy.write_text(json.dumps({host: {"username": "puller", "password": "s3cret"}}))
        other = tmp_path / "other.json"
        other.write_text(json.dumps({"auths": {"registry.example": {"auth": "eDp5"}}}))
        monkeypatch.setenv("MODELPLANE_REGISTRY_AUTH_FILES", f"{other}:{tmp_path / 'missing.json'}:{legacy}")
        assert read_tree(fetch(uri(registry, "models/private:v1"))) == {"m.txt": b"m"}
    finally:
        registry.stop()


def test_a_registry_that_asks_for_credentials_gets_those_of_dockers_config(tmp_path, monkeypatch):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(b"puller:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)) + b"\n")
    registry = start_registry(tmp_path, htpasswd=htpasswd)
    try:
        signed_in = httpx.BasicAuth("puller", "s3cret")
        push_image(registry.url, "models/private", "v1", [layer({"models/m.txt": b"m"})], auth=signed_in)
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        with pytest.raises(AccessDeniedError, match="the registry needs credentials"):
            fetch(uri(registry, "models/private:v1"))
        (tmp_path / "docker").mkdir()
        auth = base64.b64encode(b"puller:wrong").decode()
        config = {"auths": {f"127.0.0.1:{registry.port}": {"auth": auth}}}
        (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
        with pytest.raises(AccessDeniedError, match="access to the image denied") as refused:
            fetch(uri(registry, "models/private:v1"))
        assert "wrong" not in str(refused.value)
        config["auths"][f"127.0.0.1:{registry.port}"]["auth"] = base64.b64encode(b"puller:s3cret").decode()
        (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
        assert read_tree(fetch(uri(registry, "models/private:v1"))) == {"m.txt": b"m"}
    finally:
        registry.stop()
