"""The payload logger's metrics, by sink: events sent, dropped (by reason), retried, and queued. The
gateway serves them among its own; `modelplane serve`, logging for itself, on its `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelplane.telemetry.payload_delivery import DROP_REASONS, PayloadDelivery, SinkStats


class DeliveryCollector(Collector):
    """A prometheus_client collector of one PayloadDelivery's sinks, read when scraped."""

    def __init__(self, delivery: PayloadDelivery) -> None:
        self._delivery = delivery

    def collect(self) -> Iterator[Metric]:
        yield from payload_log_families(self._delivery.stats())


def payload_log_families(sinks: list[SinkStats]) -> Iterator[Metric]:
    sent = CounterMetricFamily(
        "modelplane_payload_log_events_sent", "Payload events a sink took, by sink", labels=["sink"]
    )
    dropped = CounterMetricFamily(
        "modelplane_payload_log_events_dropped",
        "Payload events not delivered, by sink and reason (queue_full, undeliverable, refused, shutdown)",
        labels=["sink", "reason"],
    )
    retries = CounterMetricFamily(
        "modelplane_payload_log_retries", "Payload events sent again after a failure", labels=["sink"]
    )
    queued = GaugeMetricFamily(
        "modelplane_payload_log_events_queued", "Payload events waiting for their sink", labels=["sink"]
    )
    for stats in sinks:
        sent.add_metric([stats.sink], stats.sent)
        retries.add_metric([stats.sink], stats.retries)
        queued.add_metric([stats.sink], stats.queued)
        counts = {reason: 0 for reason in DROP_REASONS} | dict(stats.dropped)
        for reason, count in counts.items():
            dropped.add_metric([stats.sink, reason], count)
    yield from (sent, dropped, retries, queued)
