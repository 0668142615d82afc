"""KServe's storage initializer: an init container that fetches a component's model before it starts.

It runs `modelplane storage fetch` in modelplane's image, into an `emptyDir` that the component's
container sees at `/mnt/models`. The emptyDir is mounted whole at `/mnt/provision` in the init
container, which fetches into its `models` folder (the container mounts that folder): a fetch is staged
next to its destination and renamed into place, which needs both on one volume. `--keep-existing`
makes a second run in the same pod (after a restart of the pod) keep the model the first one fetched.

- `pvc://<claim>/<path>`: the claim is mounted read-only at `/mnt/pvc/<claim>` in the init container.
- `storage: {key, path, parameters}`: the spec goes as JSON, and the key's document of the storage
  config Secret (`storage-config`, or the `serving.kserve.io/storageSecretName` annotation) as
  `STORAGE_CONFIG`, as KServe's initializer gets it.
- s3, gs, Azure and https URIs alone: the Secret's `default` document, if there is one.
- `storageUris`: an init container per model (`storage-initializer-<i>`), each fetching into its
  mount path's place under the paths' common parent, where the serving container mounts the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from modelplane.api.constants import DEFAULT_MOUNT_PATH
from modelplane.api.validation.inference_service import common_parent
from modelplane.kube.settings import KubeSettings
from modelplane.storage.uri import Location, parse_uri

CONTAINER_NAME = "storage-initializer"
VOLUME = "kserve-provision-location"
PROVISION_MOUNT = "/mnt/provision"
MODEL_FOLDER = "models"
PVC_VOLUME = "kserve-pvc-source"
PVC_ROOT = "/mnt/pvc"
SECRET_NAME_ANNOTATION = "serving.kserve.io/storageSecretName"
READONLY_ANNOTATION = "storage.kserve.io/readonly"
DEFAULT_KEY = "default"
_REMOTE = ("s3", "gs", "azure", "http")
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Provisioning:
    """What a pod needs to get its model: the init containers, the volumes, and the mount of the
    model folder for the container that serves it."""

    init_containers: list[dict]
    volumes: list[dict]
    model_mount: dict


def provisioning(
    storage_uri: str | None, storage: dict | None, annotations: dict, settings: KubeSettings
) -> Provisioning:
    """The storage initializer for a model at `storage_uri` and/or `storage` (raises the storage
    package's InvalidURIError for a URI it cannot fetch)."""
    container, volumes = _initializer(storage_uri, storage, annotations, settings)
    return Provisioning([container], volumes, _model_mount(DEFAULT_MOUNT_PATH, annotations))


def provisioning_of_uris(entries: list[dict], annotations: dict, settings: KubeSettings) -> Provisioning:
    """`storageUris`: an initializer per model, each fetching into its mount path's place in the
    volume, which the serving container mounts at the paths' common parent."""
    paths = [str(entry.get("mountPath") or DEFAULT_MOUNT_PATH) for entry in entries]
    parent = paths[0] if len(paths) == 1 else common_parent(paths)
    containers: list[dict] = []
    volumes: dict[str, dict] = {}
    for index, (entry, path) in enumerate(zip(entries, paths, strict=True)):
        place = str(PurePosixPath(path).relative_to(parent))
        suffix = f"-{index}" if len(entries) > 1 else ""
        container, needed = _initializer(entry["uri"], None, annotations, settings, place, suffix)
        containers.append(container)
        volumes.update({volume["name"]: volume for volume in needed})
    return Provisioning(containers, list(volumes.values()), _model_mount(parent, annotations))


def _initializer(
    storage_uri: str | None,
    storage: dict | None,
    annotations: dict,
    settings: KubeSettings,
    place: str = ".",
    suffix: str = "",
) -> tuple[dict, list[dict]]:
    """One init container fetching a model into `place` of the model folder, and the volumes it needs."""
    location = parse_uri(storage_uri) if storage_uri else None
    source = storage_uri if storage_uri else json.dumps(_spec(storage), sort_keys=True, separators=(",", ":"))
    destination = f"{PROVISION_MOUNT}/{MODEL_FOLDER}" + ("" if place == "." else f"/{place}")
    args = [source, destination, "--no-cache", "--keep-existing"]
    mounts = [{"name": VOLUME, "mountPath": PROVISION_MOUNT}]
    volumes: list[dict] = [{"name": VOLUME, "emptyDir": {}}]
    if location is not None and location.kind == "pvc":
        args += ["--pvc-dir", PVC_ROOT]
        claim = PVC_VOLUME + suffix
        volumes.append(
            {"name": claim, "persistentVolumeClaim": {"claimName": location.bucket, "readOnly": True}}
        )
        mounts.append({"name": claim, "mountPath": f"{PVC_ROOT}/{location.bucket}", "readOnly": True})
    container = {
        "name": CONTAINER_NAME + suffix,
        "image": settings.image,
        "command": ["modelplane", "storage", "fetch"],
        "args": args,
        "resources": settings.initializer_resources,
        "securityContext": RESTRICTED,
        # A failed fetch says why in the pod's status, as KServe's initializer does.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }
    env = _credentials(location, storage, annotations, settings)
    if env:
        container["env"] = env
    return container, volumes


def _model_mount(path: str, annotations: dict) -> dict:
    readonly = str(annotations.get(READONLY_ANNOTATION, "true")).lower() != "false"
    return {"name": VOLUME, "mountPath": path, "subPath": MODEL_FOLDER, "readOnly": readonly}


def fetches_from_container_filesystem(storage_uri: str | None) -> bool:
    """Whether a URI names a path inside the initializer's own container (a local path or file://),
    where no model is."""
    return bool(storage_uri) and parse_uri(storage_uri).kind == "local"


def _spec(storage: dict | None) -> dict:
    storage = storage or {}
    return {k: storage[k] for k in ("key", "path", "parameters") if storage.get(k) not in (None, "", {})}


def _credentials(
    location: Location | None, storage: dict | None, annotations: dict, settings: KubeSettings
) -> list[dict]:
    secret = annotations.get(SECRET_NAME_ANNOTATION) or settings.storage_secret
    if storage:
        reference = {"name": secret, "key": storage.get("key") or DEFAULT_KEY}
    elif location is not None and location.kind in _REMOTE:
        reference = {"name": secret, "key": DEFAULT_KEY, "optional": True}
    else:
        return []
    return [{"name": "STORAGE_CONFIG", "valueFrom": {"secretKeyRef": reference}}]
