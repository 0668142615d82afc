"""Which components of an InferenceService `modelplane up` scrapes, and at which path: KServe's
`serving.kserve.io/enable-prometheus-scraping` and `prometheus.kserve.io/path` as the component's pods
get them, its runtime's (a predictor's `spec.annotations`) under the service's, under the component's
own. The runtime's path is used where the service does not set its own, as on Kubernetes.

A replica is scraped at its HTTP port, the one the platform gives it: a `prometheus.kserve.io/port`
that names another port of its program's is not acted on, and said so."""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.api import paths
from modelplane.api.scraping import PORT_ANNOTATION, scrape_path
from modelplane.control.revision_templates import COMPONENTS, component_annotations


def component_scrape_paths(isvc: dict, runtime_annotations: Mapping | None = None) -> dict[str, str]:
    """The metrics path of each component that asks to be scraped; `runtime_annotations`: those of the
    predictor's runtime."""
    spec, metadata = isvc.get("spec") or {}, isvc.get("metadata") or {}
    found = {}
    for component in COMPONENTS:
        component_spec = spec.get(component)
        if not isinstance(component_spec, dict):
            continue
        runtime = dict(runtime_annotations or {}) if component == "predictor" else None
        path = scrape_path(component_annotations(metadata, component_spec, runtime))
        if path is not None:
            found[component] = path
    return found


def unscraped_ports(
    isvc: dict,
    templates: Mapping[str, dict],
    runtime: Mapping[str, str] | None = None,
    runtime_annotations: Mapping | None = None,
) -> tuple[str, ...]:
    """Where a scraped component's `prometheus.kserve.io/port` names a port other than its program's
    HTTP port (the template's), and why that port is not scraped: "path (why)", as the status says
    fields it does not act on. `runtime` is the predictor's runtime (kind and name)."""
    spec, metadata = isvc.get("spec") or {}, isvc.get("metadata") or {}
    scraped = component_scrape_paths(isvc, runtime_annotations if runtime else None)
    found = []
    for component, template in templates.items():
        if component not in scraped:
            continue
        own = (spec.get(component) or {}).get("annotations")
        places = [  # the one that wins first
            (
                own if isinstance(own, dict) else {},
                paths.join(["spec", component, "annotations", PORT_ANNOTATION]),
            ),
            (metadata.get("annotations") or {}, paths.join(["metadata", "annotations", PORT_ANNOTATION])),
        ]
        if component == "predictor" and runtime:
            where = paths.join(["spec", "annotations", PORT_ANNOTATION])
            places.append((runtime_annotations or {}, f"{runtime['kind']} {runtime['name']}: {where}"))
        port, where = next(
            (
                (str(a[PORT_ANNOTATION]).strip(), w)
                for a, w in places
                if a.get(PORT_ANNOTATION) not in (None, "")
            ),
            (None, ""),
        )
        http = template["ports"]["http"]
        if port is not None and port != str(http):
            found.append(
                f"{where} (the {component}'s replicas are scraped at their HTTP port, the container's "
                f"{http}: on one machine a replica's program has no other port of its own to scrape)"
            )
    return tuple(found)
