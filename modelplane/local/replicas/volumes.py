"""A container's `volumeMounts` on one machine: each mounted volume is a folder here, which stands for
its `mountPath` in the replica's arguments, variables and working folder, as the model's folder stands
for `/mnt/models` (replicas/command.py).

- `configMap`, `secret`: the keys (or the `items` given, each at its `path`) written as files when the
  replica starts, with `defaultMode` (or an item's `mode`) as their permissions; a ConfigMap or Secret
  that is not there holds the replica (`CreateContainerConfigError`) unless it is `optional`.
- `emptyDir`: a folder of the replica's own, empty when the replica is made; what its process wrote
  there outlives a restart of the process, as an emptyDir outlives a container's restart in its pod.
- `persistentVolumeClaim`: the claim's folder, `$MODELPLANE_PVC_DIR/<claimName>` (as `pvc://` models).
- `hostPath`: the path itself.

A mount's `subPath` (or `subPathExpr`, its `$(NAME)` references expanded from the container's
variables) is a path within its volume. Any other kind of volume is not made: the replica's
log says so, and its `mountPath` is left as written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from modelplane.api.kinds import CONFIG_MAP, SECRET, Kind
from modelplane.local.replicas.command import ModelMount
from modelplane.local.replicas.container_env import EnvError, expand

DEFAULT_MODE = 0o644  # Kubernetes' defaultMode, 420
# The files of a ConfigMap or a Secret, by key: (kind, namespace, name) -> contents, or None.
FileLookup = Callable[[str, str, str], Mapping[str, bytes] | None]


@dataclass
class ReplicaVolumes:
    """The folders that stand for a replica's mount paths, and what could not be made."""

    mounts: list[ModelMount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def replica_volumes(
    spec: dict,
    namespace: str,
    folder: Path,
    lookup: FileLookup,
    pvc_root: Path,
    variables: Mapping[str, str] | None = None,
    *,
    fresh: bool = True,
) -> ReplicaVolumes:
    """The replica's volumes (`spec` is its template's `volumes`: `mounts` and `sources` by name), made
    under `folder`, its own; `variables` are the container's, for a `subPathExpr`; `fresh`: the replica
    is new (its emptyDirs start empty), not a restart of its process. Raises EnvError for a ConfigMap
    or Secret that is missing."""
    made = ReplicaVolumes()
    folders: dict[str, Path | None] = {}
    for mount in spec.get("mounts") or []:
        name, path = mount.get("name"), mount.get("mountPath")
        if not name or not path:
            continue
        if name not in folders:
            source = (spec.get("sources") or {}).get(name)
            folders[name] = _volume(
                name, source, namespace, folder / name, lookup, pvc_root, made.notes, fresh=fresh
            )
        root = folders[name]
        if root is None:
            continue
        sub_path = str(mount.get("subPath") or "").strip("/")
        if mount.get("subPathExpr"):
            sub_path = expand(str(mount["subPathExpr"]), variables or {}).strip("/")
        local = root / PurePosixPath(sub_path) if sub_path else root
        if sub_path and not local.exists() and root.is_relative_to(folder):
            local.mkdir(parents=True, exist_ok=True)  # as the kubelet makes a subPath in a volume of its own
        made.mounts.append(ModelMount(local, str(path).rstrip("/") or "/"))
    return made


def _volume(
    name: str,
    source: dict | None,
    namespace: str,
    folder: Path,
    lookup: FileLookup,
    pvc_root: Path,
    notes: list[str],
    *,
    fresh: bool,
) -> Path | None:
    if not isinstance(source, dict):
        notes.append(f"volume {name} is mounted but not declared in the pod's volumes")
        return None
    if isinstance(source.get("configMap"), dict):
        ref = source["configMap"]
        return _files(name, CONFIG_MAP, ref.get("name"), ref, namespace, folder, lookup)
    if isinstance(source.get("secret"), dict):
        ref = source["secret"]
        return _files(name, SECRET, ref.get("secretName"), ref, namespace, folder, lookup)
    if "emptyDir" in source:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    if isinstance(source.get("persistentVolumeClaim"), dict):
        return pvc_root / str(source["persistentVolumeClaim"].get("claimName") or "")
    if isinstance(source.get("hostPath"), dict) and source["hostPath"].get("path"):
        return Path(source["hostPath"]["path"])
    kind = next((key for key in source if key != "name"), "nothing")
    notes.append(f"volume {name} ({kind}) is not made on one machine: its mountPath is left as written")
    return None


def _files(
    volume: str, kind: Kind, name: str | None, ref: dict, namespace: str, folder: Path, lookup: FileLookup
) -> Path | None:
    """A ConfigMap's or a Secret's keys as files in `folder` (made afresh)."""
    stored = lookup(kind.kind, namespace, name or "")
    if stored is None:
        if ref.get("optional"):
            stored = {}
        else:
            raise EnvError(f'{kind.kind.lower()} "{name}" not found (volume {volume})')
    items = ref.get("items")
    wanted = {item["key"]: item for item in items if isinstance(item, dict)} if items else None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    default_mode = int(ref.get("defaultMode", DEFAULT_MODE))
    for key, value in stored.items():
        if wanted is not None and key not in wanted:
            continue
        item = (wanted or {}).get(key, {})
        target = folder / PurePosixPath(str(item.get("path") or key))
        if not target.resolve().is_relative_to(folder.resolve()):
            raise EnvError(f"volume {volume}: the path of key {key} leaves the volume")
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = int(item.get("mode", default_mode)) & 0o777
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(value)
        os.chmod(target, mode)
    missing = [key for key in wanted or {} if key not in stored]
    if missing and not ref.get("optional"):
        raise EnvError(f'{kind.kind.lower()} "{name}" has no key {missing[0]} (volume {volume})')
    return folder
