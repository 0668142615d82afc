"""What an installation decides about the objects the operator creates (KServe keeps these in its
`inferenceservice-config` ConfigMap): the image, the default deployment mode, how traffic gets in, and
where storage credentials live."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplane import __version__
from modelplane.api.constants import STANDARD

IMAGE_REPOSITORY = "ghcr.io/modelplane/modelplane"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
FULL_VARIANT_SUFFIX = "-full"


def _router_resources() -> dict:
    # KServe's `router` defaults in inferenceservice-config.
    return {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def _initializer_resources() -> dict:
    # KServe's `storageInitializer` defaults in inferenceservice-config.
    return {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def _agent_resources() -> dict:
    # KServe's `agent` defaults in inferenceservice-config.
    return {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@dataclass(frozen=True)
class KubeSettings:
    """- `default_mode`: the deployment mode of a resource without the deploymentMode annotation.
    - `image`: modelplane's image, which the built-in runtimes, the storage initializer and the router
      run; `full_image` is its variant with PyTorch, TensorFlow and PaddlePaddle (default: `<repository>-full`, same tag).
    - `gateway_api`: whether traffic gets in through Gateway API HTTPRoutes (attached to `gateway`,
      `namespace/name`) or through an Ingress (of `ingress_class`, the cluster's default if None).
    - `disable_http_route_timeout`: HTTPRoute rules without `timeouts` (KServe's
      `disableHTTPRouteTimeout`, for Gateways that do not support them); otherwise each rule times out
      after its component's `timeout`, else 60 seconds.
    - `ingress_domain`: the domain of the external hosts, `<name>-<namespace>.<ingress_domain>`.
    - `storage_secret`: the Secret holding the storage configs (`storage-config`, as KServe names it).
    - `router_propagate_headers`: the headers graph routers pass on to their steps (KServe's
      `router.headers.propagate`), as the router's `PROPAGATE_HEADERS`.
    """

    default_mode: str = STANDARD
    image: str = DEFAULT_IMAGE
    full_image: str | None = None
    gateway_api: bool = True
    gateway: str = "kserve/kserve-ingress-gateway"
    ingress_class: str | None = None
    disable_http_route_timeout: bool = False
    ingress_domain: str = "example.com"
    url_scheme: str = "http"
    cluster_domain: str = "cluster.local"
    storage_secret: str = "storage-config"
    router_resources: dict = field(default_factory=_router_resources)
    router_propagate_headers: tuple[str, ...] = ()  # regular expressions of headers a router passes on
    initializer_resources: dict = field(default_factory=_initializer_resources)
    agent_resources: dict = field(default_factory=_agent_resources)  # the model agent's containers

    @property
    def full_variant(self) -> str:
        return self.full_image or full_variant_of(self.image)


def full_variant_of(image: str) -> str:
    """`registry/modelplane:tag` -> `registry/modelplane-full:tag` (an image pinned by digest has no
    full variant of the same digest: `:latest`)."""
    name, digest = image.split("@", 1) if "@" in image else (image, "")
    tag = "latest"
    if name.rfind(":") > name.rfind("/"):
        name, tag = name[: name.rfind(":")], name[name.rfind(":") + 1 :]
    return f"{name}{FULL_VARIANT_SUFFIX}:{tag if not digest else 'latest'}"
