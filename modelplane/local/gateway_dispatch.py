"""From a request's Host and path to the revision that serves it, splitting traffic by weight."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable

from modelplane.local.gateway_revisions import RevisionState, RevisionStats, Unavailable
from modelplane.local.gateway_routes import Route, RouteTable, host_without_port

_HOST_CACHE_LIMIT = 4096


class _Split:
    """A route compiled for the hot path: cumulative weights over live revision states."""

    __slots__ = ("revisions", "bounds", "total", "explain")

    def __init__(self, route: Route, revisions: dict[str, RevisionState]) -> None:
        weighted = [backend for backend in route.backends if backend.weight > 0] or list(route.backends)
        self.revisions = [revisions[backend.revision] for backend in weighted]
        self.bounds: list[int] = []
        total = 0
        for backend in weighted:
            total += backend.weight or 1
            self.bounds.append(total)
        self.total = total
        self.explain = _Split(route.explain, revisions) if route.explain is not None else None

    def pick(self, path: bytes) -> RevisionState:
        if self.explain is not None and path.endswith(b":explain"):
            return self.explain.pick(path)
        if len(self.revisions) == 1:
            return self.revisions[0]
        return self.revisions[bisect_right(self.bounds, random.random() * self.total)]


class Dispatcher:
    """The live routing table and the state of every revision it names.

    `update` runs on the gateway's loop. The dictionaries are replaced, never mutated, so other
    threads may read `stats` at any time.
    """

    def __init__(self, on_demand: Callable[[str], None] | None = None) -> None:
        self._on_demand = on_demand
        self._table = RouteTable()
        self._splits: dict[str, _Split] = {}
        self._by_host_header: dict[bytes, _Split | None] = {}
        self._revisions: dict[str, RevisionState] = {}

    def update(self, table: RouteTable) -> None:
        revisions: dict[str, RevisionState] = {}
        for route in table.routes.values():
            for backend in route.all_backends():
                state = revisions.get(backend.revision)
                if state is None:
                    state = self._revisions.get(backend.revision) or RevisionState(
                        backend.revision, self._on_demand
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
                state.retire(f"revision {name} no longer serves any host")
        self._table = table
        self._revisions = revisions
        self._splits = {host: _Split(route, revisions) for host, route in table.routes.items()}
        self._by_host_header = {}

    def resolve(self, host_header: bytes, path: bytes) -> RevisionState:
        """The revision for this request; raises `Unavailable` (404) for a host nobody serves."""
        split = self._by_host_header.get(host_header, False)
        if split is False:
            split = self._splits.get(host_without_port(host_header.decode("latin-1")))
            if len(self._by_host_header) >= _HOST_CACHE_LIMIT:
                self._by_host_header = {}
            self._by_host_header[host_header] = split
        if split is None:
            raise Unavailable(404, self._unknown_host_message(host_header))
        return split.pick(path)

    def stats(self) -> dict[str, RevisionStats]:
        return {name: state.stats() for name, state in self._revisions.items()}

    def _unknown_host_message(self, host_header: bytes) -> str:
        hosts = ", ".join(self._table.hosts()) or "none"
        host = host_header.decode("latin-1") if host_header else ""
        if not host:
            return f"the request has no Host header; known hosts: {hosts}"
        return f"no InferenceService or InferenceGraph serves host '{host}'; known hosts: {hosts}"
