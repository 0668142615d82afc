"""Payload logging of an InferenceService: what each component's `logger` asks of the gateway.

KServe's controller hands a component's `logger` to its agent sidecar; here the gateway, which every
request to a component passes through, logs them. `payload_log_specs` gives, per component with a
logger, the `PayloadLogSpec` its routes carry: the sink URL (the platform's default when the spec has
none), the mode, the headers to copy into `metadata`, and the annotations `metadataAnnotations` names,
with their values (from the service's annotations and the component's own, the component's winning).
A `url` that is a bucket (s3://, gs://, abfs://) also takes KServe's blob-storage fields: `storage`
(its `key`'s storage config for the credentials, `path`, `parameters.format`), `marshallerUrl`,
`batchSize` and `batchInterval` (telemetry/payload_blob.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from modelplane.api.errors import FieldError
from modelplane.control.autoscaling_settings import parse_duration
from modelplane.control.revision_templates import COMPONENTS
from modelplane.protocol.http_client import parse_target
from modelplane.telemetry.payload_blob import FORMATS, BlobLogTarget, format_unavailable, is_blob_url
from modelplane.telemetry.payload_events import PayloadLogSpec
from modelplane.telemetry.payload_sinks import sink_problem

# KServe's blob-storage logging: acted on when the logger's url is a bucket.
BLOB_STORAGE_FIELDS = ("storage", "marshallerUrl", "batchSize", "batchInterval")
FORMAT_PARAMETER = "format"
# (namespace, storage key) -> that key's storage config (endpoint, credentials).
StorageConfigOf = Callable[[str, str], Mapping[str, str]]


def payload_log_specs(
    isvc: dict, default_url: Callable[[str], str], storage_config: StorageConfigOf | None = None
) -> dict[str, PayloadLogSpec]:
    """Component -> its payload logging, for the components that have a `logger`.
    `default_url(component)` is where a logger without `url` sends its events; `storage_config` reads
    the storage config a bucket logger's `storage.key` names (it raises for one that is missing)."""
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
        url = logger.get("url") or default_url(component)
        namespace = metadata.get("namespace") or "default"
        found[component] = PayloadLogSpec(
            url=url,
            mode=logger.get("mode") or "all",
            inference_service=metadata["name"],
            namespace=namespace,
            component=component,
            metadata_headers=tuple(str(name) for name in logger.get("metadataHeaders") or []),
            annotations=tuple((key, str(annotations[key])) for key in wanted if key in annotations),
            blob=_blob_target(logger, namespace, storage_config) if is_blob_url(url) else None,
        )
    return found


def _blob_target(logger: dict, namespace: str, storage_config: StorageConfigOf | None) -> BlobLogTarget:
    storage = logger.get("storage") if isinstance(logger.get("storage"), dict) else {}
    parameters = {str(name): str(value) for name, value in (storage.get("parameters") or {}).items()}
    format = parameters.pop(FORMAT_PARAMETER, "json")
    config: dict[str, str] = {}
    if storage.get("key") and storage_config is not None:
        config.update(storage_config(namespace, str(storage["key"])))
    config.update(parameters)
    return BlobLogTarget(
        path=str(storage.get("path") or ""),
        format=format,
        batch_size=max(1, int(logger.get("batchSize") or 1)),
        batch_interval=parse_duration(str(logger.get("batchInterval") or "0")) or 0.0,
        marshaller_url=logger.get("marshallerUrl") or None,
        config=tuple(sorted(config.items())),
    )


def blob_fields_unused(logger: dict) -> list[str]:
    """The blob-storage fields a logger sets whose `url` is not a bucket (they then do nothing)."""
    if is_blob_url(str(logger.get("url") or "")):
        return []
    return [name for name in BLOB_STORAGE_FIELDS if logger.get(name) not in (None, "", 0)]


def logger_url_errors(isvc: dict) -> Iterator[FieldError]:
    """A logger `url` the gateway cannot send to (http://, https://, file://, or a bucket), and blob
    fields it cannot act on."""
    spec = isvc.get("spec") or {}
    for component in COMPONENTS:
        component_spec = spec.get(component)
        logger = component_spec.get("logger") if isinstance(component_spec, dict) else None
        if not isinstance(logger, dict):
            continue
        here = f"spec.{component}.logger"
        if logger.get("url"):
            problem = sink_problem(str(logger["url"]))
            if problem is not None:
                yield FieldError(f"{here}.url", problem)
        yield from _blob_field_errors(logger, here)


def _blob_field_errors(logger: dict, here: str) -> Iterator[FieldError]:
    storage = logger.get("storage")
    parameters = (storage.get("parameters") or {}) if isinstance(storage, dict) else {}
    format = parameters.get(FORMAT_PARAMETER) if isinstance(parameters, dict) else None
    where = f"{here}.storage.parameters.{FORMAT_PARAMETER}"
    if format is not None and format not in FORMATS:
        yield FieldError(
            where,
            f"{format!r}: payload logs are written as {', '.join(FORMATS)} (a marshallerUrl writes any other)",
        )
    elif format is not None and (missing := format_unavailable(format, logger.get("marshallerUrl"))):
        yield FieldError(where, missing)
    size = logger.get("batchSize")
    if size is not None and (not isinstance(size, int) or size < 0):
        yield FieldError(f"{here}.batchSize", "must be a whole number of records, 0 or more")
    interval = logger.get("batchInterval")
    if interval and parse_duration(str(interval)) is None:
        yield FieldError(f"{here}.batchInterval", f"{interval!r} is not a duration (100ms, 5s, 1m)")
    marshaller = logger.get("marshallerUrl")
    if marshaller:
        try:
            parse_target(str(marshaller))
        except ValueError as exc:
            yield FieldError(f"{here}.marshallerUrl", f"{exc}: a marshaller is an http:// or https:// URL")
