"""Archive attacks: each must be refused with a clear error and leave nothing behind."""

import io
import stat
import tarfile
import zipfile

import pytest

from modelplane.storage import ArchiveError, Limits, fetch

from .helpers import tar_of


def tar_with(path, *members):
    """A .tar.gz holding TarInfo members, each with optional data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def assert_rejected(archive, cache_dir, message, limits=None):
    with pytest.raises(ArchiveError, match=message):
        fetch(str(archive), limits=limits)
    leftovers = [p for p in cache_dir.rglob("*") if not p.name.endswith(".lock") and p.is_file()]
    assert leftovers == []
    assert not any(p.name.startswith("escaped") for p in archive.parent.parent.rglob("*"))


@pytest.mark.parametrize(
    "name", ["../escaped.txt", "sub/../../escaped.txt", "/tmp/escaped-absolute.txt", "..\\escaped.txt"]
)
def test_path_traversal_is_refused(tmp_path, cache_dir, name):
    archive = tar_with(tmp_path / "in" / "model.tar.gz", (member("ok.txt"), b"fine"), (member(name), b"evil"))
    assert_rejected(archive, cache_dir, "absolute|outside the target")


def test_traversal_in_zip_is_refused(tmp_path, cache_dir):
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../escaped.txt", "evil")
    assert_rejected(archive, cache_dir, "outside the target")


@pytest.mark.parametrize(
    ("kind", "target"),
    [(tarfile.SYMTYPE, "../../etc"), (tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "../outside")],
)
def test_link_escape_is_refused(tmp_path, cache_dir, kind, target):
    archive = tar_with(tmp_path / "in" / "model.tar.gz", (member("escaped-link", kind, target), None))
    assert_rejected(archive, cache_dir, "link 'escaped-link' points")


def test_link_then_write_through_it_is_refused(tmp_path, cache_dir):
    archive = tar_with(
        tmp_path / "in" / "model.tar.gz",
        (member("escaped-dir", tarfile.SYMTYPE, ".."), None),
        (member("escaped-dir/escaped.txt"), b"evil"),
    )
    assert_rejected(archive, cache_dir, "points outside")


def test_zip_symlink_escape_is_refused(tmp_path, cache_dir):
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("escaped-link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../outside")
    assert_rejected(archive, cache_dir, "points outside")


def archive_of(path, entries):
    """A .zip or .tar.gz of (name, content) entries, in that order: bytes make a file, a str a
    symbolic link to it, None a folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".zip":
        members = []
        for name, content in entries:
            if isinstance(content, str):
                members.append((member(name, tarfile.SYMTYPE, content), None))
            else:
                members.append(
                    (member(name, tarfile.DIRTYPE if content is None else tarfile.REGTYPE), content)
                )
        return tar_with(path, *members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in entries:
            info = zipfile.ZipInfo(name + "/" if content is None else name)
            if isinstance(content, str):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, content or b"")
    return path


# Each link below looks inside when its target is read as text; on disk, with the links before it
# (or after it) in place, it leads out of the folder.
CHAIN_TO_THE_ROOT = [("l0", ".")] + [(f"l{i}", f"l{i - 1}/..") for i in range(1, 25)]
ESCAPING_LINKS = {
    "a chain of links up to /": CHAIN_TO_THE_ROOT + [("model.joblib", "l24/etc/passwd")],
    "a link to the folder's parent": [("a", "."), ("up", "a/..")],
    "a link that leaves once a later link is there": [("up", "a/.."), ("a", ".")],
    # inside while unpacked, where the folder is named "model"; a sibling once placed in a dest
    "a link back in through the folder's own name": [("a", "."), ("sibling", "a/../model")],
}


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
@pytest.mark.parametrize("links", ESCAPING_LINKS.values(), ids=ESCAPING_LINKS.keys())
def test_links_that_lead_outside_through_other_links_are_refused(tmp_path, cache_dir, suffix, links):
    archive = archive_of(tmp_path / "in" / f"model{suffix}", links)
    assert_rejected(archive, cache_dir, "link '[a-z0-9.]+' points outside the target folder")


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
@pytest.mark.parametrize("content", [None, b"evil"], ids=["folder", "file"])
def test_nothing_is_written_through_a_link_once_it_leads_outside(tmp_path, cache_dir, suffix, content):
    # `up` stays inside until `b` and `c` are written; then it leads two folders up, out of the cache's
    # staging folder too.
    links = [("up", "b/c/../.."), ("b", "."), ("c", ".")]
    archive = archive_of(tmp_path / "in" / f"model{suffix}", [*links, ("up/escaped", content)])
    assert_rejected(archive, cache_dir, "'up/escaped' would be written through a link outside the target")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_are_refused(tmp_path, cache_dir, kind):
    archive = tar_with(tmp_path / "in" / "model.tar.gz", (member("dev", kind), None))
    assert_rejected(archive, cache_dir, "device file or FIFO")


def test_archive_bomb_is_stopped_by_the_size_limit(tmp_path, cache_dir):
    # 64 MiB of zeros compresses to about 64 KiB: far more out than in.
    (tmp_path / "in").mkdir()
    archive = tar_of(
        tmp_path / "in" / "model.tar.gz", {f"zeros-{i}.bin": bytes(16 * 1024 * 1024) for i in range(4)}
    )
    assert archive.stat().st_size < 1024 * 1024
    assert_rejected(archive, cache_dir, "archive bomb", limits=Limits(max_bytes=20 * 1024 * 1024))


def test_zip_bomb_is_stopped_by_the_size_limit(tmp_path, cache_dir, monkeypatch):
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"zeros-{i}.bin", bytes(16 * 1024 * 1024))
    monkeypatch.setenv("MODELPLANE_STORAGE_MAX_UNPACKED_MB", "20")
    assert_rejected(archive, cache_dir, "archive bomb")


def test_too_many_members_is_refused(tmp_path, cache_dir):
    (tmp_path / "in").mkdir()
    archive = tar_of(tmp_path / "in" / "model.tar.gz", {f"f{i}": b"" for i in range(50)})
    assert_rejected(archive, cache_dir, "more than 10 members", limits=Limits(max_members=10))


def test_corrupt_archive_is_a_clear_error(tmp_path, cache_dir):
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "model.tar.gz"
    archive.write_bytes(b"\x1f\x8b this is not gzip at all")
    assert_rejected(archive, cache_dir, "not a valid archive")


def test_a_name_a_zip_holds_twice_is_its_later_entry(tmp_path):
    # As zipfile's extractall writes it (KServe's): the later entry replaces the earlier one.
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("model.bin", "first")
        zf.writestr("model.bin", "second")
    assert (fetch(str(archive)) / "model.bin").read_bytes() == b"second"


def test_a_member_that_cannot_be_written_is_named_without_the_staging_folder(tmp_path, cache_dir):
    archive = tar_with(
        tmp_path / "in" / "model.tar.gz", (member("model", tarfile.DIRTYPE), None), (member("model"), b"x")
    )
    with pytest.raises(ArchiveError) as refused:
        fetch(str(archive))
    assert str(refused.value) == "model.tar.gz: member 'model' cannot be written: Is a directory"


def test_links_inside_the_model_are_kept(tmp_path):
    archive = tar_with(
        tmp_path / "in" / "model.tar.gz",
        (member("weights/v1.bin"), b"weights"),
        (member("current.bin", tarfile.SYMTYPE, "weights/v1.bin"), None),
        (member("weights/hard.bin", tarfile.LNKTYPE, "weights/v1.bin"), None),
    )
    folder = fetch(str(archive))
    assert (folder / "current.bin").read_bytes() == b"weights"
    assert (folder / "weights" / "hard.bin").read_bytes() == b"weights"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_links_through_links_inside_the_model_are_kept(tmp_path, suffix):
    entries = [
        ("versions/v2/model.bin", b"weights"),
        ("here", "."),
        ("weights", "here/versions/v2"),
        ("current.bin", "weights/../v2/model.bin"),
    ]
    folder = fetch(str(archive_of(tmp_path / "in" / f"model{suffix}", entries)))
    assert (folder / "current.bin").read_bytes() == b"weights"
    assert (folder / "weights" / "model.bin").read_bytes() == b"weights"
