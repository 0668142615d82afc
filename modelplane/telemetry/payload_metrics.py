"""The payload logger's metrics, by sink: events sent, dropped (by reason), retried, and queued. The
gateway serves them among its own; `modelplane serve`, logging for itself, on its `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelplane.telemetry.payload_delivery import DROP_REASONS, PayloadDelivery, SinkStats

SENT = ("modelplane_payload_log_events_sent", "Payload events a sink took, by sink")
DROPPED = (
    "modelplane_payload_log_events_dropped",
    "Payload events not delivered, by sink and reason (queue_full, undeliverable, refused, shutdown)",
)
RETRIES = ("modelplane_payload_log_retries", "Payload events sent again after a failure")
QUEUED = ("modelplane_payload_log_events_queued", "Payload events waiting for their sink")


class DeliveryCollector(Collector):
    """A prometheus_client collector of one PayloadDelivery's sinks, read when scraped."""

    def __init__(self, delivery: PayloadDelivery) -> None:
        self._delivery = delivery

    def collect(self) -> Iterator[Metric]:
        yield from payload_log_families(self._delivery.stats())


def payload_log_families(sinks: list[SinkStats]) -> Iterator[Metric]:
    sent = CounterMetricFamily(*SENT, labels=["sink"])
    dropped = CounterMetricFamily(*DROPPED, labels=["sink", "reason"])
    retries = CounterMetricFamily(*RETRIES, labels=["sink"])
    queued = GaugeMetricFamily(*QUEUED, labels=["sink"])
    for stats in sinks:
        sent.add_metric([stats.sink], stats.sent)
        retries.add_metric([stats.sink], stats.retries)
        queued.add_metric([stats.sink], stats.queued)
        for reason, count in _drops(stats).items():
            dropped.add_metric([stats.sink, reason], count)
    yield from (sent, dropped, retries, queued)


class SharedDeliveryMetrics:
    """One worker's delivery counts in prometheus_client's multiprocess files, which a scrape of any
    worker of `modelplane serve --workers N` sums. The counts live where the events were delivered, so
    each worker adds what changed since its last `publish` (made every second, and when it stops);
    a worker that exits keeps its counters' share, and its queue stops counting once the parent marks
    it dead."""

    def __init__(self, delivery: PayloadDelivery) -> None:
        self._delivery = delivery
        # No registry: the multiprocess collector reads the files these write.
        self._sent = Counter(*SENT, ["sink"], registry=None)
        self._dropped = Counter(*DROPPED, ["sink", "reason"], registry=None)
        self._retries = Counter(*RETRIES, ["sink"], registry=None)
        self._queued = Gauge(*QUEUED, ["sink"], registry=None, multiprocess_mode="livesum")
        self._published: dict[tuple, int] = {}

    def publish(self) -> None:
        for stats in self._delivery.stats():
            self._add(self._sent, (stats.sink,), stats.sent)
            self._add(self._retries, (stats.sink,), stats.retries)
            for reason, count in _drops(stats).items():
                self._add(self._dropped, (stats.sink, reason), count)
            self._queued.labels(stats.sink).set(stats.queued)

    def _add(self, counter: Counter, labels: tuple[str, ...], total: int) -> None:
        key = (counter, *labels)
        counter.labels(*labels).inc(total - self._published.get(key, 0))
        self._published[key] = total


def _drops(stats: SinkStats) -> dict[str, int]:
    """Every reason, those without a drop at 0."""
    return {reason: 0 for reason in DROP_REASONS} | dict(stats.dropped)
