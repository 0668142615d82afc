"""Payload logging of an InferenceService: what each component's `logger` asks of the gateway.

KServe's controller hands a component's `logger` to its agent sidecar; here the gateway, which every
request to a component passes through, logs them. `payload_log_specs` gives, per component with a
logger, the `PayloadLogSpec` its routes carry: the sink URL (the platform's default when the spec has
none), the mode, the headers to copy into `metadata`, and the annotations `metadataAnnotations` names,
with their values (from the service's annotations and the component's own, the component's winning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from modelplane.api.errors import FieldError
from modelplane.control.revision_templates import COMPONENTS
from modelplane.telemetry.payload_events import PayloadLogSpec
from modelplane.telemetry.payload_sinks import sink_problem

# KServe's blob-storage logging (`storage`, with a marshaller and batches): not written by the gateway.
BLOB_STORAGE_FIELDS = ("storage", "marshallerUrl", "batchSize", "batchInterval")


def payload_log_specs(isvc: dict, default_url: Callable[[str], str]) -> dict[str, PayloadLogSpec]:
    """Component -> its payload logging, for the components that have a `logger`.
    `default_url(component)` is where a logger without `url` sends its events."""
    spec = isvc.get("spec") or {}
    metadata = isvc.get("metadata") or {}
    found = {}
    for component in COMPONENTS:
        component_spec = spec.get(component)
        logger = component_spec.get("logger") if isinstance(component_spec, dict) else None
        if not isinstance(logger, dict):
            continue
        annotations = {**(metadata.get("annotations") or {}), **(component_spec.get("annotations") or {})}
        wanted = [str(key) for key in logger.get("metadataAnnotations") or []]
        found[component] = PayloadLogSpec(
            url=logger.get("url") or default_url(component),
            mode=logger.get("mode") or "all",
            inference_service=metadata["name"],
            namespace=metadata.get("namespace") or "default",
            component=component,
            metadata_headers=tuple(str(name) for name in logger.get("metadataHeaders") or []),
            annotations=tuple((key, str(annotations[key])) for key in wanted if key in annotations),
        )
    return found


def logger_url_errors(isvc: dict) -> Iterator[FieldError]:
    """A logger `url` the gateway cannot send to (it sends to http://, https:// and file:// URLs)."""
    spec = isvc.get("spec") or {}
    for component in COMPONENTS:
        component_spec = spec.get(component)
        logger = component_spec.get("logger") if isinstance(component_spec, dict) else None
        if isinstance(logger, dict) and logger.get("url"):
            problem = sink_problem(str(logger["url"]))
            if problem is not None:
                yield FieldError(f"spec.{component}.logger.url", problem)
