"""From a request's Host and path to the revision that serves it, splitting traffic by weight; and
what the gateway records of each request on that route (`watch`)."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping

from modelplane.local.gateway.modelmesh_endpoint import (
    MODEL_ID_HEADER,
    VERSION_SEPARATOR,
    address_endpoint,
    is_address,
    model_in_path,
)
from modelplane.local.gateway.observe import CallWatch, ExchangeWatch, GatewayObserver
from modelplane.local.gateway.revisions import RevisionStats, RevisionUpstreams, Unavailable
from modelplane.local.gateway.routes import ANY_HOST, Route, RouteTable, host_without_port
from modelplane.telemetry.payload_events import PayloadLogSpec

_HOST_CACHE_LIMIT = 4096
STARTING = "modelplane is starting: the routes of its services are not loaded yet; try again in a moment"


class _Split:
    """A route compiled for the hot path: cumulative weights over live revision states."""

    __slots__ = (
        "host",
        "revisions",
        "bounds",
        "total",
        "explain",
        "explain_refusal",
        "refusal",
        "payload_log",
    )

    def __init__(self, host: str, route: Route, revisions: dict[str, RevisionUpstreams]) -> None:
        self.host = host
        weighted = [backend for backend in route.backends if backend.weight > 0] or list(route.backends)
        # Every backend of a route is a revision of one component, with that component's logger.
        self.payload_log: PayloadLogSpec | None = route.backends[0].payload_log
        self.revisions = [revisions[backend.revision] for backend in weighted]
        self.bounds: list[int] = []
        total = 0
        for backend in weighted:
            total += backend.weight or 1
            self.bounds.append(total)
        self.total = total
        self.explain = _Split(host, route.explain, revisions) if route.explain is not None else None
        self.explain_refusal = route.explain_refusal
        self.refusal = route.refusal

    def serving(self, path: bytes) -> _Split:
        """The split that serves `path`: this one, or the explainer's for a `:explain` call."""
        if self.refusal is not None:
            raise Unavailable(503, self.refusal)
        if path.endswith(b":explain"):
            if self.explain is not None:
                return self.explain
            if self.explain_refusal is not None:
                raise Unavailable(503, self.explain_refusal)
        return self

    def pick(self, path: bytes) -> RevisionUpstreams:
        split = self.serving(path)
        if split is not self:
            return split.pick(path)
        if len(self.revisions) == 1:
            return self.revisions[0]
        return self.revisions[bisect_right(self.bounds, random.random() * self.total)]


class Dispatcher:
    """The live routing table and the state of every revision it names.

    `update` runs on the gateway's loop. The dictionaries are replaced, never mutated, so other
    threads may read `stats` at any time.
    """

    def __init__(
        self,
        on_demand: Callable[[str], None] | None = None,
        observer: GatewayObserver | None = None,
        default_timeout: float = 300.0,
        list_hosts: bool = True,
    ) -> None:
        self._on_demand = on_demand
        # Whether a request for no known host is told the hosts there are: not where the gateway is
        # reached from beyond this machine.
        self._list_hosts = list_hosts
        self._default_timeout = default_timeout  # of a revision without one (the gateway's response_timeout)
        self.observer = observer or GatewayObserver()
        self._table = RouteTable()
        self._splits: dict[str, _Split] = {}
        self._by_host_header: dict[bytes, _Split | None] = {}
        self._revisions: dict[str, RevisionUpstreams] = {}
        # Revisions that left the table with requests still in flight: their counts stay in `stats`
        # until those end, since the platform waits for them before it stops the revision's replicas.
        self._draining: dict[str, RevisionUpstreams] = {}
        # ModelMesh's endpoints merged, for requests at an address (`modelmesh_endpoint.address_endpoint`).
        self._address_models: Mapping[str, str] = {}
        self._shared_models: Mapping[str, list[str]] = {}

    def crashed(self, address: str) -> bool:
        """Whether the replica at `address` died lately (rather than being stopped)."""
        return address in self._table.crashed

    def update(self, table: RouteTable) -> None:
        revisions: dict[str, RevisionUpstreams] = {}
        for route in table.routes.values():
            for backend in route.all_backends():
                state = revisions.get(backend.revision)
                if state is None:
                    state = (
                        self._revisions.get(backend.revision)
                        or self._draining.get(backend.revision)
                        or RevisionUpstreams(backend.revision, self._on_demand, self._default_timeout)
                    )
                    revisions[backend.revision] = state
                state.update(
                    backend.replicas,
                    backend.container_concurrency,
                    backend.timeout_seconds,
                    backend.grpc_replicas,
                )
        for name, state in self._revisions.items():
            if name not in revisions:
                state.retire(f"revision {name} no longer serves any host", rerouted=True)
        draining = {**self._draining, **self._revisions}
        self._draining = {
            name: state for name, state in draining.items() if name not in revisions and state.in_flight
        }
        for route in table.routes.values():
            if route.refusal is not None:  # what waits for its backends is answered now
                for backend in route.backends:
                    revisions[backend.revision].retire(route.refusal)
        self._table = table
        self._address_models, self._shared_models = address_endpoint(table.model_endpoints)
        self._revisions = revisions
        self._splits = {host: _Split(host, route, revisions) for host, route in table.routes.items()}
        self._by_host_header = {}

    def turn_away_waiting(self, reason: str) -> None:
        """The gateway stops: the requests waiting for a revision with no replica, which nothing will
        start now, fail with `reason` (those waiting for a busy replica's slot wait on)."""
        for state in self._revisions.values():
            if not state.replicas:
                state.retire(reason)

    def resolve(self, host_header: bytes, path: bytes, model: bytes | None = None) -> RevisionUpstreams:
        """The revision for this request; raises `Unavailable`: 503 with the reason for the host of a
        service that does not serve (or for any unknown host while the routes are still loading), 404
        for a host nobody serves. At a host that routes by model (ModelMesh's endpoint), the model is
        the one `path` names, else `model` (its `mm-vmodel-id`, or the model a gRPC call names)."""
        split = self._split(host_header)
        if split is None:
            models = self.models_at(host_header)
            if models is None:
                raise self._no_route(host_header)
            split = self._model_split(host_header, models, model_in_path(path) or model)
        return split.pick(path)

    def models_at(self, host_header: bytes) -> Mapping[str, str] | None:
        """The models of a host that routes by model (None: it routes by host): ModelMesh's endpoint of
        a namespace, or an address no route serves while there are ModelMesh models."""
        host = host_without_port(host_header.decode("latin-1"))
        if host in self._splits:
            return None
        models = self._table.model_endpoints.get(host)
        if models is None and self._at_address(host):
            return self._address_models
        return models

    def _at_address(self, host: str) -> bool:
        return (
            bool(self._address_models or self._shared_models)
            and ANY_HOST not in self._splits
            and is_address(host)
        )

    def _model_split(self, host_header: bytes, models: Mapping[str, str], model: bytes | None) -> _Split:
        host = host_without_port(host_header.decode("latin-1"))
        at_address = self._at_address(host) and host not in self._table.model_endpoints
        if not model:
            if at_address:
                raise self._no_route(host_header)
            raise Unavailable(
                400,
                f"name the model at {host}: the {MODEL_ID_HEADER.decode()} header, or the model in the path",
            )
        name = model.decode("latin-1")
        target = models.get(name)
        if target is None and at_address:
            raise self._no_model_at_address(host_header, name)
        if target is None:
            known = ", ".join(sorted(m for m in models if VERSION_SEPARATOR not in m)) or "none"
            raise Unavailable(404, f"no ModelMesh model '{name}' is served at {host}; its models: {known}")
        split = self._splits.get(target)
        if split is None:
            raise self._no_route(target.encode("latin-1"))
        return split

    def watch(
        self,
        method: bytes,
        url: bytes,
        host_header: bytes,
        headers: list[tuple[bytes, bytes]],
        request_id: bytes,
    ) -> ExchangeWatch:
        """What the gateway records of one request: its metrics, and its payload when its route logs."""
        split = self._split(host_header)
        if split is None:
            return self.observer.watch(None, None, method, url, headers, request_id)
        try:
            serving = split.serving(url.partition(b"?")[0])
        except Unavailable:
            serving = split
        return self.observer.watch(split.host, serving.payload_log, method, url, headers, request_id)

    def watch_call(self, authority: bytes, path: bytes, headers: list[tuple[bytes, bytes]]) -> CallWatch:
        """What the gateway records of one gRPC call: its metrics, and its messages when its route logs."""
        split = self._split(authority)
        if split is None:
            return self.observer.watch_call(None, None, path, headers)
        return self.observer.watch_call(split.host, split.payload_log, path, headers)

    def _split(self, host_header: bytes) -> _Split | None:
        split = self._by_host_header.get(host_header, False)
        if split is False:
            host = host_without_port(host_header.decode("latin-1"))
            split = self._splits.get(host) or self._splits.get(ANY_HOST)
            if len(self._by_host_header) >= _HOST_CACHE_LIMIT:
                self._by_host_header = {}
            self._by_host_header[host_header] = split
        return split

    def revision_states(self) -> list[RevisionUpstreams]:
        return list(self._revisions.values())

    def stats(self) -> dict[str, RevisionStats]:
        draining = {name: state.stats() for name, state in self._draining.items() if state.in_flight}
        return {**draining, **{name: state.stats() for name, state in self._revisions.items()}}

    def _no_model_at_address(self, host_header: bytes, name: str) -> Unavailable:
        shared = self._shared_models.get(name)
        if shared is not None:
            return Unavailable(
                404,
                f"ModelMesh models of several namespaces are named '{name}': ask for it at the endpoint "
                f"of its namespace (the Host {' or '.join(shared)})",
            )
        refused = self._no_route(host_header)
        if refused.status != 404:
            return refused
        known = ""
        if self._list_hosts:
            models = sorted(m for m in self._address_models if VERSION_SEPARATOR not in m)
            known = f"; ModelMesh models: {', '.join(models) or 'none'}"
        host = host_header.decode("latin-1")
        return Unavailable(
            404,
            f"no InferenceService or InferenceGraph serves host '{host}', "
            f"and no ModelMesh model is named '{name}'{known}",
        )

    def _no_route(self, host_header: bytes) -> Unavailable:
        host = host_header.decode("latin-1") if host_header else ""
        reason = self._table.unavailable.get(host_without_port(host))
        if reason is not None:
            return Unavailable(503, reason)
        if self._table.starting:
            return Unavailable(503, STARTING)
        known = f"; known hosts: {', '.join(self._table.hosts()) or 'none'}" if self._list_hosts else ""
        if not host:
            return Unavailable(404, f"the request has no Host header{known}")
        return Unavailable(404, f"no InferenceService or InferenceGraph serves host '{host}'{known}")
