"""A component's `batcher` on Kubernetes, for a container that does not run `modelplane serve` (which
batches itself, with its `--enable-batcher` flags): KServe's agent sidecar with `--enable-batcher`, a
`batcher` container running `modelplane batcher` (modelplane/agent/batcher_proxy.py) in modelplane's
image, in front of the model server's port on 127.0.0.1.

The batcher takes the pod's requests on KServe's agent port, 9081; behind a `logger` container
(payload_logging.py), which then holds that port, it listens on `BEHIND_LOGGER_PORT` and the logger
passes its requests there: logger, batcher, model server, as KServe's agent logs a request before it
batches it. Its readiness probe is a TCP one of its port; the model server's own probe still says
whether the model is ready (see front_sidecar.py for a Knative pod).

In a pod Prometheus scrapes, the batcher serves its metrics with the model server's on a port of its own
(`aggregate_metrics`): KServe's aggregation port, 9088, which the pod's annotations then name, or behind a
logger `BEHIND_LOGGER_METRICS_PORT`, which the logger reads as its component's metrics.
"""

from __future__ import annotations

from modelplane.kube.payload_logging import LOGGER_METRICS_PORT, LOGGER_RESOURCES
from modelplane.kube.settings import KubeSettings

BATCHER_CONTAINER = "batcher"
BEHIND_LOGGER_PORT = 9082  # the batcher's port when a `logger` container takes KServe's agent port
BEHIND_LOGGER_METRICS_PORT = 9089  # its metrics port when the logger serves the pod's on LOGGER_METRICS_PORT
# A `batcher`'s fields, as `modelplane batcher`'s flags.
_FLAGS = {"maxBatchSize": "--max-batch-size", "maxLatency": "--max-latency", "timeout": "--timeout"}


def batcher_container(batcher: dict, settings: KubeSettings, port: int, upstream_port: int) -> dict:
    """`modelplane batcher` on `port`, in front of the model server at `upstream_port`; unset fields keep
    KServe's defaults (32 instances, 5000 ms, no timeout)."""
    flags = [f"{flag}={batcher[field]}" for field, flag in _FLAGS.items() if batcher.get(field) is not None]
    return {
        "name": BATCHER_CONTAINER,
        "image": settings.image,
        "args": ["batcher", f"--port={port}", f"--upstream=127.0.0.1:{upstream_port}", *flags],
        "ports": [{"name": "batcher-port", "containerPort": port, "protocol": "TCP"}],
        # The model server's own probe says whether the model is ready; this one, that requests get in.
        "readinessProbe": {"tcpSocket": {"port": port}, "timeoutSeconds": 1, "periodSeconds": 10},
        "resources": {kind: dict(amounts) for kind, amounts in LOGGER_RESOURCES.items()},
    }


def aggregate_metrics(batcher: dict, scraping: dict[str, str], *, behind_logger: bool) -> str:
    """Has the `batcher` container serve its metrics with the model server's (read from the port and path
    that `scraping` names) at the same path; the port it serves them on."""
    port = BEHIND_LOGGER_METRICS_PORT if behind_logger else LOGGER_METRICS_PORT
    batcher["args"] += [
        f"--metrics-port={port}",
        f"--metrics-path={scraping['prometheus.io/path']}",
        f"--upstream-metrics-port={scraping['prometheus.io/port']}",
    ]
    return str(port)
