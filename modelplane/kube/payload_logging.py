"""A component's `logger` on Kubernetes.

KServe puts its agent sidecar in front of the model server to log payloads; here the model server logs
them itself. A container that runs `modelplane serve` (the built-in runtimes, or a custom container that
runs it) gets the `--payload-log-*` flags (server/payload_logging.py): the sink (KServe's default,
`http://default-broker`, when the logger has no `url`), the mode, the names its events carry, the
headers and annotations they copy, and for a bucket its path, format, marshaller and batches, with the
storage config its `storage.key` names as `STORAGE_CONFIG` (from the storage-config Secret, as the
storage initializer gets it) and `storage.parameters` as `STORAGE_OVERRIDE_CONFIG`. Another container
is not logged, and the service's status says so.
"""

from __future__ import annotations

import json

from modelplane.control.payload_logging import FORMAT_PARAMETER, payload_log_specs
from modelplane.kube.settings import KubeSettings
from modelplane.kube.storage_initializer import SECRET_NAME_ANNOTATION

DEFAULT_URL = "http://default-broker"  # KServe's default logger url (its inferenceservice-config)
NOT_LOGGED = (
    "not acted on: this container is not modelplane serve, which logs payloads itself on a cluster "
    "(KServe's agent sidecar, which would log for it, is not part of modelplane)"
)


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
