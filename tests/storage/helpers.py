"""Building model files and archives for the storage tests."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path


def model_files(root: Path, big: int = 3 * 1024 * 1024) -> dict[str, bytes]:
    """A small model folder: a large weights file, a small one in a subfolder, an empty marker."""
    files = {
        "model.bin": os.urandom(big),
        "config/settings.json": b'{"threshold": 0.5}',
        "empty.txt": b"",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tar_of(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def hub_cache_repository(hub: Path, repo_id: str, files: dict[str, bytes], commit: str, **refs: str) -> Path:
    """A repository in a Hugging Face cache (`hub`, what HF_HUB_CACHE names) as huggingface_hub leaves
    it: content-addressed blobs, a snapshot folder of relative links per commit, a file per branch
    naming its commit (`main`, and `refs`)."""
    folder = hub / ("models--" + repo_id.replace("/", "--"))
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for branch, target in {"main": commit, **refs}.items():
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / branch).write_text(target)
    return folder
