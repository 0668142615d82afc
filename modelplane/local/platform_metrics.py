"""The control plane's metrics, in a registry of their own that `modelplane up` serves at `/metrics`
(with the gateway's and the replicas' of services that ask to be scraped: metrics_exposition.py).

Where KServe's controller (controller-runtime) or the Kubernetes API server has a metric, it has the
same name here: `controller_runtime_reconcile_total`, `controller_runtime_reconcile_time_seconds`,
`controller_runtime_reconcile_errors_total`, `workqueue_depth`, `workqueue_adds_total`,
`apiserver_request_total`, `apiserver_request_duration_seconds`. The store's operations and the
replicas' lives are modelplane's own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import Metric

REGISTRY = CollectorRegistry(auto_describe=True)

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RECONCILES = Counter(
    "controller_runtime_reconcile",
    "Reconciles, by controller and result (success, error)",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors",
    "Reconciles that failed (and are tried again), by controller",
    ["controller"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Time one reconcile took, by controller",
    ["controller"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "workqueue_depth",
    "Keys waiting for their controller's reconcile, by controller",
    ["name"],
    registry=REGISTRY,
)
QUEUE_ADDS = Counter(
    "workqueue_adds", "Keys queued for a reconcile, by controller", ["name"], registry=REGISTRY
)

STORE_OPERATIONS = Counter(
    "modelplane_store_operations",
    "Operations on the store (SQLite), by operation and outcome (ok, error: a conflict, a refusal...)",
    ["operation", "outcome"],
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "modelplane_store_operation_duration_seconds",
    "Time one store operation took, admission included, by operation",
    ["operation"],
    buckets=_SECONDS,
    registry=REGISTRY,
)

API_REQUESTS = Counter(
    "apiserver_request",
    "Control-plane API requests, by verb, resource and status code",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
API_SECONDS = Histogram(
    "apiserver_request_duration_seconds",
    "Time to answer a control-plane API request (a watch: until it ends), by verb and resource",
    ["verb", "resource"],
    buckets=_SECONDS,
    registry=REGISTRY,
)

REPLICA_STARTS = Counter(
    "modelplane_replica_starts",
    "Replica processes started (restarts included), by namespace and revision",
    ["namespace", "revision"],
    registry=REGISTRY,
)
REPLICA_RESTARTS = Counter(
    "modelplane_replica_restarts",
    "Replicas started again after their process exited, by namespace and revision",
    ["namespace", "revision"],
    registry=REGISTRY,
)
REPLICA_EXITS = Counter(
    "modelplane_replica_exits",
    "Replica processes that exited unasked, by namespace, revision and reason (Completed, Error, OOMKilled)",
    ["namespace", "revision", "reason"],
    registry=REGISTRY,
)


class _Families:
    """A registry's families as one collector of another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return self._registry.collect()


def platform_registry(*collectors: object) -> CollectorRegistry:
    """What one `modelplane up` exposes of itself: the control plane's metrics, its process's (CPU,
    memory, open files) and `collectors` (the gateway's)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(REGISTRY))
    registry.register(ProcessCollector(registry=None))
    for collector in collectors:
        registry.register(collector)
    return registry
