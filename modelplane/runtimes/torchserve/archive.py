"""Opening a TorchServe model archive (`.mar`): a zip of the serialized model, the model's code, the
handler, extra files, and `MAR-INF/MANIFEST.json` naming them."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

from modelplane.storage.archive import unpack
from modelplane.storage.errors import ArchiveError

logger = logging.getLogger("modelplane.server")

MANIFEST = "MAR-INF/MANIFEST.json"


class ArchiveInvalid(Exception):
    """A .mar that cannot be opened or has no usable manifest."""


def read_manifest(archive: Path) -> dict:
    """The MANIFEST.json of a .mar, without unpacking the rest."""
    try:
        with zipfile.ZipFile(archive) as zf:
            raw = zf.read(MANIFEST)
    except KeyError:
        raise ArchiveInvalid(
            f"{archive.name} has no {MANIFEST}: it is not a TorchServe model archive"
        ) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveInvalid(f"{archive.name} is not a TorchServe model archive: {exc}") from None
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArchiveInvalid(f"{archive.name}: {MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("model"), dict):
        raise ArchiveInvalid(f"{archive.name}: {MANIFEST} has no model section")
    return manifest


def read_model_config(archive: Path, manifest: dict) -> dict:
    """The archive's own model config (`torch-model-archiver --config-file`, a YAML file the manifest
    names as `configFile`): its workers, batching and timeouts, and the `handler` section handlers read
    from `context.model_yaml_config`. Empty when the archive has none."""
    config_file = manifest["model"].get("configFile")
    if not config_file:
        return {}
    import yaml

    try:
        with zipfile.ZipFile(archive) as zf:
            config = yaml.safe_load(zf.read(config_file))
    except KeyError:
        raise ArchiveInvalid(
            f"{archive.name}: its manifest names {config_file}, which it does not hold"
        ) from None
    except yaml.YAMLError as exc:
        raise ArchiveInvalid(f"{archive.name}: {config_file} is not valid YAML: {exc}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ArchiveInvalid(f"{archive.name}: {config_file} must be a YAML mapping")
    return config


def open_archive(archive: Path, target: Path) -> dict:
    """Unpacks a .mar into `target` (checked as any archive modelplane unpacks) and returns its manifest."""
    manifest = read_manifest(archive)
    try:
        unpack(archive, target, is_zip=True)
    except ArchiveError as exc:
        raise ArchiveInvalid(str(exc)) from None
    if not manifest["model"].get("handler"):
        raise ArchiveInvalid(f"{archive.name}: its manifest names no handler")
    if (target / "requirements.txt").is_file():
        logger.warning(
            "%s carries a requirements.txt: modelplane does not install a model's own packages; "
            "install them in the replica's environment",
            archive.name,
        )
    return manifest
