"""Where a TensorFlow SavedModel is in a model folder: at the top, or in TF Serving's numbered version
folders (`<dir>/1/saved_model.pb`, `<dir>/2/...`), of which the highest is served.

Nothing here imports TensorFlow, so finding out whether a folder is a SavedModel stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger("modelplane.server")

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class SavedModelMissing(Exception):
    """The folder holds no SavedModel, neither at the top nor in a numbered version folder."""


class SavedModelLocation(NamedTuple):
    folder: Path
    version: int | None  # the version folder's number, None for a SavedModel at the top


def is_saved_model(folder: Path) -> bool:
    return any((folder / name).is_file() for name in SAVED_MODEL_FILES)


def version_folders(folder: Path) -> list[tuple[int, Path]]:
    """The numbered subfolders of `folder`, highest first (TF Serving's version layout)."""
    if not folder.is_dir():
        return []
    numbered = [(int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(numbered, reverse=True)


def holds_saved_model(path: str | Path) -> bool:
    """Whether `path` is a SavedModel folder (or its `saved_model.pb`), or a folder of numbered versions
    one of which is."""
    path = Path(path)
    if path.is_file():
        return path.name in SAVED_MODEL_FILES
    return is_saved_model(path) or any(is_saved_model(folder) for _, folder in version_folders(path))


def locate_saved_model(model_dir: str | Path) -> SavedModelLocation:
    """The SavedModel to serve: `model_dir` itself, or its highest numbered version folder holding one
    (a `saved_model.pb` file given directly stands for its folder)."""
    path = Path(model_dir)
    if path.is_file() and path.name in SAVED_MODEL_FILES:
        path = path.parent
    if not path.is_dir():
        raise SavedModelMissing(f"model folder {path} does not exist")
    if is_saved_model(path):
        return SavedModelLocation(path, None)
    versions = version_folders(path)
    for number, folder in versions:
        if is_saved_model(folder):
            return SavedModelLocation(folder, number)
        logger.warning("skipping version %s of %s: it holds no saved_model.pb", number, path)
    raise SavedModelMissing(
        f"no SavedModel in {path}: expected {SAVED_MODEL_FILES[0]} in it, "
        "or in numbered version folders (1/saved_model.pb, 2/saved_model.pb, ...)"
    )
