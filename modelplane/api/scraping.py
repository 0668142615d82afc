"""KServe's `serving.kserve.io/enable-prometheus-scraping: "true"`: a resource whose pods (or, on
`modelplane up`, replicas) ask to have their metrics scraped, and where: the path of the
`prometheus.kserve.io/path` annotation (a runtime's, or the resource's own), `/metrics` by default."""

from __future__ import annotations

from collections.abc import Mapping

SCRAPE_ANNOTATION = "serving.kserve.io/enable-prometheus-scraping"
PORT_ANNOTATION = "prometheus.kserve.io/port"
PATH_ANNOTATION = "prometheus.kserve.io/path"
DEFAULT_PATH = "/metrics"
# What a component's annotations (or its runtime's) say about scraping it, wherever KServe takes them from.
SCRAPE_ANNOTATIONS = (SCRAPE_ANNOTATION, PATH_ANNOTATION, PORT_ANNOTATION)


def scrape_path(annotations: Mapping | None) -> str | None:
    """The metrics path of a resource whose replicas ask to be scraped; None when they do not."""
    annotations = annotations or {}
    if str(annotations.get(SCRAPE_ANNOTATION, "")).lower() != "true":
        return None
    path = str(annotations.get(PATH_ANNOTATION) or DEFAULT_PATH)
    return path if path.startswith("/") else "/" + path
