"""The gateway's metrics: requests and their latency per host and revision, what each revision holds
(in flight, queued, replicas), the activator's waits, upstream errors, and payload logging.

Counting is plain dictionary arithmetic on the gateway's loop, which costs a request far less than a
prometheus_client child would; a scrape reads the numbers from another thread and turns them into
metric families (`collect`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from modelplane.local.gateway.revisions import RevisionUpstreams
from modelplane.telemetry.payload_delivery import SinkStats
from modelplane.telemetry.payload_metrics import payload_log_families

# Seconds, from a millisecond hop to a five-minute generation.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
UNKNOWN_HOST = "unknown"  # requests for hosts nobody serves, under one label however many they name
CLIENT_CLOSED = 499  # the code of a request whose client left before its answer (nginx's)

REPLICAS_GAUGE = "modelplane_gateway_replicas"


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class GatewayMetrics:
    """Counters the gateway's loop updates and a scrape reads."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._upstream_errors: dict[tuple[str, str], int] = {}
        self._calls: dict[tuple[str, str, int], int] = {}

    def observe(self, host: str, revision: str, code: int, seconds: float) -> None:
        key = (host, revision, code)
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.get((host, revision))
        if histogram is None:
            histogram = self._latency[(host, revision)] = _Histogram()
        histogram.observe(seconds)

    def observe_call(self, host: str, revision: str, grpc_code: int, seconds: float) -> None:
        """A gRPC call: counted by its gRPC status, timed in the same histogram as REST requests."""
        key = (host, revision, grpc_code)
        self._calls[key] = self._calls.get(key, 0) + 1
        histogram = self._latency.get((host, revision))
        if histogram is None:
            histogram = self._latency[(host, revision)] = _Histogram()
        histogram.observe(seconds)

    def upstream_error(self, revision: str, reason: str) -> None:
        key = (revision, reason)
        self._upstream_errors[key] = self._upstream_errors.get(key, 0) + 1

    def collect(
        self, revisions: Callable[[], Iterable[RevisionUpstreams]], sinks: Callable[[], Iterable[SinkStats]]
    ) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "modelplane_gateway_requests",
            "Requests the gateway answered, by host, revision and status code (499: the client left)",
            labels=["host", "revision", "code"],
        )
        for (host, revision, code), count in list(self._requests.items()):
            requests.add_metric([host, revision, str(code)], count)
        yield requests
        calls = CounterMetricFamily(
            "modelplane_gateway_grpc_calls",
            "gRPC calls the gateway relayed or answered, by host, revision and gRPC status code",
            labels=["host", "revision", "grpc_code"],
        )
        for (host, revision, code), count in list(self._calls.items()):
            calls.add_metric([host, revision, str(code)], count)
        yield calls
        latency = HistogramMetricFamily(
            "modelplane_gateway_request_duration_seconds",
            "Time from a request's head (REST or gRPC) to the end of its answer at the gateway, by host "
            "and revision",
            labels=["host", "revision"],
        )
        for (host, revision), histogram in list(self._latency.items()):
            latency.add_metric([host, revision], _buckets(histogram.counts), histogram.total)
        yield latency
        errors = CounterMetricFamily(
            "modelplane_gateway_upstream_errors",
            "Failures between the gateway and a revision's replicas, by revision and reason "
            "(connect: refused; closed: closed or reset before the answer was complete; timeout: no "
            "response headers in time)",
            labels=["revision", "reason"],
        )
        for (revision, reason), count in list(self._upstream_errors.items()):
            errors.add_metric([revision, reason], count)
        for state in revisions():
            if state.connect_refusals:
                errors.add_metric([state.revision, "connect"], state.connect_refusals)
        yield errors
        yield from _revision_families(list(revisions()))
        yield from payload_log_families(list(sinks()))


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    buckets, running = [], 0
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
        running += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return buckets


def _revision_families(revisions: list[RevisionUpstreams]) -> Iterator[Metric]:
    gauges = (
        ("modelplane_gateway_requests_in_flight", "Requests at a revision's replicas now", "in_flight"),
        (
            "modelplane_gateway_requests_queued",
            "Requests waiting in the gateway for a replica slot",
            "queued",
        ),
        (REPLICAS_GAUGE, "Ready replicas the gateway routes to, by revision", "replica_count"),
    )
    for name, documentation, attribute in gauges:
        family = GaugeMetricFamily(name, documentation, labels=["revision"])
        for state in revisions:
            family.add_metric([state.revision], getattr(state, attribute))
        yield family
    counters = (
        (
            "modelplane_gateway_activator_waits",
            "Requests that waited in the gateway for a replica slot (scale from zero, a full revision)",
            "waits",
        ),
        (
            "modelplane_gateway_activator_timeouts",
            "Requests that waited the whole queue timeout and were answered 503",
            "wait_timeouts",
        ),
        (
            "modelplane_gateway_activator_overflows",
            "Requests refused with 503 because the revision's queue was full",
            "overflows",
        ),
    )
    for name, documentation, attribute in counters:
        family = CounterMetricFamily(name, documentation, labels=["revision"])
        for state in revisions:
            family.add_metric([state.revision], getattr(state, attribute))
        yield family
