"""The peers' virtual environments under bench/.envs/, created on first use."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness import log

ENVS = Path(__file__).resolve().parent / ".envs"


def ensure_venv(name: str, requirements: list[str], *, system_site_packages: bool = False) -> Path:
    """bench/.envs/<name> with these requirements installed (made again when the list changes); its python.
    With `system_site_packages` it sees the current environment's packages (torch, say) and installs only
    what is missing or pinned otherwise."""
    env = ENVS / name
    python = env / "bin" / "python"
    marker = env / ".bench-requirements"
    wanted = "\n".join([*requirements, f"system-site-packages={system_site_packages}"])
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    log(f"creating {env} with {' '.join(requirements)} (a few minutes the first time)")
    if env.exists():
        shutil.rmtree(env)
    venv = [
        sys.executable,
        "-m",
        "venv",
        *(["--system-site-packages"] if system_site_packages else []),
        str(env),
    ]
    subprocess.run(venv, check=True)
    logfile = env / "pip.log"
    with open(logfile, "w") as out:
        res = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if res.returncode != 0:
        raise SystemExit(f"pip install into {env} failed; see {logfile}")
    marker.write_text(wanted)
    return python
