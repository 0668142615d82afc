"""The platform's /metrics: the replicas' pages merged, each labelled with its replica."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from modelplane.local.ports import free_loopback_port
from modelplane.telemetry.metrics_exposition import PlatformMetrics, ScrapeTarget

# What a batcher sidecar serves (`serve_with_component`): its own metrics, the program's, and whether it
# could read the program's.
SIDECAR_PAGES = {
    "/answered": "# TYPE modelplane_scrape_up gauge\nmodelplane_scrape_up 1.0\n# TYPE program_up gauge\n"
    "program_up 1.0\n",
    "/program-gone": "# TYPE modelplane_scrape_up gauge\nmodelplane_scrape_up 0.0\n"
    "# TYPE modelplane_batcher_requests counter\nmodelplane_batcher_requests_total 2.0\n",
}


@pytest.fixture
def pages() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = SIDECAR_PAGES[self.path].encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_sidecars_own_scrape_up_is_part_of_its_replicas_one(pages):
    targets = [
        ScrapeTarget(f"{pages}/answered", (("replica", "0"),)),
        ScrapeTarget(f"{pages}/program-gone", (("replica", "1"),)),
        ScrapeTarget(f"http://127.0.0.1:{free_loopback_port()}/metrics", (("replica", "2"),)),
    ]

    async def scrape() -> bytes:
        metrics = PlatformMetrics(CollectorRegistry(), lambda: targets)
        try:
            text, _ = await metrics.exposition()
        finally:
            await metrics.close()
        return text

    samples = [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(asyncio.run(scrape()).decode())
        for sample in family.samples
    ]
    # One series per replica (the sidecar's, labelled as the replica, would be the same one again):
    # up where the sidecar answered and could read its program's metrics.
    assert [sample for sample in samples if sample[0] == "modelplane_scrape_up"] == [
        ("modelplane_scrape_up", {"replica": "0"}, 1.0),
        ("modelplane_scrape_up", {"replica": "1"}, 0.0),
        ("modelplane_scrape_up", {"replica": "2"}, 0.0),
    ]
    assert ("program_up", {"replica": "0"}, 1.0) in samples
    assert ("modelplane_batcher_requests_total", {"replica": "1"}, 2.0) in samples
