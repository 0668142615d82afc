"""Prometheus metrics of the router: count, latency and status per node and per step.

Label children are looked up once per (node, step, status), not per request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The hops the router adds are sub-millisecond; the steps behind them can take seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
CANCELLED = "cancelled"  # the status of an Ensemble step stopped because a Hard step failed


class Observer:
    """Counts and times one node, or one step of a node."""

    def __init__(self, counter: Counter, histogram: Histogram, labels: tuple[str, ...]) -> None:
        self._counter = counter
        self._labels = labels
        self._latency = histogram.labels(*labels)
        self._by_status: dict[str, Counter] = {}

    def observe(self, status: int | str, seconds: float) -> None:
        key = str(status)
        child = self._by_status.get(key)
        if child is None:
            child = self._by_status[key] = self._counter.labels(*self._labels, key)
        child.inc()
        self._latency.observe(seconds)


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._node_requests = Counter(
            "modelplane_graph_node_requests",
            "Requests a graph node handled, by the status it returned.",
            ("node", "status"),
            registry=self.registry,
        )
        self._node_latency = Histogram(
            "modelplane_graph_node_latency_seconds",
            "Time a graph node took, its steps included.",
            ("node",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._step_requests = Counter(
            "modelplane_graph_step_requests",
            "Calls of a step, by the status it returned (500 no answer, 504 timed out, cancelled).",
            ("node", "step", "status"),
            registry=self.registry,
        )
        self._step_latency = Histogram(
            "modelplane_graph_step_latency_seconds",
            "Time a step took, from the router's call to its whole answer.",
            ("node", "step"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def node(self, node: str) -> Observer:
        return Observer(self._node_requests, self._node_latency, (node,))

    def step(self, node: str, step: str) -> Observer:
        return Observer(self._step_requests, self._step_latency, (node, step))

    def render(self) -> bytes:
        return generate_latest(self.registry)
