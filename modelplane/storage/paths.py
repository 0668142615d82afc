"""Where storage keeps things on this machine. Each folder has an environment override."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The modelplane state folder: `$MODELPLANE_HOME`, else `~/.modelplane`."""
    return Path(os.environ.get("MODELPLANE_HOME") or "~/.modelplane").expanduser()


def cache_dir() -> Path:
    """Fetched models: `$MODELPLANE_CACHE_DIR`, else `<home>/cache/models`."""
    override = os.environ.get("MODELPLANE_CACHE_DIR")
    return Path(override).expanduser() if override else home() / "cache" / "models"


def credentials_dir() -> Path:
    """Named storage configs, one JSON file per key: `$MODELPLANE_STORAGE_CONFIG_DIR`, else `<home>/storage-config`."""
    override = os.environ.get("MODELPLANE_STORAGE_CONFIG_DIR")
    return Path(override).expanduser() if override else home() / "storage-config"


def pvc_dir() -> Path:
    """The folder holding one folder per claim for pvc:// URIs: `$MODELPLANE_PVC_DIR`, else `<home>/pvc`."""
    override = os.environ.get("MODELPLANE_PVC_DIR")
    return Path(override).expanduser() if override else home() / "pvc"
