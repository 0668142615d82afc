import os

import pytest

from modelplane.storage import ConfigurationError, NotFoundError, fetch

from .helpers import model_files, read_tree, tar_of


def test_local_folder_is_used_where_it_is(tmp_path):
    model_files(tmp_path / "iris")
    assert fetch(str(tmp_path / "iris")) == tmp_path / "iris"
    assert fetch(f"file://{tmp_path / 'iris'}") == tmp_path / "iris"


def test_local_folder_into_dest_is_linked(tmp_path):
    files = model_files(tmp_path / "iris")
    dest = fetch(str(tmp_path / "iris"), tmp_path / "mnt" / "models")
    assert dest == tmp_path / "mnt" / "models"
    assert read_tree(dest) == files
    assert (dest / "model.bin").stat().st_ino == (tmp_path / "iris" / "model.bin").stat().st_ino


def test_local_archive_is_unpacked_into_the_cache(tmp_path, cache_dir):
    files = {"model.bin": os.urandom(1000)}
    archive = tar_of(tmp_path / "model.tgz", files)
    folder = fetch(str(archive))
    assert folder.is_relative_to(cache_dir)
    assert read_tree(folder) == files
    assert fetch(str(archive)) == folder


@pytest.mark.parametrize(
    "name, mode",
    [
        ("model.tar.bz2", "w:bz2"),
        ("model.tbz2", "w:bz2"),
        ("model.tar.xz", "w:xz"),
        ("model.txz", "w:xz"),
        ("model.taz", "w:gz"),
        ("model.tz", "w:gz"),
    ],
)
def test_every_tarball_kserve_unpacks_is_unpacked(tmp_path, name, mode):
    # KServe unpacks whatever `mimetypes` calls application/x-tar, bzip2 and xz compressed ones too.
    files = {"model.bin": os.urandom(1000), "sub/config.json": b"{}"}
    assert read_tree(fetch(str(tar_of(tmp_path / name, files, mode)))) == files


def test_local_single_file_becomes_a_folder(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"weights")
    folder = fetch(str(tmp_path / "model.joblib"))
    assert read_tree(folder) == {"model.joblib": b"weights"}


def test_pvc_maps_a_claim_to_a_folder(tmp_path, isolated, monkeypatch):
    files = model_files(isolated / "pvc" / "models-claim" / "sklearn" / "iris")
    assert read_tree(fetch("pvc://models-claim/sklearn/iris")) == files
    monkeypatch.setenv("MODELPLANE_PVC_DIR", str(tmp_path / "claims"))
    (tmp_path / "claims" / "other").mkdir(parents=True)
    with pytest.raises(NotFoundError, match="the claim 'models-claim' has no folder"):
        fetch("pvc://models-claim/sklearn/iris")
    with pytest.raises(NotFoundError, match="does not exist"):
        fetch("pvc://other/missing")


def test_missing_local_path(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        fetch(str(tmp_path / "nothing"))


def test_dest_must_be_empty(tmp_path):
    model_files(tmp_path / "iris")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "other").write_text("x")
    with pytest.raises(ConfigurationError, match="not an empty folder"):
        fetch(str(tmp_path / "iris"), tmp_path / "dest")
    # An existing empty folder is fine: it is where a volume would be mounted.
    (tmp_path / "dest" / "other").unlink()
    assert read_tree(fetch(str(tmp_path / "iris"), tmp_path / "dest")) == read_tree(tmp_path / "iris")
