"""An image's /models folder, from its layers laid over each other as a container runtime lays them.

KServe's modelcars keep the model in the image's `/models` folder. The layers (tar archives, gzipped
or not) are applied in order; only what lies under `models/` is written, checked as any archive is
(`archive.py`: no path or link leaves the folder, no device file, the `Limits` hold), with `models/`
as the folder, since it becomes the model: a link there may not lead to the rest of the image, which
is not written, nor to whatever holds the model once it is moved. Links elsewhere in the image (a base
image's `bin/sh -> /bin/busybox`) are not part of the model and are passed over with the rest. A
layer's whiteouts remove what the layers below it put there: `.wh.<name>` removes `<name>`, and
`.wh..wh..opq` empties its folder.

    image_models([layer1, layer2], folder, limits)   # folder/ holds what /models held
"""

from __future__ import annotations

import gzip
import posixpath
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

from .archive import Budget, Limits, check_links, check_parent, extract_member
from .errors import ArchiveError, NotFoundError

MODELS = "models"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def image_models(layers: Sequence[Path], folder: Path, limits: Limits, image: str = "the image") -> None:
    """Writes into `folder` (created) what the image's /models folder holds after all of `layers`."""
    root = folder.with_name(folder.name + ".rootfs")
    root.mkdir(parents=True)
    try:
        budget = Budget(image, limits, shutil.disk_usage(root).free)
        for layer in layers:
            _apply(layer, root, budget)
        models = root / MODELS
        if not models.is_dir() or models.is_symlink():
            raise NotFoundError(f"{image} has no /models folder: a modelcar image keeps its model there")
        check_links(image, models)
        models.rename(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _apply(layer: Path, root: Path, budget: Budget) -> None:
    """One layer over what is there: its whiteouts first (they remove what lower layers wrote), then
    its files."""
    try:
        with _open(layer, budget) as tar:
            members = [m for m in tar if _under_models(m.name)]
            for member in members:
                if posixpath.basename(_normal(member.name)).startswith(WHITEOUT):
                    _white_out(root, _normal(member.name), budget.name)
            for member in members:
                name = _normal(member.name)
                if not posixpath.basename(name).startswith(WHITEOUT):
                    _check_inside(root, name, budget.name)  # before _clear removes what is there
                    _clear(root / name, member)
                    extract_member(tar, member, root, budget, within=MODELS)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"a layer of {budget.name} is not a valid tar archive: {exc}") from None


def _open(layer: Path, budget: Budget) -> tarfile.TarFile:
    """The layer as a tar that can be read in any order: a gzipped one is inflated next to it first,
    no larger than the limits allow (a gzip bomb stops there)."""
    with layer.open("rb") as head:
        magic = head.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        raise ArchiveError("a zstd-compressed layer: modelplane reads gzip and uncompressed layers")
    if magic[:2] == b"\x1f\x8b":
        inflated = layer.with_name(layer.name + ".tar")
        most = min(budget.limits.max_bytes, budget.free) + 64 * 1024 * 1024  # room for the tar headers
        with gzip.open(layer) as source, inflated.open("wb") as target:
            while chunk := source.read(1024 * 1024):
                most -= len(chunk)
                if most < 0:
                    raise ArchiveError(f"a layer of {budget.name} inflates to more than the limits allow")
                target.write(chunk)
        layer.unlink()
        layer = inflated
    return tarfile.open(layer, mode="r:")


def _normal(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _under_models(name: str) -> bool:
    normal = _normal(name)
    return normal == MODELS or normal.startswith(MODELS + "/") or normal == WHITEOUT + MODELS


def _white_out(root: Path, whiteout: str, image: str) -> None:
    _check_inside(root, whiteout, image)
    parent, name = posixpath.split(whiteout)
    folder = root / parent if parent else root
    if name == OPAQUE:
        for entry in list(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []:
            _remove(entry)
        return
    gone = name.removeprefix(WHITEOUT)
    if gone not in ("", ".", ".."):
        _remove(folder / gone)


def _check_inside(root: Path, name: str, image: str) -> None:
    """ArchiveError unless the folder of `name` (a path from the image's root) lies inside /models, its
    links followed: one a lower layer wrote must not carry a change outside it."""
    if name.startswith(MODELS + "/"):  # `models` and `.wh.models` change /models itself, in the root
        check_parent(image, root / MODELS, name.removeprefix(MODELS + "/"))


def _clear(path: Path, member: tarfile.TarInfo) -> None:
    """Makes room for `member`: what a lower layer put at its path goes, unless both are folders."""
    if member.isdir() and path.is_dir() and not path.is_symlink():
        return
    _remove(path)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
