"""Platform settings that change how resources are defaulted (KServe keeps them in its config map)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import KNATIVE


def _default_resources() -> dict:
    return {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}


@dataclass(frozen=True)
class AdmissionConfig:
    """Settings for `admit`; the defaults are those of KServe's shipped `inferenceservice-config`.

    - `default_deployment_mode`: written onto an InferenceService without the deploymentMode
      annotation when it is `Standard` or `ModelMesh` (a Knative default is resolved later, not written).
    - `resource_defaults`: requests and limits given to custom containers that do not set them.
    - `automount_service_account_token`: when False, components get `automountServiceAccountToken: false`.
    - `art_default_image_version`: the `runtimeVersion` of an ART explainer that does not set one.
    """

    default_deployment_mode: str = KNATIVE
    resource_defaults: dict = field(default_factory=_default_resources)
    automount_service_account_token: bool = True
    art_default_image_version: str = "latest"


DEFAULT_CONFIG = AdmissionConfig()
