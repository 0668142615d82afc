"""The platform's `/metrics`: the control plane's and the gateway's metrics, and those of the replicas
whose service asks to be scraped, in one Prometheus exposition.

KServe's `serving.kserve.io/enable-prometheus-scraping: "true"` annotation marks an InferenceService's
pods for Prometheus to scrape. `modelplane up` has no pods to annotate, so it scrapes the replicas of
such a service (and of such an InferenceGraph) itself when `/metrics` is asked for: each ready
replica's `/metrics` (or the path of `prometheus.kserve.io/path`), its samples labelled with
`namespace`, `inferenceservice` (or `inferencegraph`), `component`, `revision` and `replica` (a label
the replica already has is kept as `exported_<label>`, as Prometheus keeps it), and
`modelplane_scrape_up` says which replicas answered (with all their metrics: a replica scraped
through its batcher sidecar's page answered when the sidecar could read its program's too).

The sidecars in front of a model server in a pod (`modelplane logger`, `modelplane batcher`) serve the
same kind of page on a port of their own (`serve_with_component`): theirs and the model server's, as
KServe's queue-proxy aggregates its own and the model's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from modelplane.protocol import http_server
from modelplane.protocol.http_server import HttpRequest, HttpResponse, ServerLimits, Shutdown

SCRAPE_TIMEOUT = 5.0
SCRAPE_UP = "modelplane_scrape_up"


@dataclass(frozen=True)
class ScrapeTarget:
    url: str
    labels: tuple[tuple[str, str], ...]


class PlatformMetrics:
    """`exposition()` gives the text `/metrics` serves: `registry`'s families (the control plane's and
    the gateway's) and the replicas' that `targets()` names, scraped at that moment."""

    def __init__(self, registry: CollectorRegistry, targets: Callable[[], list[ScrapeTarget]]) -> None:
        self._registry = registry
        self._targets = targets
        self._client: httpx.AsyncClient | None = None

    async def exposition(self) -> tuple[bytes, str]:
        targets = self._targets()
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SCRAPE_TIMEOUT)
        scraped = await asyncio.gather(*(self._scrape(target) for target in targets))
        merged = _Merged()
        merged.add(_families(generate_latest(self._registry).decode()), ())
        up = Metric(SCRAPE_UP, "Whether a replica's metrics could be scraped (1) or not (0)", "gauge")
        for target, text in zip(targets, scraped, strict=True):
            families = None
            if text is not None:
                try:
                    families = _families(text)
                except ValueError:  # not the Prometheus text format
                    families = None
            answered = families is not None
            if answered:
                # A sidecar's page says whether it could read its component's metrics: that is part
                # of the target's one `modelplane_scrape_up` (the same labels twice would be one
                # series with two values).
                nested = [
                    sample.value
                    for family in families
                    if family.name == SCRAPE_UP
                    for sample in family.samples
                ]
                answered = all(value == 1 for value in nested)
                merged.add([family for family in families if family.name != SCRAPE_UP], target.labels)
            up.samples.append(Sample(SCRAPE_UP, dict(target.labels), 1 if answered else 0))
        if targets:
            merged.add([up], ())
        registry = CollectorRegistry(auto_describe=False)
        registry.register(merged)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _scrape(self, target: ScrapeTarget) -> str | None:
        try:
            response = await self._client.get(target.url)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None


def _families(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


class _Merged:
    """Families merged by name (each family once in the exposition, whoever sent it), as a collector."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, families: Iterable[Metric], labels: tuple[tuple[str, str], ...]) -> None:
        for family in families:
            known = self._families.get(family.name)
            if known is None:
                known = self._families[family.name] = Metric(family.name, family.documentation, family.type)
            known.samples += [_labelled(sample, labels) for sample in family.samples]

    def collect(self) -> Iterator[Metric]:
        yield from self._families.values()


def _labelled(sample: Sample, labels: tuple[tuple[str, str], ...]) -> Sample:
    if not labels:
        return sample
    own = dict(sample.labels)
    for name, _ in labels:
        if name in own:
            own[f"exported_{name}"] = own.pop(name)
    return sample._replace(labels={**dict(labels), **own})


async def serve_with_component(
    collector, path: str, component_url: str, sock: socket.socket, shutdown: Shutdown
) -> None:
    """Serves `collector`'s metrics with those read from `component_url` when scraped, at `path` on
    `sock`, until `shutdown`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    exposition = PlatformMetrics(registry, lambda: [ScrapeTarget(component_url, ())])
    wanted = path.encode()

    async def answer(request: HttpRequest) -> HttpResponse:
        if request.path.partition(b"?")[0] != wanted:
            return HttpResponse(404, b"the metrics are at %s\n" % wanted, b"text/plain")
        if request.method not in (b"GET", b"HEAD"):
            return HttpResponse(405, b"GET the metrics\n", b"text/plain", [(b"allow", b"GET, HEAD")])
        text, content_type = await exposition.exposition()
        return HttpResponse(200, text, content_type.encode())

    limits = ServerLimits(read_timeout=30.0, idle_timeout=60.0, max_body_size=64 * 1024)
    try:
        await http_server.serve(answer, sock, limits, shutdown)
    finally:
        await exposition.close()
