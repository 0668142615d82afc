"""Fixtures the whole suite shares."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def example_models(tmp_path_factory) -> Callable[[Path], Path]:
    """Puts every example's model (examples/build_models.py) in a folder and returns it. The models are
    built once a run, on first use, and shared by the run's xdist workers; each caller gets a copy of
    its own to change as it likes."""
    built: list[Path] = []

    def place(folder: Path) -> Path:
        if not built:
            built.append(_built_example_models(tmp_path_factory))
        shutil.copytree(built[0], folder, symlinks=True, dirs_exist_ok=True)
        return folder

    return place


def _built_example_models(tmp_path_factory) -> Path:
    """The example models, built by whichever worker of the run asks first while the others wait."""
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_folder = run_folder.parent  # the workers' base folders share this one
    root, done = run_folder / "example-models", run_folder / "example-models.built"
    with open(run_folder / "example-models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            sys.path.insert(0, str(EXAMPLES))
            from build_models import build_all

            build_all(root)
            done.touch()
    return root
