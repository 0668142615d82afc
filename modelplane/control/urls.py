"""Hosts and URLs of an InferenceService on the embedded platform's gateway, and where each host goes.

The names are those of KServe's Knative mode: `<name>.<namespace>.<domain>` for the service,
`<name>-<component>.<namespace>.<domain>` for each component.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# A Kubernetes service inside the cluster: `<service>.<namespace>.svc[.cluster.local]`.
_CLUSTER_SERVICE = re.compile(rf"^(?P<service>{_LABEL})\.(?P<namespace>{_LABEL})\.svc(\.cluster\.local)?$")


def service_host(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.{domain}"


def component_host(
    name: str, namespace: str, component: str, domain: str, predictor_name: str | None = None
) -> str:
    """`<name>-<component>...`; a predictor with a `predictor_name` is KServe's `<name>-<predictor_name>-predictor`."""
    if predictor_name and component == "predictor":
        name = f"{name}-{predictor_name}"
    return f"{name}-{component}.{namespace}.{domain}"


def predictor_name(isvc: dict) -> str | None:
    """`spec.predictor.name`, which KServe makes part of the predictor's Service (and so its hosts') name."""
    predictor = (isvc.get("spec") or {}).get("predictor")
    return (predictor.get("name") or None) if isinstance(predictor, dict) else None


@dataclass(frozen=True)
class GatewayAddress:
    """Where clients reach the gateway, for the URLs a status gives."""

    port: int
    scheme: str = "http"


def host_url(host: str, port: int, scheme: str = "http") -> str:
    """`http://host`, with the port unless it is the scheme's default (80, or 443 for https)."""
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def through_gateway(url: str, domain: str, port: int) -> str:
    """A URL written for a cluster, made to reach the gateway: an http URL without a port whose host is a
    service of the platform (`<name>.<namespace>.<domain>`) or of the cluster
    (`<name>.<namespace>.svc.cluster.local`, `<name>.<namespace>.svc`) gets the gateway's host and port.
    Any other URL (one with a port, https, another host) is left as it is."""
    try:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.port is not None or not parts.hostname or "@" in parts.netloc:
            return url
    except ValueError:
        return url
    host = parts.hostname.lower().rstrip(".")
    cluster = _CLUSTER_SERVICE.match(host)
    if cluster is not None:
        host = service_host(cluster["service"], cluster["namespace"], domain)
    elif not (host.endswith("." + domain) and host[: -len(domain) - 1].count(".") == 1):
        return url
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def grpc_url(host: str, port: int) -> str:
    """`grpc://host:port`: gRPC goes through the same gateway port as REST (HTTP/2 cleartext)."""
    return f"grpc://{host}:{port}"


def entry_component(components: Mapping[str, object] | set[str]) -> str:
    """The component a service's own host sends predictions to: the transformer if any, else the predictor."""
    return "transformer" if "transformer" in components else "predictor"


def service_routes(
    name: str, namespace: str, domain: str, components: set[str], serving: Mapping[str, T]
) -> dict[str, tuple[T, T | None]]:
    """Host -> (backend for requests, backend for `:explain` or None), for the components that serve.

    `components` are those the spec has. Each serving component gets its own host; once the predictor
    and the transformer (if any) serve, the service host goes to the entry component, with `:explain`
    to the explainer once it serves too. An explainer that does not serve (its library is missing, it
    crashes) leaves predictions alone.
    """
    routes: dict[str, tuple[T, T | None]] = {}
    for component, backend in serving.items():
        routes[component_host(name, namespace, component, domain)] = (backend, None)
    entry = entry_component(components)
    if components and (components - {"explainer"}) <= set(serving):
        routes[service_host(name, namespace, domain)] = (serving[entry], serving.get("explainer"))
    return routes
