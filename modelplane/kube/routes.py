"""The way in, in Standard mode: Gateway API HTTPRoutes, or an Ingress where the cluster has no Gateway
API, as KServe's ingress reconciler writes them.

Hosts follow KServe's default domain template, `<name>-<namespace>.<domain>`: `<isvc>-<ns>.<domain>` for
the service (to the transformer if there is one, else the predictor; `:explain` to the explainer) and
`<isvc>-<component>-<ns>.<domain>` for each component (and for a named predictor
`<isvc>-<name>-predictor-<ns>.<domain>` as well, the host its status gives, to the stable predictor
alone). With the Gateway API each host is an HTTPRoute (`<isvc>`, `<isvc>-predictor`...) attached to
the installation's Gateway; a component whose Service has
a gRPC port and a REST one gets a gRPC rule to the first, then one to the other for the rest.
Standard-mode canaries share the predictor's routes by weight: the stable predictor
`100 - sum(canary %)`, each canary its `trafficPercent`; each also has a host of its own,
`<isvc>-<name>-predictor-<ns>.<domain>`, to it alone (KServe's canaries have none; `modelplane up` gives
one). An Ingress cannot weigh backends, so there the canaries are reached only through their own hosts.

The routes carry the resource's annotations (Gateway and ingress-nginx policies): an HTTPRoute less
KServe's disallowed ones, an Ingress all of them, as KServe writes them. Each HTTPRoute rule times out
after its component's `timeout`, else KServe's 60 seconds, unless the installation turns route
timeouts off (KServe's `disableHTTPRouteTimeout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelplane.kube.meta import object_metadata
from modelplane.kube.settings import KubeSettings
from modelplane.kube.workloads import HTTP_PORT, protocol_ports

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
GRPC_PATH = r"^/inference\.GRPCInferenceService/.*$"
GRPC_CONTENT_TYPE = "^application/grpc.*"
EXPLAIN_PATH = r"^/v1/models/[\w-]+:explain$"
ANY_PATH = "^/.*$"
DEFAULT_TIMEOUT = 60  # KServe's `DefaultTimeout`, in seconds


@dataclass(frozen=True)
class Backend:
    """A Service behind a route, with its share of the traffic, its gRPC port, if any, and the port of
    the rest."""

    service: str
    weight: int | None = None  # None: the only backend of its rule
    grpc_port: int | None = None
    http_port: int = HTTP_PORT

    @classmethod
    def of(cls, service: str, container_ports: list[dict], weight: int | None = None) -> Backend:
        """The Service in front of `container_ports`, with a gRPC rule's port where it serves REST and
        gRPC on ports of their own."""
        ports = protocol_ports(container_ports)
        if ports is None:
            return cls(service, weight)
        rest, grpc = ports
        return cls(service, weight, grpc_port=grpc, http_port=rest)


def host(name: str, namespace: str, settings: KubeSettings) -> str:
    """KServe's default domain template: `{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}`."""
    return f"{name}-{namespace}.{settings.ingress_domain}"


def http_route(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict,
    hostname: str,
    backends: Sequence[Backend],
    settings: KubeSettings,
    *,
    annotations: Mapping[str, str] | None = None,
    explainer: Sequence[Backend] = (),
    timeout: int | None = None,
    explainer_timeout: int | None = None,
    isvc_name: str | None = None,
) -> dict:
    """An HTTPRoute for `hostname`: `:explain` to `explainer` (if given), gRPC to the backends' gRPC
    ports (when they have one), everything else to their REST port (80 unless they have both). `timeout`
    and `explainer_timeout` are the components' own (None: the default)."""
    rules = []
    if explainer:
        explain_timeout = request_timeout(explainer_timeout, settings)
        rules.append(_rule(EXPLAIN_PATH, explainer, namespace, explain_timeout, isvc_name))
    timeout = request_timeout(timeout, settings)
    if backends and all(b.grpc_port is not None for b in backends):
        rules.append(_rule(GRPC_PATH, backends, namespace, timeout, isvc_name, grpc=True))
    rules.append(_rule(ANY_PATH, backends, namespace, timeout, isvc_name))
    gateway_namespace, _, gateway_name = settings.gateway.rpartition("/")
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway_name}
    if gateway_namespace:
        parent["namespace"] = gateway_namespace
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": object_metadata(name, namespace, owner, labels, annotations),
        "spec": {"parentRefs": [parent], "hostnames": [hostname], "rules": rules},
    }


def request_timeout(timeout: int | None, settings: KubeSettings) -> str | None:
    """KServe's `resolveTimeout`: a rule's `timeouts.request` (None: the rule has no timeouts)."""
    if settings.disable_http_route_timeout:
        return None
    return f"{int(timeout if timeout is not None else DEFAULT_TIMEOUT)}s"


def ingress(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict,
    hosts: Sequence[tuple[str, str]],
    settings: KubeSettings,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    """One Ingress with a rule per (host, Service)."""
    spec: dict = {}
    if settings.ingress_class:
        spec["ingressClassName"] = settings.ingress_class
    spec["rules"] = [
        {
            "host": hostname,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": service, "port": {"number": HTTP_PORT}}},
                    }
                ]
            },
        }
        for hostname, service in hosts
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_metadata(name, namespace, owner, labels, annotations),
        "spec": spec,
    }


def _rule(
    path: str,
    backends: Sequence[Backend],
    namespace: str,
    timeout: str | None,
    isvc_name: str | None,
    *,
    grpc: bool = False,
) -> dict:
    match: dict = {"path": {"type": "RegularExpression", "value": path}}
    if grpc:
        match["headers"] = [{"type": "RegularExpression", "name": "content-type", "value": GRPC_CONTENT_TYPE}]
    rule: dict = {"matches": [match]}
    if isvc_name is not None:
        rule["filters"] = [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {
                    "set": [
                        {"name": "KServe-Isvc-Name", "value": isvc_name},
                        {"name": "KServe-Isvc-Namespace", "value": namespace},
                    ]
                },
            }
        ]
    rule["backendRefs"] = [_backend_ref(backend, namespace, grpc) for backend in backends]
    if timeout is not None:
        rule["timeouts"] = {"request": timeout}
    return rule


def _backend_ref(backend: Backend, namespace: str, grpc: bool) -> dict:
    reference = {
        "group": "",
        "kind": "Service",
        "name": backend.service,
        "namespace": namespace,
        "port": backend.grpc_port if grpc else backend.http_port,
    }
    if backend.weight is not None:
        reference["weight"] = backend.weight
    return reference
