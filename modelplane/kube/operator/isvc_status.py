"""An InferenceService's status on a cluster: `modelplane.control.status` (the conditions, modelStatus,
canaries and revisions `modelplane up` writes too), with the cluster's URLs and the deployment mode.

Standard mode: `url` is the external host `http://<isvc>-<namespace>.<domain>` (KServe's domain
template), `address` the entry component's Service in the cluster, each component's `url` its own
host. Knative mode: the URLs Knative reports for the entry component's Knative Service (KServe with
`disableIstioVirtualHost`). A cluster-local service's URLs are its external hosts too, as KServe writes
them (`createRawURL`): only its routes are missing.
"""

from __future__ import annotations

from modelplane.api.constants import KNATIVE
from modelplane.control import ServiceState, inference_service_status, stopped_status
from modelplane.control.urls import entry_component
from modelplane.kube.graphs import service_address
from modelplane.kube.meta import component_name, namespace_of
from modelplane.kube.routes import host
from modelplane.kube.settings import KubeSettings

COMPONENTS = ("predictor", "transformer", "explainer")


def cluster_status(
    isvc: dict,
    state: ServiceState,
    mode: str,
    settings: KubeSettings,
    *,
    now: str,
    knative_urls: dict[str, dict] | None = None,
) -> dict:
    """The whole status. `knative_urls` are, per component, the `url` and `address` of its Knative
    Service's status (Knative mode)."""
    previous = isvc.get("status") or {}
    status = inference_service_status(
        isvc, state, domain=settings.ingress_domain, port=80, now=now, previous=previous
    )
    name, namespace = isvc["metadata"]["name"], namespace_of(isvc)
    spec = isvc.get("spec") or {}
    present = [k for k in COMPONENTS if isinstance(spec.get(k), dict)]
    scheme = settings.url_scheme
    if mode == KNATIVE:
        urls = knative_urls or {}
        entry = urls.get(entry_component(present)) or {}
        _set_urls(status, entry.get("url"), (entry.get("address") or {}).get("url"))
        for component, component_status in (status.get("components") or {}).items():
            found = urls.get(component) or {}
            _set_component_urls(component_status, found.get("url"), (found.get("address") or {}).get("url"))
            for target in component_status.get("traffic") or []:
                target.pop("url", None)
                if target.get("tag") and found.get("url"):
                    scheme_part, _, rest = found["url"].partition("://")
                    target["url"] = f"{scheme_part}://{target['tag']}-{rest}"
    else:
        address = service_address(isvc, settings)
        url = f"{scheme}://{host(name, namespace, settings)}"
        _set_urls(status, url if state.routed else None, address if state.routed else None)
        predictor_name = (spec.get("predictor") or {}).get("name")
        for component, component_status in (status.get("components") or {}).items():
            obj = component_name(name, component, predictor_name if component == "predictor" else None)
            in_cluster = f"{scheme}://{obj}.{namespace}.svc.{settings.cluster_domain}"
            if "url" in component_status:
                _set_component_urls(
                    component_status, f"{scheme}://{host(obj, namespace, settings)}", in_cluster
                )
    status["deploymentMode"] = mode
    return status


def stopped(isvc: dict, mode: str, *, now: str) -> dict:
    status = stopped_status(isvc, now=now, previous=isvc.get("status") or {})
    status["deploymentMode"] = mode
    return status


def _set_urls(status: dict, url: str | None, address: str | None) -> None:
    status.pop("url", None)
    status.pop("address", None)
    if url:
        status["url"] = url
    if address:
        status["address"] = {"url": address}


def _set_component_urls(component_status: dict, url: str | None, address: str | None) -> None:
    for key in ("url", "address", "grpcUrl"):
        component_status.pop(key, None)
    if url:
        component_status["url"] = url
    if address:
        component_status["address"] = {"url": address}
