"""KServe's storage initialization: how a component's pod gets its model, fetched by the storage
initializer, an init container that runs before the component's containers start, or on a claim
mounted as it is.

The storage initializer runs `modelplane storage fetch` in modelplane's image, into an `emptyDir` that the component's
container sees at `/mnt/models`. The emptyDir is mounted whole at `/mnt/provision` in the init
container, which fetches into its `models` folder (the container mounts that folder): a fetch is staged
next to its destination and renamed into place, which needs both on one volume. `--keep-existing`
makes a second run in the same pod (after a restart of the pod) keep the model the first one fetched.

- `pvc://<claim>/<path>`: no init container; the claim itself (volume `kserve-pvc-source`) is mounted at
  `/mnt/models` with `<path>` as its subPath, as KServe mounts it.
- `storage: {key, path, parameters}`: the spec goes as JSON, and the key's document of the storage
  config Secret (`storage-config`, or the `serving.kserve.io/storageSecretName` annotation) as
  `STORAGE_CONFIG`, as KServe's initializer gets it.
- s3, gs, Azure and https URIs alone: the Secret's `default` document, if there is one.
- `storageUris`: a claim is mounted whole at its mount path, in a volume named after the path
  (`/mnt/models/base`: `mnt-models-base`), as KServe does. The other models get an init container each
  (`storage-initializer-<i>` when there are several), each fetching into its mount path's place under
  those paths' common parent, where the serving containers mount the folder.

The serving containers are the main one and a collocated `transformer-container` (pods.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from modelplane.api.constants import DEFAULT_MOUNT_PATH
from modelplane.api.validation.inference_service import common_parent
from modelplane.kube.settings import KubeSettings
from modelplane.storage.spec import StorageSpec
from modelplane.storage.uri import Location, parse_uri

CONTAINER_NAME = "storage-initializer"
VOLUME = "kserve-provision-location"
PROVISION_MOUNT = "/mnt/provision"
MODEL_FOLDER = "models"
PVC_VOLUME = "kserve-pvc-source"
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
    """What a pod needs to get its model: the init containers, the volumes, and the mounts of the
    containers that serve it."""

    init_containers: list[dict]
    volumes: list[dict]
    model_mounts: list[dict]


def provisioning(
    storage_uri: str | None, storage: dict | None, annotations: dict, settings: KubeSettings
) -> Provisioning:
    """The model at `storage_uri` and/or `storage`: a claim mounted, anything else fetched by the
    storage initializer (raises the storage package's InvalidURIError for a URI it cannot fetch)."""
    readonly = _readonly(annotations)
    location = parse_uri(storage_uri) if storage_uri else None
    if location is not None and location.kind == "pvc":
        volume = _claim_volume(PVC_VOLUME, location, readonly)
        return Provisioning([], [volume], [_mount(PVC_VOLUME, DEFAULT_MOUNT_PATH, location.path, readonly)])
    container = _initializer(storage_uri, storage, annotations, settings)
    mount = _mount(VOLUME, DEFAULT_MOUNT_PATH, MODEL_FOLDER, readonly)
    return Provisioning([container], [_model_volume()], [mount])


def provisioning_of_uris(entries: list[dict], annotations: dict, settings: KubeSettings) -> Provisioning:
    """`storageUris`: each claim mounted whole at its mount path; the other models fetched by an
    initializer each into its mount path's place in the volume, which the serving containers mount at
    those paths' common parent."""
    readonly = _readonly(annotations)
    located = [
        (parse_uri(entry["uri"]), str(entry.get("mountPath") or DEFAULT_MOUNT_PATH)) for entry in entries
    ]
    claims = [(location, path) for location, path in located if location.kind == "pvc"]
    fetched = [(location, path) for location, path in located if location.kind != "pvc"]
    volumes = [_claim_volume(_volume_name_of(path), location, readonly) for location, path in claims]
    # KServe mounts a storageUris claim without a subPath: the path in its URI is not used.
    mounts = [_mount(_volume_name_of(path), path, "", readonly) for _, path in claims]
    if not fetched:
        return Provisioning([], volumes, mounts)
    paths = [path for _, path in fetched]
    parent = paths[0] if len(paths) == 1 else common_parent(paths)
    containers = []
    for index, (location, path) in enumerate(fetched):
        place = str(PurePosixPath(path).relative_to(parent))
        suffix = f"-{index}" if len(fetched) > 1 else ""
        containers.append(_initializer(location.uri, None, annotations, settings, place, suffix))
    mounts.append(_mount(VOLUME, parent, MODEL_FOLDER, readonly))
    return Provisioning(containers, [*volumes, _model_volume()], mounts)


def _volume_name_of(mount_path: str) -> str:
    """KServe's name for the volume of a storageUris entry (GetVolumeNameFromPath)."""
    return mount_path.strip("/").replace("/", "-")


def _claim_volume(name: str, location: Location, readonly: bool) -> dict:
    # Knative refuses a claim whose volume is not read-only unless its persistent-volume-write feature
    # is on. KServe sets read-only on the mounts alone: its webhook adds the claim to the pod after
    # Knative checked the revision, where modelplane writes it in the revision.
    claim = {"claimName": location.bucket, "readOnly": readonly}
    return {"name": name, "persistentVolumeClaim": claim}


def _model_volume() -> dict:
    return {"name": VOLUME, "emptyDir": {}}


def _initializer(
    storage_uri: str | None,
    storage: dict | None,
    annotations: dict,
    settings: KubeSettings,
    place: str = ".",
    suffix: str = "",
) -> dict:
    """One init container fetching a model into `place` of the model folder."""
    location = parse_uri(storage_uri) if storage_uri else None
    source = storage_uri if storage_uri else json.dumps(_spec(storage), sort_keys=True, separators=(",", ":"))
    destination = f"{PROVISION_MOUNT}/{MODEL_FOLDER}" + ("" if place == "." else f"/{place}")
    args = [source, destination, "--no-cache", "--keep-existing"]
    container = {
        "name": CONTAINER_NAME + suffix,
        "image": settings.image,
        "command": ["modelplane", "storage", "fetch"],
        "args": args,
        "resources": settings.initializer_resources,
        "securityContext": RESTRICTED,
        # A failed fetch says why in the pod's status, as KServe's initializer does.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": VOLUME, "mountPath": PROVISION_MOUNT}],
    }
    env = _credentials(location, storage, annotations, settings)
    if env:
        container["env"] = env
    return container


def _readonly(annotations: dict) -> bool:
    return str(annotations.get(READONLY_ANNOTATION, "true")).lower() != "false"


def _mount(volume: str, path: str, sub_path: str, readonly: bool) -> dict:
    mount: dict = {"name": volume, "mountPath": path}
    if sub_path:
        mount["subPath"] = sub_path
    mount["readOnly"] = readonly
    return mount


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
    if storage and storage.get("key"):
        reference = {"name": secret, "key": storage["key"]}
    elif storage:
        # KServe's default entry for a spec without a key, which need not be there.
        key = StorageSpec.from_dict(_spec(storage)).config_key
        reference = {"name": secret, "key": key, "optional": True}
    elif location is not None and location.kind in _REMOTE:
        reference = {"name": secret, "key": DEFAULT_KEY, "optional": True}
    else:
        return []
    return [{"name": "STORAGE_CONFIG", "valueFrom": {"secretKeyRef": reference}}]
