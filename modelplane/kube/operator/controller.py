"""What the leader runs: the watches, the work queue and the reconcilers.

Keys are `(kind, namespace, name)` of InferenceServices, InferenceGraphs and TrainedModels. A change
of a resource asks for its own reconcile, and for the reconciles that depend on it: a service's
graphs and TrainedModels; a runtime's services; a TrainedModel's service (its model ConfigMap); a
Deployment, pod, Knative Service, HTTPRoute or Ingress the reconcile of the resource it belongs to (by
its `serving.kserve.io/inferenceservice` or `serving.kserve.io/inferencegraph` label). Every known
key is also reconciled every `resync` seconds, so that drift nobody watches (an edited Service, a
deleted HPA) is put right.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from modelplane.control.trained_models import parent_name
from modelplane.kube.meta import INFERENCE_GRAPH_LABEL, INFERENCE_SERVICE_LABEL
from modelplane.kube.operator import resources as r
from modelplane.kube.operator.context import Context
from modelplane.kube.operator.graphs import reconcile_graph
from modelplane.kube.operator.services import reconcile_service
from modelplane.kube.operator.trained_models import reconcile_trained_model
from modelplane.kube.operator.watches import Watch, run_watch
from modelplane.kube.operator.work_queue import WorkQueue

logger = logging.getLogger("modelplane.operator")

SERVICE, GRAPH, TRAINED_MODEL = "InferenceService", "InferenceGraph", "TrainedModel"
Key = tuple[str, str, str]


class Controller:
    def __init__(self, ctx: Context, *, workers: int = 4, resync: float = 300.0) -> None:
        self.ctx = ctx
        self.resync = resync
        self.queue = WorkQueue(self._reconcile, workers)
        self.known: dict[str, set[tuple[str, str]]] = {SERVICE: set(), GRAPH: set(), TRAINED_MODEL: set()}
        self.models_of: dict[tuple[str, str], set[str]] = defaultdict(set)  # (ns, isvc) -> its TrainedModels
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        client = self.ctx.cluster.client
        watches = [
            Watch(r.INFERENCE_SERVICES, self._on_service),
            Watch(r.INFERENCE_GRAPHS, self._on(GRAPH)),
            Watch(r.TRAINED_MODELS, self._on_trained_model),
            Watch(r.SERVING_RUNTIMES, self._on_services_input),
            Watch(r.CLUSTER_SERVING_RUNTIMES, self._on_services_input),
            Watch(r.SERVICE_ACCOUNTS, self._on_services_input),
            Watch(r.PODS, self._on_made, {INFERENCE_SERVICE_LABEL: None}),
            Watch(r.PODS, self._on_made, {INFERENCE_GRAPH_LABEL: None}),
            *(
                Watch(resource, self._on_made)
                for resource in (r.DEPLOYMENTS, r.KNATIVE_SERVICES, r.HTTP_ROUTES, r.INGRESSES)
            ),
        ]
        self._tasks = [asyncio.create_task(run_watch(client, watch)) for watch in watches]
        self._tasks.append(asyncio.create_task(self._resync()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queue.close()

    async def _reconcile(self, key: Key) -> float | None:
        kind, namespace, name = key
        if kind == SERVICE:
            await reconcile_service(self.ctx, namespace, name)
        elif kind == GRAPH:
            await reconcile_graph(self.ctx, namespace, name)
        else:
            return await reconcile_trained_model(self.ctx, namespace, name)
        return None

    # ---- from changes to keys ----

    def _remember(self, kind: str, event: str, obj: dict) -> tuple[str, str]:
        where = (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        if event == "DELETED":
            self.known[kind].discard(where)
        else:
            self.known[kind].add(where)
        return where

    def _on(self, kind: str):
        def handle(event: str, obj: dict) -> None:
            namespace, name = self._remember(kind, event, obj)
            self.queue.add((kind, namespace, name))

        return handle

    def _on_service(self, event: str, obj: dict) -> None:
        namespace, name = self._remember(SERVICE, event, obj)
        self.queue.add((SERVICE, namespace, name))
        self._services_changed(namespace, name)

    def _services_changed(self, namespace: str, name: str) -> None:
        for graph_namespace, graph in self.known[GRAPH]:
            if graph_namespace == namespace:
                self.queue.add((GRAPH, namespace, graph))
        for model in self.models_of.get((namespace, name), ()):
            self.queue.add((TRAINED_MODEL, namespace, model))

    def _on_trained_model(self, event: str, obj: dict) -> None:
        namespace, name = self._remember(TRAINED_MODEL, event, obj)
        parent = parent_name(obj)
        if parent:
            if event == "DELETED":
                self.models_of[(namespace, parent)].discard(name)
            else:
                self.models_of[(namespace, parent)].add(name)
            self.queue.add((SERVICE, namespace, parent))
        self.queue.add((TRAINED_MODEL, namespace, name))

    def _on_services_input(self, _event: str, obj: dict) -> None:
        """A runtime or a ServiceAccount changed: the services of its namespace (of every namespace, for
        a ClusterServingRuntime) are rendered again."""
        namespace = obj["metadata"].get("namespace")  # None for a ClusterServingRuntime
        for service_namespace, name in self.known[SERVICE]:
            if namespace is None or service_namespace == namespace:
                self.queue.add((SERVICE, service_namespace, name))

    def _on_made(self, _event: str, obj: dict) -> None:
        labels = obj["metadata"].get("labels") or {}
        namespace = obj["metadata"].get("namespace") or "default"
        if labels.get(INFERENCE_SERVICE_LABEL):
            self.queue.add((SERVICE, namespace, labels[INFERENCE_SERVICE_LABEL]))
            if obj.get("kind") == "Pod":
                for model in self.models_of.get((namespace, labels[INFERENCE_SERVICE_LABEL]), ()):
                    self.queue.add((TRAINED_MODEL, namespace, model))
        if labels.get(INFERENCE_GRAPH_LABEL):
            self.queue.add((GRAPH, namespace, labels[INFERENCE_GRAPH_LABEL]))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for kind, keys in self.known.items():
                for namespace, name in list(keys):
                    self.queue.add((kind, namespace, name))
