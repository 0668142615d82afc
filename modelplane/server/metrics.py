"""Prometheus metrics of the model server: requests and latency per model, per stage, and the sizes
of the batcher's model calls.

The stage histograms keep the names KServe's model server uses, so existing dashboards work. With
several worker processes the metrics are shared through prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`), so a scrape of any worker sees the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

STAGE_HISTOGRAMS = {
    stage: Histogram(
        f"request_{stage}_seconds",
        f"Time spent in the model's {stage} stage",
        ["model_name"],
    )
    for stage in ("preprocess", "predict", "postprocess", "explain")
}

REQUESTS = Counter(
    "modelplane_requests",
    "Inference requests answered, by model, protocol and status code",
    ["model_name", "protocol", "code"],
)

REQUEST_SECONDS = Histogram(
    "modelplane_request_duration_seconds",
    "Time from a request's arrival to its response, by model and protocol",
    ["model_name", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

BATCH_SIZE = Histogram(
    "modelplane_batch_size",
    "Rows (V1 instances, V2 rows) in each model call the batcher made, by model",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)


class ModelMetrics:
    """The labelled children of every metric for one model, looked up once."""

    __slots__ = ("stage_seconds", "_model_name", "_request_seconds", "_requests", "_batch_size")

    def __init__(self, model_name: str):
        self._model_name = model_name
        self.stage_seconds = {stage: h.labels(model_name) for stage, h in STAGE_HISTOGRAMS.items()}
        self._request_seconds: dict[str, Histogram] = {}
        self._requests: dict[tuple[str, int], Counter] = {}
        self._batch_size: Histogram | None = None

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        counter = self._requests.get((protocol, code))
        if counter is None:
            counter = self._requests[(protocol, code)] = REQUESTS.labels(
                self._model_name, protocol, str(code)
            )
        counter.inc()
        histogram = self._request_seconds.get(protocol)
        if histogram is None:
            histogram = self._request_seconds[protocol] = REQUEST_SECONDS.labels(self._model_name, protocol)
        histogram.observe(seconds)

    def observe_batch(self, rows: int) -> None:
        if self._batch_size is None:
            self._batch_size = BATCH_SIZE.labels(self._model_name)
        self._batch_size.observe(rows)

    def observe_wait(self, seconds: float) -> None:
        pass  # a request's wait is inside its modelplane_request_duration_seconds


_by_model: dict[str, ModelMetrics] = {}


def for_model(model_name: str) -> ModelMetrics:
    metrics = _by_model.get(model_name)
    if metrics is None:
        metrics = _by_model[model_name] = ModelMetrics(model_name)
    return metrics


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and the content type to send them with."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
