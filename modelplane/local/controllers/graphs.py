"""The InferenceGraphs of `modelplane up`: each becomes router replicas behind the graph's own host.

A graph waits until each InferenceService its steps name is ready, then runs `modelplane router` with
the graph whose `serviceName`s are resolved to the services' URLs (`modelplane.control.graph_plan`).
The router's command is the graph's revision: when a service's URL changes, or the spec does, a new
revision starts, takes the host once it is ready, and the one before it is stopped once the gateway has
no request in flight on it, as a service's revision is (`draining.py`). Any change of an
InferenceService in the graph's namespace re-plans the graph, so it follows its services. The revisions
are kept in a `RevisionLog`, so that after a restart of `modelplane up` a graph runs the same revision for
the same command, and numbers a new one after every revision it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from modelplane.api.builtin_runtimes import with_builtin_runtimes
from modelplane.api.conditions import PENDING, READY
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, INFERENCE_GRAPH, INFERENCE_SERVICE, SERVING_RUNTIME
from modelplane.api.scraping import scrape_path
from modelplane.control import Revision, latest_revisions
from modelplane.control.graph_plan import graph_plan, inference_graph_status, stopped_graph_status
from modelplane.control.hpa_metrics import resource_scaling_spec
from modelplane.control.modelmesh import deployment_mode
from modelplane.control.revision_templates import scaling_annotations
from modelplane.control.status import why_not_ready
from modelplane.control.urls import GatewayAddress
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store
from modelplane.local.api.unhonored_fields import unhonored_fields
from modelplane.local.controllers.autoscaling import Autoscaling
from modelplane.local.controllers.draining import Draining
from modelplane.local.controllers.keyed_work import KeyedWorkers, resource_key, watch_kind
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.routes import Backend, Route, inference_graph_routes, isvc_host
from modelplane.local.replicas.supervisor import (
    RevisionReplicas,
    SupervisorSettings,
    now_rfc3339,
    replica_targets,
)
from modelplane.telemetry.metrics_exposition import ScrapeTarget

logger = logging.getLogger("modelplane.reconciler")

Key = tuple[str, str]  # (namespace, name)
STOP_ANNOTATION = "serving.kserve.io/stop"
ROUTER = "router"
ROUTER_PORT, ROUTER_GRPC_PORT = 8080, 8081
ROUTER_RESOURCES = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@dataclass
class _Graph:
    namespace: str
    name: str
    revisions: list[Revision] = field(default_factory=list)
    running: dict[str, RevisionReplicas] = field(default_factory=dict)
    latest: str | None = None  # the revision the plan wants
    serving: str | None = None  # the revision the host goes to
    scrape_path: str | None = None  # where its routers' metrics are, when it asks to be scraped
    not_ready: str | None = None  # its Ready condition's message while it is not Ready


def router_template(graph: dict, spec: dict, metadata: dict | None = None) -> dict:
    """The revision template of a graph's router: its command, ports, probe, scaling and resources."""
    template = {
        "command": [
            "modelplane",
            ROUTER,
            "--graph-json",
            json.dumps(graph, sort_keys=True, separators=(",", ":")),
            "--host",
            "127.0.0.1",
            "--port",
            str(ROUTER_PORT),
            # The gateway stops routing to a router, and waits for the requests it has in flight on
            # it, before it is stopped, so there is nothing to wait for: on SIGTERM it finishes what it
            # still holds and exits.
            "--drain-seconds",
            "0",
        ],
        "env": {},
        "ports": {"http": ROUTER_PORT, "grpc": ROUTER_GRPC_PORT},
        "readinessPath": "/readyz",
        "minReplicas": spec.get("minReplicas"),
        "maxReplicas": spec.get("maxReplicas"),
        "scaleMetric": spec.get("scaleMetric"),
        "scaleTarget": spec.get("scaleTarget"),
        "scalingAnnotations": scaling_annotations(metadata or {}),
        "timeout": spec.get("timeout"),
    }
    # KServe's router gets the graph's resources, or the defaults of its configmap's `router` entry.
    template["resources"] = spec.get("resources") or ROUTER_RESOURCES
    metadata = metadata or {}
    hpa = resource_scaling_spec(
        spec, metadata.get("annotations") or {}, deployment_mode({"metadata": metadata})
    )
    if hpa is not None:
        template["hpa"] = hpa
    return template


class GraphReconciler:
    """Runs on the platform's event loop next to the service reconciler; `on_routes` is called when
    the graphs' routes (`routes()`) changed. Without a `revision_log` the revisions live in memory only;
    without `draining` (the gateway's counters) a router that leaves the routes is stopped at once."""

    def __init__(
        self,
        store: Store,
        settings: SupervisorSettings,
        on_routes: Callable[[], None],
        autoscaling: Autoscaling | None = None,
        revision_log: RevisionLog | None = None,
        public: GatewayAddress | None = None,
        draining: Draining | None = None,
    ) -> None:
        self.store = store
        self.draining = draining or Draining(lambda: {}, settings.stop_grace)
        self.public = public or GatewayAddress(settings.gateway_port)  # for the statuses' URLs
        self.settings = settings
        self.on_routes = on_routes
        self.autoscaling = autoscaling or Autoscaling()
        self.revision_log = revision_log
        self._graphs: dict[Key, _Graph] = {}
        self.reconciled: set[Key] = set()  # the graphs reconciled at least once since the start
        self._workers = KeyedWorkers(self._reconcile_key, "reconciling graph", "inferencegraph")
        self._retiring: set[asyncio.Task] = set()
        self._watches: list[asyncio.Task] = []

    def start(self) -> None:
        self._watches = [
            asyncio.create_task(watch_kind(self.store, INFERENCE_GRAPH.kind, self._on_graph_event)),
            asyncio.create_task(watch_kind(self.store, INFERENCE_SERVICE.kind, self._on_service_event)),
        ]

    async def close(self) -> None:
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, self._workers.close(), return_exceptions=True)
        runners = [runner for graph in self._graphs.values() for runner in graph.running.values()]
        await asyncio.gather(*(runner.stop() for runner in runners), *self._retiring, return_exceptions=True)
        self._graphs.clear()

    def scrape_targets(self) -> list[ScrapeTarget]:
        """The ready router replicas of the graphs that ask to be scraped."""
        targets = []
        for graph in self._graphs.values():
            if graph.scrape_path is None:
                continue
            for runner in graph.running.values():
                base = (
                    ("namespace", graph.namespace),
                    ("inferencegraph", graph.name),
                    ("component", "router"),
                )
                targets += replica_targets(runner, graph.scrape_path, base)
        return targets

    def routes(self) -> dict[str, Route]:
        """The host of each graph that has a router: the one serving, else the one starting, whose
        requests wait in the gateway until it is ready (as a service's first revision's do)."""
        table: dict[str, Route] = {}
        for graph in self._graphs.values():
            runner = graph.running.get(graph.serving or graph.latest or "")
            if runner is None or (graph.serving is None and _cannot_serve(runner)):
                continue  # the gateway answers at once with why (`unavailable`), as for a service
            timeout = runner.revision.template.get("timeout")
            backend = Backend(
                runner.revision.name,
                runner.addresses(),
                timeout_seconds=float(timeout) if timeout else None,
            )
            state = runner.state()
            refusal = None
            if state.gave_up:  # woken from zero, say, and failed since: requests would only wait
                what = f"InferenceGraph {graph.namespace}/{graph.name}"
                refusal = f"the router of {what} does not serve: {state.failure.message}"
            table.update(
                inference_graph_routes(graph.name, graph.namespace, (backend,), self.settings.domain, refusal)
            )
        return table

    def unavailable(self) -> dict[str, str]:
        """The host of each graph that is not Ready, with why (the gateway uses it when there is no route)."""
        return {
            isvc_host(graph.name, graph.namespace, self.settings.domain): (
                f"InferenceGraph {graph.namespace}/{graph.name} is not ready: {graph.not_ready}"
            )
            for graph in self._graphs.values()
            if graph.not_ready is not None
        }

    # ---- events ----

    def kick(self, key: Key) -> None:
        self._workers.kick(key)

    def _on_graph_event(self, _type: str, resource: dict) -> None:
        self.kick(resource_key(resource))

    def _on_service_event(self, _type: str, resource: dict) -> None:
        namespace, _ = resource_key(resource)
        for key in list(self._graphs):
            if key[0] == namespace:
                self.kick(key)

    async def _reconcile_key(self, key: Key) -> bool:
        """One reconcile; True once the graph is gone (its worker may go too)."""
        try:
            self._reconcile(key)
        finally:
            self.reconciled.add(key)
            self.on_routes()  # its host may have a route now, or a new reason not to
        return key not in self._graphs

    # ---- one graph ----

    def _reconcile(self, key: Key) -> None:
        namespace, name = key
        ref = Ref(INFERENCE_GRAPH.kind, namespace, name)
        try:
            ig = self.store.get(ref)
        except NotFound:
            self._tear_down(key)
            return
        graph = self._graphs.get(key)
        if graph is None:
            past = self.revision_log.load(namespace, name) if self.revision_log else []
            graph = self._graphs[key] = _Graph(namespace, name, past)
        previous = ig.get("status") or {}
        graph.scrape_path = scrape_path(ig["metadata"].get("annotations"))
        if ((ig["metadata"].get("annotations") or {}).get(STOP_ANNOTATION) or "").lower() == "true":
            self._retire_all_but(graph, None)
            graph.latest = graph.serving = None
            self.on_routes()
            status = stopped_graph_status(ig, now=now_rfc3339(), previous=previous)
        else:
            services, _ = self.store.list(INFERENCE_SERVICE.kind, namespace)
            plan = graph_plan(
                ig,
                {s["metadata"]["name"]: s for s in services},
                domain=self.settings.domain,
                port=self.settings.gateway_port,
                runtimes=self._runtimes(namespace),
            )
            if plan.runnable:
                self._run(graph, router_template(plan.graph, ig.get("spec") or {}, ig["metadata"]))
            elif plan.conflict:  # the service keeps its host: no router of the graph's serves there
                self._retire_all_but(graph, None)
                graph.latest = graph.serving = None
            # Ready once the router of the current plan serves (or is scaled to zero, when the first
            # request wakes it): while a new revision starts, the one before it keeps the host, but the
            # graph is not Ready (its spec is not served yet).
            router_ready = (
                graph.serving is not None
                and graph.serving == graph.latest
                and graph.running[graph.serving].state().ready
            )
            latest = graph.running.get(graph.latest or "")
            failure = latest.state().failure if latest is not None else None
            status = inference_graph_status(
                ig,
                plan,
                router_ready=router_ready,
                router_failure=failure.message if failure else None,
                router_unschedulable=_cannot_start(latest),
                domain=self.settings.domain,
                port=self.public.port,
                scheme=self.public.scheme,
                now=now_rfc3339(),
                previous=previous,
                unhonored=tuple(str(field) for field in unhonored_fields(ig)),
                # Knative's conditions, once the graph has a router revision (KServe's Knative
                # Service, which it creates once every service of the graph resolves).
                routed=None if graph.latest is None else graph.serving is not None,
            )
        graph.not_ready = not_ready_message(status)
        if status != previous:
            with contextlib.suppress(NotFound):
                self.store.set_status(ref, status)

    def _runtimes(self, namespace: str) -> dict[str, dict]:
        """The spec of each runtime a service of `namespace` may name, its own before the cluster's."""
        namespaced, _ = self.store.list(SERVING_RUNTIME.kind, namespace)
        stored, _ = self.store.list(CLUSTER_SERVING_RUNTIME.kind)
        runtimes = [*namespaced, *with_builtin_runtimes(stored)]
        return {runtime["metadata"]["name"]: runtime.get("spec") or {} for runtime in reversed(runtimes)}

    def _run(self, graph: _Graph, template: dict) -> None:
        """Starts the router revision of `template`, and gives it the host once it is ready."""
        latest, created = latest_revisions(graph.name, graph.revisions, {ROUTER: template})
        if created:
            graph.revisions += created
            if self.revision_log is not None:
                self.revision_log.save(graph.namespace, graph.name, graph.revisions)
            logger.info("%s/%s: new router revision %s", graph.namespace, graph.name, created[0].name)
        graph.latest = latest[ROUTER].name
        if graph.latest not in graph.running:
            logger.info("%s/%s: starting router %s", graph.namespace, graph.name, graph.latest)
            key = (graph.namespace, graph.name)
            runner = RevisionReplicas(
                latest[ROUTER], graph.namespace, graph.name, 0, self.settings, lambda: self.kick(key)
            )
            graph.running[graph.latest] = runner
            self.autoscaling.start_scaling(runner, lambda: self.kick(key))
        if graph.running[graph.latest].state().ready and graph.serving != graph.latest:
            graph.serving = graph.latest
            self.on_routes()
            self._retire_all_but(graph, graph.latest)
        else:
            self.on_routes()  # a router just started, or the routed one's replicas changed
        for runner in graph.running.values():
            self.draining.stop_removed(runner)  # replicas scaled down, now out of the routes

    def _retire_all_but(self, graph: _Graph, keep: str | None) -> None:
        for name in [name for name in graph.running if name != keep]:
            runner = graph.running.pop(name)
            self.autoscaling.forget(name)
            logger.info("%s/%s: stopping router %s", graph.namespace, graph.name, name)
            task = asyncio.create_task(self.draining.stop_revision(runner))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def _tear_down(self, key: Key) -> None:
        graph = self._graphs.pop(key, None)
        if graph is None:
            return
        logger.info("graph %s/%s deleted: stopping its router", *key)
        if self.revision_log is not None:
            self.revision_log.forget(*key)
        self.on_routes()
        self._retire_all_but(graph, None)


def _cannot_serve(runner: RevisionReplicas) -> bool:
    """Whether a router revision's replicas will not serve without a change: they wait for GPUs this
    machine cannot give, or every one of them failed to start."""
    state = runner.state()
    return state.gave_up or (state.phase == PENDING and bool(state.unschedulable))


def _cannot_start(runner: RevisionReplicas | None) -> str | None:
    """Why a router revision's replicas cannot start (they wait for GPUs this machine cannot give),
    worded as an InferenceService's status words it; None when they can."""
    state = runner.state() if runner is not None else None
    if state is None or state.phase != PENDING or not state.unschedulable:
        return None
    return f'Revision "{state.name}" cannot start: {state.unschedulable}.'


def not_ready_message(status: dict) -> str | None:
    """The message of a graph's Ready condition while it is not True."""
    for condition in status.get("conditions") or []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == READY
            and condition.get("status") != "True"
        ):
            return why_not_ready(condition)
    return None
