"""A container's `volumeMounts` on one machine: each mounted volume is a folder here, which stands for
its `mountPath` in the replica's arguments, variables and working folder, as the model's folder stands
for `/mnt/models` (replicas/command.py).

- `configMap`, `secret`: the keys (or the `items` given, each at its `path`) written as files when the
  replica starts, with `defaultMode` (or an item's `mode`) as their permissions; a ConfigMap or Secret
  that is not there holds the replica (`CreateContainerConfigError`) unless it is `optional`.
- `downwardAPI`: the pod's fields and the container's resources as files (`metadata.labels` and
  `metadata.annotations` whole, one `key="value"` line each, as the kubelet writes them).
- `projected`: the files of its ConfigMap, Secret and downwardAPI sources in one folder.
- `emptyDir`: a folder of the replica's own, empty when the replica is made; what its process wrote
  there outlives a restart of the process, as an emptyDir outlives a container's restart in its pod.
- `persistentVolumeClaim`: the claim's folder, `$MODELPLANE_PVC_DIR/<claimName>` (as `pvc://` models).
- `hostPath`: the path itself.

A mount's `subPath` (or `subPathExpr`, its `$(NAME)` references expanded from the container's
variables) is a path within its volume. Any other kind of volume is not made: the replica's
log says so, and its `mountPath` is left as written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from modelplane.api.kinds import CONFIG_MAP, SECRET, Kind
from modelplane.local.replicas.command import ModelMount
from modelplane.local.replicas.container_env import EnvError, Pod, expand, field_value, resource_value

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
    pod: Pod | None = None,
    resources: Mapping | None = None,
) -> ReplicaVolumes:
    """The replica's volumes (`spec` is its template's `volumes`: `mounts` and `sources` by name), made
    under `folder`, its own; `variables` are the container's, for a `subPathExpr`; `fresh`: the replica
    is new (its emptyDirs start empty), not a restart of its process. Raises EnvError for a ConfigMap
    or Secret that is missing. `pod` and `resources` are what a downwardAPI volume tells."""
    made = ReplicaVolumes()
    facts = _Facts(namespace, lookup, pod or Pod("", namespace), resources or {})
    folders: dict[str, Path | None] = {}
    for mount in spec.get("mounts") or []:
        name, path = mount.get("name"), mount.get("mountPath")
        if not name or not path:
            continue
        if name not in folders:
            source = (spec.get("sources") or {}).get(name)
            folders[name] = _volume(name, source, facts, folder / name, pvc_root, made.notes, fresh=fresh)
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


@dataclass(frozen=True)
class _Facts:
    """Where a volume's files come from."""

    namespace: str
    lookup: FileLookup
    pod: Pod
    resources: Mapping


def _volume(
    name: str,
    source: dict | None,
    facts: _Facts,
    folder: Path,
    pvc_root: Path,
    notes: list[str],
    *,
    fresh: bool,
) -> Path | None:
    if not isinstance(source, dict):
        notes.append(f"volume {name} is mounted but not declared in the pod's volumes")
        return None
    projected = source.get("projected")
    file_sources = [
        kind_source
        for kind_source in ([source] if not isinstance(projected, dict) else projected.get("sources") or [])
        if isinstance(kind_source, dict)
    ]
    if any(key in part for part in file_sources for key in ("configMap", "secret", "downwardAPI")):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        default_mode = (projected if isinstance(projected, dict) else {}).get("defaultMode")
        for part in file_sources:
            _write_source(name, part, facts, folder, default_mode, notes)
        return folder
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


def _write_source(
    volume: str, source: dict, facts: _Facts, folder: Path, default_mode: int | None, notes: list[str]
) -> None:
    """The files of one ConfigMap, Secret or downwardAPI source into `folder`."""
    if isinstance(source.get("configMap"), dict):
        ref = source["configMap"]
        _key_files(volume, CONFIG_MAP, ref.get("name"), ref, facts, folder, default_mode)
    elif isinstance(source.get("secret"), dict):
        ref = source["secret"]
        _key_files(volume, SECRET, ref.get("secretName") or ref.get("name"), ref, facts, folder, default_mode)
    elif isinstance(source.get("downwardAPI"), dict):
        ref = source["downwardAPI"]
        mode = int(ref.get("defaultMode", default_mode or DEFAULT_MODE))
        for item in ref.get("items") or []:
            if isinstance(item, dict) and item.get("path"):
                _write(
                    volume, folder, item["path"], _downward_value(item, facts), int(item.get("mode", mode))
                )
    else:
        kind = next((key for key in source if key != "name"), "nothing")
        notes.append(f"volume {volume}: its {kind} source is not made on one machine")


def _key_files(
    volume: str,
    kind: Kind,
    name: str | None,
    ref: dict,
    facts: _Facts,
    folder: Path,
    default_mode: int | None,
) -> None:
    """A ConfigMap's or a Secret's keys (or the `items` asked for) as files in `folder`."""
    stored = facts.lookup(kind.kind, facts.namespace, name or "")
    if stored is None:
        if not ref.get("optional"):
            raise EnvError(f'{kind.kind.lower()} "{name}" not found (volume {volume})')
        stored = {}
    items = ref.get("items")
    wanted = {item["key"]: item for item in items if isinstance(item, dict)} if items else None
    mode = int(ref.get("defaultMode", default_mode or DEFAULT_MODE))
    for key, value in stored.items():
        if wanted is None or key in wanted:
            item = (wanted or {}).get(key, {})
            _write(volume, folder, str(item.get("path") or key), value, int(item.get("mode", mode)))
    missing = [key for key in wanted or {} if key not in stored]
    if missing and not ref.get("optional"):
        raise EnvError(f'{kind.kind.lower()} "{name}" has no key {missing[0]} (volume {volume})')


def _downward_value(item: dict, facts: _Facts) -> bytes:
    if isinstance(item.get("resourceFieldRef"), dict):
        return resource_value(item["resourceFieldRef"], facts.resources).encode()
    path = str((item.get("fieldRef") or {}).get("fieldPath") or "")
    if path in ("metadata.labels", "metadata.annotations"):
        values = facts.pod.labels if path == "metadata.labels" else facts.pod.annotations
        return "\n".join(f"{key}={json.dumps(str(value))}" for key, value in sorted(values.items())).encode()
    return field_value(path, facts.pod).encode()


def _write(volume: str, folder: Path, path: str, value: bytes, mode: int) -> None:
    target = folder / PurePosixPath(path)
    if not target.resolve().is_relative_to(folder.resolve()):
        raise EnvError(f"volume {volume}: the path {path} leaves the volume")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o777)
    with os.fdopen(descriptor, "wb") as file:
        file.write(value)
    os.chmod(target, mode & 0o777)
