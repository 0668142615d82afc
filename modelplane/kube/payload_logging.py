"""A component's `logger` on Kubernetes.

A container that runs `modelplane serve` (the built-in runtimes, or a custom container that runs it)
logs its payloads itself: it gets the `--payload-log-*` flags (server/payload_logging.py): the sink
(KServe's default, `http://default-broker`, when the logger has no `url`), the mode, the names its
events carry, the headers and annotations they copy, and for a bucket its path, format, marshaller and
batches, with the storage config its `storage.key` names as `STORAGE_CONFIG` (from the storage-config
Secret, as the storage initializer gets it) and `storage.parameters` as `STORAGE_OVERRIDE_CONFIG`.

Another container (KServe's runtime images, a custom image) gets what KServe's agent sidecar is for
it: a `logger` container, `modelplane logger` with the same flags, on KServe's agent port, in front of
the model server's port (or a `batcher` container's: batcher.py). In Standard mode the component's Service
sends its requests there; a Knative pod serves the logger's port alone (front_sidecar.py).
"""

from __future__ import annotations

import json

from modelplane.api.constants import AGENT_PORT
from modelplane.control.payload_logging import FORMAT_PARAMETER, payload_log_specs
from modelplane.kube.settings import KubeSettings
from modelplane.kube.storage_initializer import SECRET_NAME_ANNOTATION

DEFAULT_URL = "http://default-broker"  # KServe's default logger url (its inferenceservice-config)
LOGGER_CONTAINER = "logger"
# Where KServe's queue-proxy serves its metrics aggregated with the model's; the front sidecar's here.
LOGGER_METRICS_PORT = 9088
# KServe's agent sidecar's default resources (its inferenceservice-config).
LOGGER_RESOURCES = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def logger_args(isvc: dict, component: str, spec: dict) -> list[str]:
    """`modelplane serve`'s flags for the component's `logger` (spec: the component's, a canary's too)."""
    resource = {**isvc, "spec": {component: spec}}
    log = payload_log_specs(resource, lambda _component: DEFAULT_URL)[component]
    args = [
        f"--payload-log-url={log.url}",
        f"--payload-log-mode={log.mode}",
        f"--payload-log-inference-service={log.inference_service}",
        f"--payload-log-namespace={log.namespace}",
        f"--payload-log-component={log.component}",
    ]
    if log.metadata_headers:
        args.append(f"--payload-log-metadata-headers={','.join(log.metadata_headers)}")
    if log.annotations:
        args.append(f"--payload-log-metadata-annotations={','.join(f'{k}={v}' for k, v in log.annotations)}")
    blob = log.blob
    if blob is not None:
        logger = spec["logger"]
        args += [f"--payload-log-store-format={blob.format}", f"--payload-log-batch-size={blob.batch_size}"]
        if blob.path:
            args.append(f"--payload-log-store-path={blob.path}")
        if blob.marshaller_url:
            args.append(f"--payload-log-marshaller-url={blob.marshaller_url}")
        if logger.get("batchInterval"):
            args.append(f"--payload-log-batch-interval={logger['batchInterval']}")
    return args


def logger_env(isvc: dict, spec: dict, settings: KubeSettings) -> list[dict]:
    """A bucket logger's credentials: its storage key's document, and its parameters over it."""
    logger = spec["logger"]
    storage = logger.get("storage") if isinstance(logger.get("storage"), dict) else {}
    if not storage.get("key"):
        return []
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    secret = annotations.get(SECRET_NAME_ANNOTATION) or settings.storage_secret
    env = [{"name": "STORAGE_CONFIG", "valueFrom": {"secretKeyRef": {"name": secret, "key": storage["key"]}}}]
    parameters = {k: str(v) for k, v in (storage.get("parameters") or {}).items() if k != FORMAT_PARAMETER}
    if parameters:
        env.append({"name": "STORAGE_OVERRIDE_CONFIG", "value": json.dumps(parameters, sort_keys=True)})
    return env


def logger_container(
    isvc: dict, component: str, spec: dict, settings: KubeSettings, component_port: int
) -> dict:
    """`modelplane logger` in front of a model server at `component_port` that does not log itself."""
    container = {
        "name": LOGGER_CONTAINER,
        "image": settings.image,
        "args": [
            "logger",
            f"--component-port={component_port}",
            *_timeout(spec),
            *logger_args(isvc, component, spec),
        ],
        "ports": [{"name": "agent-port", "containerPort": AGENT_PORT, "protocol": "TCP"}],
        # The model server's own probe says whether the model is ready; this one, that requests get in.
        "readinessProbe": {"tcpSocket": {"port": AGENT_PORT}, "timeoutSeconds": 1, "periodSeconds": 10},
        "resources": {kind: dict(amounts) for kind, amounts in LOGGER_RESOURCES.items()},
    }
    env = logger_env(isvc, spec, settings)
    if env:
        container["env"] = env
    return container


def aggregate_metrics(logger: dict, scraping: dict[str, str]) -> str:
    """Has the `logger` container serve its metrics with the model server's (read from the port and path
    that `scraping` names) on `LOGGER_METRICS_PORT`, at the same path; that port, for Prometheus to
    scrape instead, as KServe's queue-proxy aggregates them on its port 9088."""
    path = scraping["prometheus.io/path"]
    logger["args"] += [
        f"--metrics-port={LOGGER_METRICS_PORT}",
        f"--metrics-path={path}",
        f"--component-metrics-port={scraping['prometheus.io/port']}",
    ]
    return str(LOGGER_METRICS_PORT)


def _timeout(spec: dict) -> list[str]:
    """The component's `timeout`: how long the logger waits for the model server's answer to begin."""
    timeout = spec.get("timeout")
    return [f"--response-timeout={int(timeout)}"] if isinstance(timeout, int) and timeout > 0 else []
