"""Fixtures the whole suite shares."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def example_models(tmp_path_factory) -> Callable[[Path], Path]:
    """Puts every example's model (examples/build_models.py) in a folder and returns it. The models are
    built once a session, on first use; each caller gets a copy of its own to change as it likes."""
    built: list[Path] = []

    def place(folder: Path) -> Path:
        if not built:
            sys.path.insert(0, str(EXAMPLES))
            from build_models import build_all

            root = tmp_path_factory.mktemp("example-models")
            build_all(root)
            built.append(root)
        shutil.copytree(built[0], folder, symlinks=True, dirs_exist_ok=True)
        return folder

    return place
