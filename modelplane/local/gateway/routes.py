"""The routing table the reconciler hands to the gateway: plain, immutable data.

A host (`<name>.<namespace>.<domain>`, `<name>-predictor.<namespace>.<domain>`,
`latest-<name>-predictor.<namespace>.<domain>`...) maps to a `Route`: weighted `Backend`s, one per
revision, each with the addresses of its ready replicas. The reconciler builds a whole new
`RouteTable` on every change and the gateway swaps it in at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from modelplane.telemetry.payload_events import PayloadLogSpec

DEFAULT_DOMAIN = "localhost"
# A route for this host takes the requests of every host the table does not name (`modelplane logger`,
# the payload logger in front of one model server in a pod).
ANY_HOST = "*"
COMPONENTS = ("predictor", "transformer", "explainer")


@dataclass(frozen=True)
class Backend:
    """One revision behind a route.

    `replicas` are the "host:port" addresses of its ready replicas; an empty tuple means the revision
    is scaled to zero and requests wait in the gateway until replicas appear.
    `grpc_replicas` are the same replicas' gRPC addresses, in the same order; None when the revision
    serves no gRPC (gRPC calls for it are refused with UNIMPLEMENTED).
    `container_concurrency` caps the requests in flight per replica (0 means unlimited); requests
    beyond it wait in the gateway. `timeout_seconds` bounds the wait for the response headers
    (None: the gateway's default). `payload_log` is the component's `logger`: its requests and
    responses are sent to its sink as CloudEvents.
    """

    revision: str
    replicas: tuple[str, ...] = ()
    weight: int = 100
    container_concurrency: int = 0
    timeout_seconds: float | None = None
    grpc_replicas: tuple[str, ...] | None = None
    payload_log: PayloadLogSpec | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"backend {self.revision!r}: weight must be >= 0, got {self.weight}")
        if self.container_concurrency < 0:
            raise ValueError(
                f"backend {self.revision!r}: container_concurrency must be >= 0, "
                f"got {self.container_concurrency}"
            )
        for address in self.replicas:
            split_address(address)
        if self.grpc_replicas is not None:
            if len(self.grpc_replicas) != len(self.replicas):
                raise ValueError(
                    f"backend {self.revision!r}: {len(self.grpc_replicas)} gRPC addresses "
                    f"for {len(self.replicas)} replicas"
                )
            for address in self.grpc_replicas:
                split_address(address)


@dataclass(frozen=True)
class Route:
    """Where the requests for one host go.

    Requests are split between `backends` by weight (a lone backend takes everything, whatever its
    weight, so a tag route can reuse a revision's 0% backend). A path ending in `:explain` goes to `explain`
    instead, when set (the InferenceService host routes predict calls to the transformer or the
    predictor, and explain calls to the explainer). Without `explain`, `explain_refusal` is the
    reason a `:explain` call is answered 503 (an explainer that does not serve), when set.
    `refusal`, when set, is the reason every request is answered 503 (a model that failed to load),
    the requests waiting for its backends included.
    """

    backends: tuple[Backend, ...]
    explain: Route | None = None
    explain_refusal: str | None = None
    refusal: str | None = None

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("a route needs at least one backend")
        if len(self.backends) > 1 and sum(backend.weight for backend in self.backends) <= 0:
            revisions = ", ".join(backend.revision for backend in self.backends)
            raise ValueError(f"route to {revisions}: the weights add up to 0")

    def all_backends(self) -> Iterable[Backend]:
        yield from self.backends
        if self.explain is not None:
            yield from self.explain.all_backends()


@dataclass(frozen=True)
class RouteTable:
    """Hosts (lower case, without port) to routes.

    `unavailable` names the hosts of services that exist but do not serve (their predictor failed, their
    runtime is missing, they are stopped or still loading) with the reason: their requests are answered
    503 with it rather than 404. `starting` says the routes of the stored services are not all loaded
    yet (`modelplane up` has just started): a host the table does not know is answered 503, not 404.
    `model_endpoints` are hosts that route by model rather than by host (ModelMesh's single endpoint,
    `gateway/modelmesh_endpoint.py`): each maps the names of its models to the host whose route serves them.
    `crashed` are the addresses of replicas that died lately rather than being stopped: a request one of
    them closed on without a word is not sent to another replica (it may be what killed it).
    """

    routes: Mapping[str, Route] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    starting: bool = False
    model_endpoints: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    crashed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        normalized = {host.lower(): route for host, route in self.routes.items()}
        object.__setattr__(self, "routes", MappingProxyType(normalized))
        refused = {
            host.lower(): why for host, why in self.unavailable.items() if host.lower() not in normalized
        }
        object.__setattr__(self, "unavailable", MappingProxyType(refused))
        endpoints = {
            host.lower(): MappingProxyType({name: target.lower() for name, target in models.items()})
            for host, models in self.model_endpoints.items()
        }
        object.__setattr__(self, "model_endpoints", MappingProxyType(endpoints))

    def __reduce__(self):
        """Pickled as plain dicts: the gateway's worker processes receive it that way."""
        endpoints = {host: dict(models) for host, models in self.model_endpoints.items()}
        return (RouteTable, (dict(self.routes), dict(self.unavailable), self.starting, endpoints))

    def lookup(self, host: str) -> Route | None:
        return self.routes.get(host)

    def hosts(self) -> list[str]:
        return sorted(self.routes)


def isvc_host(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The host of an InferenceService or InferenceGraph: `<name>.<namespace>.<domain>`."""
    return f"{name}.{namespace}.{domain}"


def component_host(
    name: str, namespace: str, component: str, domain: str = DEFAULT_DOMAIN, tag: str | None = None
) -> str:
    """The host of one component, e.g. `sklearn-iris-predictor.default.localhost`.

    With a tag (`latest`, `prev`), the Knative-style tag host: `latest-sklearn-iris-predictor...`.
    """
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; expected one of {', '.join(COMPONENTS)}")
    prefix = f"{tag}-" if tag else ""
    return f"{prefix}{name}-{component}.{namespace}.{domain}"


def split_address(address: str) -> tuple[str, int]:
    """`"127.0.0.1:8001"` -> `("127.0.0.1", 8001)`; `"[::1]:8001"` -> `("::1", 8001)`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"replica address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def host_without_port(host: str) -> str:
    """The Host header's name part, lower case: `"A.b.localhost:8080"` -> `"a.b.localhost"`."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1].lower() if end != -1 else host.lower()
    name, _, port = host.rpartition(":")
    if name and port.isdigit():
        host = name
    return host.rstrip(".").lower()


@dataclass(frozen=True)
class ComponentTraffic:
    """The revisions serving one component: the weighted split, and the `latest`/`prev` tag targets."""

    backends: tuple[Backend, ...]
    latest: Backend | None = None
    prev: Backend | None = None

    def route(self) -> Route:
        return Route(self.backends)


def inference_service_routes(
    name: str,
    namespace: str,
    predictor: ComponentTraffic,
    transformer: ComponentTraffic | None = None,
    explainer: ComponentTraffic | None = None,
    domain: str = DEFAULT_DOMAIN,
) -> dict[str, Route]:
    """Every host of one InferenceService, for a `RouteTable`.

    The service host goes to the transformer if there is one, else the predictor, and sends
    `:explain` to the explainer; each component also gets its own host and its tag hosts.
    """
    components = {"predictor": predictor, "transformer": transformer, "explainer": explainer}
    front = (transformer or predictor).route()
    if explainer is not None:
        front = Route(front.backends, explain=explainer.route())
    routes = {isvc_host(name, namespace, domain): front}
    for component, traffic in components.items():
        if traffic is None:
            continue
        routes[component_host(name, namespace, component, domain)] = traffic.route()
        for tag, backend in (("latest", traffic.latest), ("prev", traffic.prev)):
            if backend is not None:
                routes[component_host(name, namespace, component, domain, tag)] = Route((backend,))
    return routes


def inference_graph_routes(
    name: str,
    namespace: str,
    router: tuple[Backend, ...],
    domain: str = DEFAULT_DOMAIN,
    refusal: str | None = None,
) -> dict[str, Route]:
    """The host of one InferenceGraph: its router's revisions (`refusal`: why they do not serve)."""
    return {isvc_host(name, namespace, domain): Route(router, refusal=refusal)}
