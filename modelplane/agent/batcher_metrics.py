"""`modelplane batcher`'s own metrics: the V1 predict requests it batched, the model calls it made of
them (their count and sizes), the requests waiting for their batch now, how long they waited, and the
requests that failed on the upstream server's side.

Counting is dictionary arithmetic on the proxy's loop, as the gateway counts (local/gateway/metrics.py);
a scrape turns the numbers into metric families (`collect`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# Instances per model call, as the model server's own batcher counts them (server/metrics.py).
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Model names counted under their own label; past these, new names count as `OTHER_MODELS` (a client that
# makes up model names does not grow the metrics).
KEPT_MODEL_NAMES = 64
OTHER_MODELS = "other"
# Seconds a request waits for its batch: up to `max_latency`, KServe's default 5 s, and past it.
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        buckets, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((floatToGoString(bound), running))
        return buckets


class ModelCounts:
    """One model's numbers; what `ModelBatcher` reports a model call and a request's wait to."""

    __slots__ = ("requests", "batches", "sizes", "waits")

    def __init__(self) -> None:
        self.requests = 0
        self.batches = 0
        self.sizes = _Histogram(SIZE_BUCKETS)
        self.waits = _Histogram(WAIT_BUCKETS)

    def observe_batch(self, rows: int) -> None:
        self.batches += 1
        self.sizes.observe(rows)

    def observe_wait(self, seconds: float) -> None:
        self.waits.observe(seconds)


class BatcherMetrics:
    """The proxy's counters, by model name (the one its predict path names), and its upstream errors by
    reason; `waiting()` gives the requests waiting now, by model name, when scraped."""

    def __init__(self, waiting: Callable[[], dict[str, int]]) -> None:
        self._models: dict[str, ModelCounts] = {}
        self._upstream_errors: dict[str, int] = {}
        self._waiting = waiting

    def for_model(self, name: str) -> ModelCounts:
        counts = self._models.get(name)
        if counts is None:
            if len(self._models) >= KEPT_MODEL_NAMES:
                name = OTHER_MODELS
            counts = self._models.get(name) or self._models.setdefault(name, ModelCounts())
        return counts

    def upstream_error(self, reason: str) -> None:
        self._upstream_errors[reason] = self._upstream_errors.get(reason, 0) + 1

    def collect(self) -> Iterator[Metric]:
        models = list(self._models.items())
        requests = CounterMetricFamily(
            "modelplane_batcher_requests",
            "V1 predict requests the batcher took, by model",
            labels=["model_name"],
        )
        batches = CounterMetricFamily(
            "modelplane_batcher_batches",
            "Predict requests the batcher sent the upstream server (a batch, or a request alone), by model",
            labels=["model_name"],
        )
        sizes = HistogramMetricFamily(
            "modelplane_batcher_batch_size",
            "Instances in each predict request the batcher sent the upstream server, by model",
            labels=["model_name"],
        )
        waits = HistogramMetricFamily(
            "modelplane_batcher_wait_seconds",
            "Time from a request's arrival to the start of its batch, by model",
            labels=["model_name"],
        )
        for name, counts in models:
            requests.add_metric([name], counts.requests)
            batches.add_metric([name], counts.batches)
            sizes.add_metric([name], counts.sizes.buckets(), counts.sizes.total)
            waits.add_metric([name], counts.waits.buckets(), counts.waits.total)
        waiting = GaugeMetricFamily(
            "modelplane_batcher_requests_waiting",
            "Requests waiting for their batch to start now, by model",
            labels=["model_name"],
        )
        waiting_now = dict.fromkeys(self._models, 0)
        for name, count in self._waiting().items():
            label = name if name in self._models else OTHER_MODELS
            waiting_now[label] = waiting_now.get(label, 0) + count
        for name, count in waiting_now.items():
            waiting.add_metric([name], count)
        errors = CounterMetricFamily(
            "modelplane_batcher_upstream_errors",
            "Requests answered with an error because of the upstream server, by reason (connect: it could "
            "not be reached; closed: it closed the connection before its answer was whole; timeout: its "
            "answer took longer than --timeout)",
            labels=["reason"],
        )
        for reason, count in list(self._upstream_errors.items()):
            errors.add_metric([reason], count)
        yield from (requests, batches, sizes, waits, waiting, errors)
