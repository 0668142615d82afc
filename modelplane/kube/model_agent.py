"""KServe's model agent in the pod of a multi-model predictor, which loads its TrainedModels.

- The model folder is an emptyDir `model-dir`, at `/mnt/models` in the server and in the agent.
- The ConfigMap `modelconfig-<isvc>-0` (its `models.json` lists the TrainedModels) is the volume
  `model-config`, mounted read-only at `/mnt/configs` in the agent's containers only.
- The `agent` sidecar runs `modelplane agent --config-dir /mnt/configs --model-dir /mnt/models
  --server http://127.0.0.1:<the server's port>` in modelplane's image: it follows the list as kubelet
  updates the volume, fetching and loading, unloading and removing, through the server's repository API.
- The `agent-prefetch` init container runs `modelplane agent --prefetch`: the models listed when the pod
  starts are in the folder before the server starts, which loads them before it says it is ready (so a
  new pod takes requests with its models, as KServe's agent sees to by holding the pod's readiness).
- Both get the storage config Secret's `default` document as `STORAGE_CONFIG` (optional), as the
  storage initializer does for a URI alone: a TrainedModel has a storageUri only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from modelplane.api.constants import DEFAULT_MOUNT_PATH
from modelplane.control.revision_templates import DEFAULT_HTTP_PORT
from modelplane.kube.settings import KubeSettings
from modelplane.kube.storage_initializer import DEFAULT_KEY, RESTRICTED, SECRET_NAME_ANNOTATION
from modelplane.kube.trained_models import model_config_name

CONTAINER_NAME = "agent"
INIT_CONTAINER_NAME = "agent-prefetch"
MODEL_VOLUME = "model-dir"
CONFIG_VOLUME = "model-config"
CONFIG_MOUNT = "/mnt/configs"


@dataclass(frozen=True)
class ModelAgent:
    """What a multi-model predictor's pod gets: the agent's containers, the volumes, and the mount of
    the model folder for the server."""

    container: dict
    init_container: dict
    volumes: list[dict]
    model_mount: dict


def model_agent(isvc: dict, server_port: int | str | None, settings: KubeSettings) -> ModelAgent:
    """The model agent of `isvc`'s predictor, whose server listens on `server_port` (default 8080)."""
    folder = ["--config-dir", CONFIG_MOUNT, "--model-dir", DEFAULT_MOUNT_PATH]
    mounts = [
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": True},
        {"name": MODEL_VOLUME, "mountPath": DEFAULT_MOUNT_PATH},
    ]
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    secret = annotations.get(SECRET_NAME_ANNOTATION) or settings.storage_secret
    reference = {"name": secret, "key": DEFAULT_KEY, "optional": True}

    def container(name: str, args: list[str]) -> dict:
        return {
            "name": name,
            "image": settings.image,
            "command": ["modelplane", "agent"],
            "args": args,
            "env": [{"name": "STORAGE_CONFIG", "valueFrom": {"secretKeyRef": dict(reference)}}],
            "resources": copy.deepcopy(settings.agent_resources),
            "securityContext": copy.deepcopy(RESTRICTED),
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": copy.deepcopy(mounts),
        }

    server = f"http://127.0.0.1:{server_port or DEFAULT_HTTP_PORT}"
    return ModelAgent(
        container=container(CONTAINER_NAME, [*folder, "--server", server]),
        init_container=container(INIT_CONTAINER_NAME, [*folder, "--prefetch"]),
        volumes=[
            {"name": MODEL_VOLUME, "emptyDir": {}},
            {"name": CONFIG_VOLUME, "configMap": {"name": model_config_name(isvc["metadata"]["name"])}},
        ],
        model_mount={"name": MODEL_VOLUME, "mountPath": DEFAULT_MOUNT_PATH},
    )
