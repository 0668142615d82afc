"""Unpacking model archives (.zip, and tarballs: .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz...) without
trusting them.

Every member is checked before it is written: no absolute path, no `..`, nothing written through a
link that leads outside the target folder, no device file or FIFO, and no more than `Limits` allow in
total, so an archive bomb stops early. Links are followed as they are on disk, so a chain of links
each harmless as text cannot climb out; once all is written, every link is checked again, since one
written later can change where an earlier one leads. A rejected archive raises `ArchiveError`; the
caller removes the folder.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .disk import is_out_of_space
from .errors import ArchiveError, NoSpaceError

GiB = 1024**3

# What KServe's storage initializer unpacks: the names `mimetypes` calls application/x-tar (plain, gzip,
# bzip2 or xz compressed) or application/zip.
_SUFFIXES = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".taz",
    ".tz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)


@dataclass(frozen=True)
class Limits:
    """The most an archive may unpack to."""

    max_bytes: int = 64 * GiB
    max_members: int = 100_000

    @classmethod
    def from_env(cls) -> Limits:
        """`MODELPLANE_STORAGE_MAX_UNPACKED_MB` and `MODELPLANE_STORAGE_MAX_ARCHIVE_MEMBERS` override the defaults."""
        max_mb = os.environ.get("MODELPLANE_STORAGE_MAX_UNPACKED_MB")
        members = os.environ.get("MODELPLANE_STORAGE_MAX_ARCHIVE_MEMBERS")
        return cls(
            max_bytes=int(max_mb) * 1024 * 1024 if max_mb else cls.max_bytes,
            max_members=int(members) if members else cls.max_members,
        )


def is_archive(name: str) -> bool:
    """Whether a file name says it is an archive modelplane unpacks."""
    return name.lower().endswith(_SUFFIXES)


def archive_suffix(text: str) -> str:
    """The archive suffix `text` ends with (`.tar.gz`, `.zip`...), else ""."""
    lowered = text.lower()
    return next((suffix for suffix in _SUFFIXES if lowered.endswith(suffix)), "")


def unpack(archive: Path, target: Path, limits: Limits = Limits(), *, is_zip: bool | None = None) -> None:
    """Unpack `archive` into the folder `target`, which is created. Its name says whether it is a zip
    or a tar, unless `is_zip` does (a TorchServe .mar is a zip)."""
    target.mkdir(parents=True, exist_ok=True)
    budget = Budget(archive.name, limits, shutil.disk_usage(target).free)
    if is_zip is None:
        is_zip = archive.name.lower().endswith(".zip")
    try:
        if is_zip:
            _unpack_zip(archive, target, budget)
        else:
            _unpack_tar(archive, target, budget)
        check_links(archive.name, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        if is_out_of_space(exc):
            raise NoSpaceError(f"unpacking {archive.name}: {exc.strerror or exc}") from None
        member = _member_of(exc, target)
        if member is not None:
            raise ArchiveError(
                f"{archive.name}: member {member!r} cannot be written: {exc.strerror}"
            ) from None
        raise ArchiveError(f"{archive.name} is not a valid archive: {exc}") from None


def _member_of(exc: BaseException, target: Path) -> str | None:
    """The member an error writing under `target` was about, named as the archive names it (the
    target is a staging folder that means nothing to the user), or None."""
    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) and exc.strerror else None
    if not isinstance(filename, str) or not Path(filename).is_relative_to(target):
        return None
    return Path(filename).relative_to(target).as_posix()


class Budget:
    """What an archive (or an image's layers) has unpacked so far, held against the `Limits`."""

    def __init__(self, name: str, limits: Limits, free: int) -> None:
        self.name = name
        self.limits = limits
        self.free = free
        self.bytes = 0
        self.members = 0

    def take(self, size: int) -> None:
        self.members += 1
        self.bytes += size
        if self.members > self.limits.max_members:
            raise ArchiveError(f"{self.name} has more than {self.limits.max_members} members")
        if self.bytes > self.limits.max_bytes:
            raise ArchiveError(
                f"{self.name} unpacks to more than the limit of {self.limits.max_bytes} bytes (archive bomb?)"
            )
        if self.bytes > self.free:
            raise ArchiveError(f"{self.name} unpacks to more than the {self.free} bytes free on disk")


def _safe_name(archive: str, name: str) -> str:
    """The member's path relative to the target, or ArchiveError when it would leave it."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name or "\0" in name:
        raise ArchiveError(f"{archive}: member {name!r} has an absolute or non-portable path")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise ArchiveError(f"{archive}: member {name!r} points outside the target folder")
    return normal


def stays_inside(folder: Path, path: str) -> bool:
    """Whether `path` (relative to `folder`) leads to something inside `folder`, the links on disk
    followed one step at a time as the kernel follows them.

    A step out of `folder` is refused even when a later one comes back in through the folder's own
    name: the folder is renamed into the cache or a destination, and the way back in would then lead
    elsewhere. A part that is not there yet is taken as a plain folder; a loop of links counts as
    leaving.
    """
    inside: list[str] = []
    pending = path.split("/")[::-1]
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not inside:
                return False
            inside.pop()
            continue
        here = folder.joinpath(*inside, part)
        if not here.is_symlink():
            inside.append(part)
            continue
        links += 1
        target = os.readlink(here)
        if links > 40 or target.startswith("/"):
            return False
        pending.extend(reversed(target.split("/")))
    return True


def check_parent(archive: str, folder: Path, name: str) -> None:
    """ArchiveError unless the folder that `name` (relative to `folder`) goes in lies inside `folder`:
    a link written earlier must not carry a later member outside."""
    if not stays_inside(folder, posixpath.dirname(name)):
        raise ArchiveError(f"{archive}: member {name!r} would be written through a link outside the target")


def _check_link(
    archive: str, folder: Path, member: str, link_target: str, *, hard: bool, within: str = ""
) -> None:
    """`member`, a link in `folder`, may lead only inside `folder`, as it is on disk now."""
    if link_target.startswith("/"):
        raise ArchiveError(f"{archive}: link {member!r} points to the absolute path {link_target!r}")
    if hard:  # named from the top of the archive, not from the link's folder
        path = _from(within, posixpath.normpath(link_target))
    else:
        path = posixpath.join(posixpath.dirname(member), link_target)
    if path is None or not stays_inside(folder, path):
        raise ArchiveError(f"{archive}: link {member!r} points outside the target folder ({link_target!r})")


def _from(within: str, name: str) -> str | None:
    """`name`, a normal path from the top of the archive, as a path from its subfolder `within` (all
    of it when empty), or None when it lies elsewhere."""
    if not within:
        return name
    if name == within:
        return "."
    return name.removeprefix(within + "/") if name.startswith(within + "/") else None


def check_links(archive: str, folder: Path) -> None:
    """ArchiveError for a symbolic link under `folder` that leads outside it, once every member is in
    place: a link that stayed inside when it was written may leave through one written after it."""
    for parent, folders, files in os.walk(folder):
        for entry in folders + files:
            path = Path(parent, entry)
            if path.is_symlink():
                member = path.relative_to(folder).as_posix()
                if not stays_inside(folder, member):
                    raise ArchiveError(
                        f"{archive}: link {member!r} points outside the target folder ({os.readlink(path)!r})"
                    )


def _unpack_tar(archive: Path, target: Path, budget: Budget) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            extract_member(tar, member, target, budget)


def extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, budget: Budget, within: str = ""
) -> None:
    """Writes one member of `tar` under `target`, once it is checked: a regular file, a folder, or a
    link, none of them leading outside `target`, or outside its subfolder `within`, where the member
    lies (an image's `models`)."""
    name = _safe_name(budget.name, member.name)
    if member.isdev() or member.isfifo():
        raise ArchiveError(f"{budget.name}: member {member.name!r} is a device file or FIFO")
    folder, inner = target / within, _from(within, name)
    assert inner is not None
    check_parent(budget.name, folder, inner)
    if member.issym() or member.islnk():
        _check_link(budget.name, folder, inner, member.linkname, hard=member.islnk(), within=within)
    elif not (member.isfile() or member.isdir()):
        raise ArchiveError(f"{budget.name}: member {member.name!r} has an unsupported type")
    budget.take(member.size if member.isfile() else 0)
    # The "data" filter is a second guard: it refuses the same escapes and drops special permissions.
    tar.extract(member, target, filter="data")


def _unpack_zip(archive: Path, target: Path, budget: Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = _safe_name(archive.name, info.filename)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                raise ArchiveError(f"{archive.name}: member {info.filename!r} is a device file or FIFO")
            budget.take(info.file_size)
            check_parent(archive.name, target, name)
            destination = target / name
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            elif kind == stat.S_IFLNK:
                link_target = zf.read(info).decode()
                _check_link(archive.name, target, name, link_target, hard=False)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link_target, destination)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                if destination.is_symlink() or destination.is_file():
                    destination.unlink()  # a name the zip holds twice: the later entry wins, as in extractall
                with zf.open(info) as src, open(destination, "xb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
