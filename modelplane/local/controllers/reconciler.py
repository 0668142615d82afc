"""The reconciler of `modelplane up`: InferenceServices in the store become running revisions,
gateway routes and status.

It watches InferenceServices, ServingRuntimes and ClusterServingRuntimes, and reconciles one service
at a time per service (a worker per service coalesces the changes that come in while it works):

1. the control functions turn the spec and the runtimes into a template per component, and a
   template that changed into a new revision (kept in the `RevisionLog`);
2. the newest revision of each component is started, and takes the traffic once it is ready (all of
   it, or its `canaryTrafficPercent` next to the rolled-out revision); a revision that no longer has
   traffic is then taken out of the routes, drained and stopped. A newest revision that never gets
   ready (its model fails to load) leaves the rolled-out one serving, and the canary that was ready
   before it its share (Knative's latest target follows the latest ready revision);
3. the gateway gets the routes of the revisions with traffic, and the status is written back when it
   changed.

Standard-mode canaries (`spec.canary`, planned by `modelplane.control.canaries`) run as revisions of
their own, `<isvc>-<canary>-predictor-<n>`, with a fixed replica count; once ready, each joins the
predictor's route with its share of the weight.

Replica state changes (ready, crashed, failed to load) start a reconcile of their service too.
InferenceGraphs are reconciled next to the services (`controllers/graphs.py`); their hosts join the same
route table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from modelplane.api import RuntimeSelectionError, with_builtin_runtimes
from modelplane.api.conditions import LOADED, UNSCHEDULABLE
from modelplane.api.constants import STANDARD, TAG_ROUTING_ANNOTATION
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, INFERENCE_GRAPH, INFERENCE_SERVICE, SERVING_RUNTIME
from modelplane.api.service_account_credentials import STORAGE_SECRET_ANNOTATION
from modelplane.control import (
    COMPONENTS,
    ComponentState,
    Failure,
    Revision,
    ServiceState,
    TrafficTarget,
    inference_service_status,
    latest_revisions,
    not_serving_reason,
    revision_templates,
    rolled_out_after,
    service_routes,
    stopped_status,
    traffic_targets,
)
from modelplane.control.canaries import CanaryPlan, canary_plans, stable_share
from modelplane.control.modelmesh import deployment_mode, is_model_mesh
from modelplane.control.observed import CanaryState, RevisionState, as_reported
from modelplane.control.payload_logging import payload_log_specs
from modelplane.control.rolling_update import RollingUpdate, RolloutStep, rollout_step, rollout_targets
from modelplane.control.scrape_plan import component_scrape_paths, unscraped_ports
from modelplane.control.traffic import latest_ready_revision, rollback_to, takes_traffic
from modelplane.control.urls import GatewayAddress, service_host
from modelplane.control.urls import component_host as spec_component_host
from modelplane.local.api.errors import NotFound
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.storage_credentials import StorageCredentials
from modelplane.local.api.store import Ref, Store
from modelplane.local.api.unhonored_fields import service_unhonored
from modelplane.local.controllers.autoscaling import Autoscaling
from modelplane.local.controllers.draining import Draining
from modelplane.local.controllers.graphs import GraphReconciler
from modelplane.local.controllers.keyed_work import KeyedWorkers, resource_key, watch_kind
from modelplane.local.controllers.modelmesh import ModelMesh
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.gateway.routes import Backend, Route, RouteTable, component_host
from modelplane.local.replicas.supervisor import (
    Replica,
    RevisionReplicas,
    SupervisorSettings,
    now_rfc3339,
    replica_log_dir,
    replica_targets,
)
from modelplane.storage.errors import ConfigurationError
from modelplane.telemetry.metrics_exposition import ScrapeTarget
from modelplane.telemetry.payload_events import PayloadLogSpec

logger = logging.getLogger("modelplane.reconciler")

Key = tuple[str, str]  # (namespace, name)
STOP_ANNOTATION = "serving.kserve.io/stop"
RECREATE = "Recreate"  # a deploymentStrategy type: the old revision stops before the new one starts


class RouteSink(Protocol):
    def update_routes(self, table: RouteTable) -> None: ...
    def revision_stats(self) -> dict[str, RevisionStats]: ...


@dataclass
class _Service:
    namespace: str
    name: str
    revisions: list[Revision]
    running: dict[str, RevisionReplicas] = field(default_factory=dict)
    # Per component: the newest revision, the newest that was ready (the latest target follows it while
    # a newer one loads), the one that last had all the traffic and the one before it, the canary
    # percentage of the spec, and the traffic split in effect.
    latest: dict[str, str] = field(default_factory=dict)
    latest_ready: dict[str, str] = field(default_factory=dict)
    rolled_out: dict[str, str] = field(default_factory=dict)
    previous_rolled_out: dict[str, str] = field(default_factory=dict)
    canary: dict[str, int | None] = field(default_factory=dict)
    traffic: dict[str, tuple[TrafficTarget, ...]] = field(default_factory=dict)
    tag_routing: bool = False  # `serving.kserve.io/enable-tag-routing`: the latest target is tagged
    became_ready: set[str] = field(default_factory=set)  # revisions ready once, and not failed since
    # Revisions this control plane has seen ready: one restored from the status of a stopped platform
    # reports its first load as not ready yet; one woken from zero stays Ready while it starts again.
    seen_ready: set[str] = field(default_factory=set)
    # Standard-mode canaries (`spec.canary`), in order, and the revision each one runs.
    canaries: list[CanaryPlan] = field(default_factory=list)
    canary_latest: dict[str, str] = field(default_factory=dict)
    replicas_lent: int = 0  # what the stable predictor's minReplicas gives up to the ready canaries
    invalid: Failure | None = None
    invalid_detail: str = ""  # the controller's words for `invalid`
    runtime: dict | None = None
    unhonored: tuple[str, ...] = ()  # fields accepted but not acted on (api/unhonored_fields.py)
    payload_logs: dict[str, PayloadLogSpec] = field(default_factory=dict)  # per component with a logger
    # Where the replicas' metrics are, per component that asks to be scraped (control/scrape_plan.py).
    scrape_paths: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()  # those its spec has
    # The stable predictor's `name`: KServe names its Service `<isvc>-<name>-predictor`, and a transformer
    # or explainer written for the cluster calls that host.
    predictor_name: str | None = None
    # The status last written: why a host of it has no route, for the gateway's answer there.
    status: dict | None = None
    # Components whose `deploymentStrategy` is Recreate: a new revision starts once the old one stopped.
    recreate: set[str] = field(default_factory=set)
    stopping: dict[str, asyncio.Task] = field(default_factory=dict)  # per component, the old one stopping
    unstarted: set[str] = field(default_factory=set)  # revisions made but held back until then
    # Components with a `rollingUpdate`, and the rollouts under way: the replicas the old revision had
    # when each began, and its step now (control/rolling_update.py).
    rolling: dict[str, RollingUpdate] = field(default_factory=dict)
    rollouts: dict[str, int] = field(default_factory=dict)
    steps: dict[str, RolloutStep] = field(default_factory=dict)

    def revision(self, name: str) -> Revision:
        return next(r for r in self.revisions if r.name == name)


class Reconciler:
    """Runs on the platform's event loop: `start()` begins watching, `close()` stops every replica."""

    def __init__(
        self,
        store: Store,
        gateway: RouteSink,
        settings: SupervisorSettings,
        revision_log: RevisionLog,
        autoscaling: Autoscaling | None = None,
        events: EventRecorder | None = None,
        public: GatewayAddress | None = None,
    ) -> None:
        self.store = store
        # Where clients reach the gateway, for the statuses' URLs (the replicas use settings.gateway_port).
        self.public = public or GatewayAddress(settings.gateway_port)
        self.events = events
        self.gateway = gateway
        self.settings = settings
        self.revision_log = revision_log
        self.autoscaling = autoscaling or Autoscaling()
        if events is not None:
            self.autoscaling.on_rescale = self._rescaled
        self._services: dict[Key, _Service] = {}
        self._workers = KeyedWorkers(self._reconcile_key, "reconciling service", "inferenceservice")
        self._routes: dict[Key, dict[str, Route]] = {}
        self._routes_in_effect: RouteTable | None = None
        # The services and graphs stored when the reconciler started that it has not reconciled yet: until
        # then, the gateway answers a host it does not know with 503 "starting" rather than 404.
        self._awaited: set[Key] | None = None
        self._awaited_graphs: set[Key] = set()
        self._retiring: set[asyncio.Task] = set()
        self._watches: list[asyncio.Task] = []
        # What leaves the routes stops once the gateway has no request in flight on it.
        self.draining = Draining(gateway.revision_stats, settings.stop_grace)
        self.graphs = GraphReconciler(
            store,
            settings,
            self._update_routes,
            self.autoscaling,
            revision_log.of_graphs(),
            self.public,
            self.draining,
        )
        # ModelMesh services: models on their runtime's pool, loaded when used (controllers/modelmesh.py).
        self.modelmesh = ModelMesh(store, settings, self._update_routes, gateway.revision_stats)
        # Told the ready predictor replicas of a service after each reconcile (TrainedModels load on them).
        self.on_replicas: Callable[[Key, list[Replica]], None] | None = None

    # ---- running ----

    def start(self) -> None:
        self._awaited = {resource_key(item) for item in self.store.list(INFERENCE_SERVICE.kind)[0]}
        self._awaited_graphs = {resource_key(item) for item in self.store.list(INFERENCE_GRAPH.kind)[0]}
        self._update_routes()
        self._watches = [
            asyncio.create_task(watch_kind(self.store, INFERENCE_SERVICE.kind, self._on_service_event)),
            asyncio.create_task(watch_kind(self.store, SERVING_RUNTIME.kind, self._on_runtime_event)),
            asyncio.create_task(watch_kind(self.store, CLUSTER_SERVING_RUNTIME.kind, self._on_runtime_event)),
        ]
        self.graphs.start()
        self.modelmesh.start()
        self.autoscaling.start(self.gateway.revision_stats)

    async def close(self) -> None:
        """Stops watching and stops every replica (gracefully, all at once)."""
        await self.autoscaling.close()
        await self.graphs.close()
        await self.modelmesh.close()
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, self._workers.close(), return_exceptions=True)
        runners = [runner for service in self._services.values() for runner in service.running.values()]
        await asyncio.gather(*(runner.stop() for runner in runners), *self._retiring, return_exceptions=True)
        self._services.clear()

    def scrape_targets(self) -> list[ScrapeTarget]:
        """The ready replicas of the services (and graphs) that ask to be scraped
        (`serving.kserve.io/enable-prometheus-scraping`), for the platform's /metrics."""
        targets = []
        for service in self._services.values():
            for runner in service.running.values():
                path = service.scrape_paths.get(runner.revision.component)
                if path is None:
                    continue
                base = (
                    ("namespace", service.namespace),
                    ("inferenceservice", service.name),
                    ("component", runner.revision.component),
                )
                targets += replica_targets(runner, path, base)
        return targets + self.graphs.scrape_targets()

    def kick(self, key: Key) -> None:
        """Asks for a reconcile of one service (soon, once, however often it is asked)."""
        self._workers.kick(key)

    def _on_service_event(self, _type: str, resource: dict) -> None:
        self.kick(resource_key(resource))

    def _on_runtime_event(self, _type: str, _resource: dict) -> None:
        for key in [*self._services, *self.modelmesh.keys()]:
            self.kick(key)
        self.modelmesh.runtimes_changed()

    async def _reconcile_key(self, key: Key) -> bool:
        """One reconcile; True once the service is gone (its worker may go too)."""
        try:
            await self._reconcile(key)
        finally:
            if self._awaited and key in self._awaited:
                self._awaited.discard(key)
                self._update_routes()
        return key not in self._services

    # ---- one service ----

    async def _reconcile(self, key: Key) -> None:
        namespace, name = key
        ref = Ref(INFERENCE_SERVICE.kind, namespace, name)
        try:
            isvc = self.store.get(ref)
        except NotFound:
            await self._tear_down(key)
            await self.modelmesh.reconcile(key, None)
            return
        if is_model_mesh(isvc):  # a model on its runtime's pool, not a deployment
            await self.modelmesh.reconcile(key, isvc)
            return
        service = self._services.get(key)
        if service is None:
            service = self._services[key] = self._restored(isvc)
        service.predictor_name = ((isvc.get("spec") or {}).get("predictor") or {}).get("name") or None
        if ((isvc["metadata"].get("annotations") or {}).get(STOP_ANNOTATION) or "").lower() == "true":
            self._stop(ref, isvc, service)
            return
        self._plan(service, isvc)
        self._recreate(service)
        self._resume_rollouts(service)
        self._roll(service)
        canaries = set(service.canary_latest.values())
        # Canaries first: a ready one (taken back after a restart in place) has its replicas lent by
        # the stable predictor before that starts.
        for revision_name in sorted(self._wanted(service), key=lambda name: name not in canaries):
            self._ensure_running(service, revision_name)
        self._split_traffic(service)
        self._lend_replicas_to_canaries(service)
        self._update_routes()
        for runner in service.running.values():
            # Replicas scaled down, now out of the routes: each stops once its requests are answered.
            self.draining.stop_removed(runner)
        for revision_name in set(service.running) - self._wanted(service):
            self._retire(service, service.running.pop(revision_name))
        self._not_serving(service, isvc, self._write_status(ref, isvc, service))
        self._report_replicas(key, service)

    def _not_serving(self, service: _Service, isvc: dict, status: dict) -> None:
        """Keeps the status just written: it says why a host of the service has no route."""
        spec = isvc.get("spec") or {}
        service.components = tuple(k for k in COMPONENTS if isinstance(spec.get(k), dict))
        if status != service.status:
            service.status = status
            self._update_routes()

    def _report_replicas(self, key: Key, service: _Service | None) -> None:
        if self.on_replicas is not None:
            runners = service.running.values() if service is not None else ()
            ready = [r.replicas for r in runners if r.revision.component == "predictor"]
            self.on_replicas(
                key, [r for replicas in ready for r in replicas if r.phase == LOADED and r.address]
            )

    def _stop(self, ref: Ref, isvc: dict, service: _Service) -> None:
        """`serving.kserve.io/stop: "true"`: no routes, no replicas; the rolled-out revisions are kept
        for when the annotation goes."""
        service.latest, service.traffic, service.canary_latest, service.latest_ready = {}, {}, {}, {}
        self._update_routes()
        for runner in service.running.values():
            self._retire(service, runner)
        service.running = {}
        self._report_replicas((service.namespace, service.name), None)
        previous = isvc.get("status") or {}
        status = stopped_status(isvc, now=now_rfc3339(), previous=previous)
        status["deploymentMode"] = deployment_mode(isvc)
        if status != previous:
            self.store.set_status(ref, status)
        self._not_serving(service, isvc, status)

    def _restored(self, isvc: dict) -> _Service:
        """A service seen for the first time, with its past revisions; after a restart the revisions its
        status says were rolled out serve again, and the latest ready one keeps its share."""
        namespace, name = resource_key(isvc)
        history = self.revision_log.read(namespace, name)
        if history.set_aside is not None and self.events is not None:
            self.events.warning(
                isvc,
                "RevisionHistoryLost",
                f"its revision history could not be read and was moved to {history.set_aside}: it starts "
                "again from its spec, and its past revisions and their traffic split are lost",
            )
        service = _Service(namespace, name, history.revisions)
        service.rollouts = history.rollouts  # `_roll` ends any that are over
        for component, status in ((isvc.get("status") or {}).get("components") or {}).items():
            _restore_component(service, component, status or {})
        return service

    def _plan(self, service: _Service, isvc: dict) -> None:
        namespaced_runtimes, _ = self.store.list(SERVING_RUNTIME.kind, service.namespace)
        service.unhonored = service_unhonored(isvc)
        secret = ((isvc.get("metadata") or {}).get("annotations") or {}).get(STORAGE_SECRET_ANNOTATION)
        service.payload_logs = payload_log_specs(
            isvc,
            lambda component: self._payload_file(service, component),
            lambda namespace, key: self._logger_storage_config(namespace, key, secret),
        )
        service.scrape_paths = component_scrape_paths(isvc)  # with its runtime's, once it is found
        try:
            templates = revision_templates(isvc, namespaced_runtimes, self._cluster_runtimes())
        except RuntimeSelectionError as exc:
            known = service.invalid
            if known is None or (known.reason, known.message) != (exc.reason, exc.message):
                logger.warning("%s/%s cannot run: %s", service.namespace, service.name, exc)
                service.invalid = Failure(exc.reason, exc.message, time=now_rfc3339())
                service.invalid_detail = str(exc)
                if self.events is not None:
                    self.events.warning(isvc, exc.reason, str(exc))
            return
        service.invalid = None
        service.canaries = canary_plans(isvc, namespaced_runtimes, self._cluster_runtimes())
        runnable = {plan.component: plan.template for plan in service.canaries if plan.template is not None}
        latest, created = latest_revisions(service.name, service.revisions, {**templates, **runnable})
        if created:
            service.revisions += created
            self._save_log(service)
            for revision in created:
                logger.info("%s/%s: new revision %s", service.namespace, service.name, revision.name)
                self._warn_of_dropped_args(isvc, revision)
        service.latest = {component: latest[component].name for component in templates}
        service.canary_latest = {
            plan.name: latest[plan.component].name for plan in service.canaries if plan.template is not None
        }
        service.runtime = (templates.get("predictor") or {}).get("runtime")
        runtimes = [*namespaced_runtimes, *self._cluster_runtimes()]
        runtime_annotations = _runtime_annotations(service.runtime, runtimes)
        service.scrape_paths = component_scrape_paths(isvc, runtime_annotations)
        service.unhonored = service_unhonored(isvc, service.runtime, runtimes) + unscraped_ports(
            isvc, templates, service.runtime, runtime_annotations
        )
        spec = isvc.get("spec") or {}
        # KServe's Standard mode does not read canaryTrafficPercent (a warning says so): no split there.
        standard = deployment_mode(isvc) == STANDARD
        service.canary = {
            component: None if standard else spec[component].get("canaryTrafficPercent")
            for component in templates
        }
        annotations = isvc["metadata"].get("annotations") or {}
        service.tag_routing = str(annotations.get(TAG_ROUTING_ANNOTATION, "")).lower() == "true"
        service.recreate = {
            component
            for component in templates
            if ((spec[component].get("deploymentStrategy") or {}).get("type")) == RECREATE
        }
        service.rolling = {
            component: update
            for component in templates
            if service.canary.get(component) is None
            and (update := RollingUpdate.of(spec[component])) is not None
        }
        for gone in set(service.rolled_out) - set(templates):
            del service.rolled_out[gone]
            service.previous_rolled_out.pop(gone, None)
            service.traffic.pop(gone, None)
        for gone in set(service.latest_ready) - set(templates):
            del service.latest_ready[gone]

    def _payload_file(self, service: _Service, component: str) -> str:
        """Where a logger without `url` writes: next to the component's replica logs."""
        folder = replica_log_dir(self.settings.logs_dir, service.namespace, service.name, component)
        return (folder.absolute() / "payload-events.jsonl").as_uri()

    def _logger_storage_config(self, namespace: str, key: str, secret: str | None) -> Mapping[str, str]:
        """The storage config a bucket logger's `storage.key` names; without one, a warning and no
        credentials (the writes then fail, and the events dropped are counted)."""
        try:
            return StorageCredentials(self.store).for_namespace(namespace, secret).get(key)
        except ConfigurationError as exc:
            logger.warning(
                "payload logs of namespace %s: %s; writing without its credentials", namespace, exc
            )
            return {}

    def _warn_of_dropped_args(self, isvc: dict, revision: Revision) -> None:
        """A stock image's arguments that have no local meaning (`modelplane.control.images`) are said."""
        dropped = (revision.template.get("image") or {}).get("dropped")
        if not dropped:
            return
        message = f"{revision.name} runs without: {'; '.join(dropped)}"
        metadata = isvc["metadata"]
        logger.warning("%s/%s: %s", metadata.get("namespace") or "default", metadata["name"], message)
        if self.events is not None:
            self.events.warning(isvc, "ArgumentsDropped", message)

    def _wanted(self, service: _Service) -> set[str]:
        return (
            set(service.latest.values())
            | set(service.latest_ready.values())
            | set(service.rolled_out.values())
            | set(service.canary_latest.values())
            | self._rollbacks(service)
        )

    def _rollbacks(self, service: _Service) -> set[str]:
        """The revisions a percentage rolls back to (stopped since they were rolled out): they start
        before the split moves to them, their requests waiting in the gateway as at zero."""
        found = {
            rollback_to(
                latest,
                service.rolled_out.get(component),
                service.canary.get(component),
                service.previous_rolled_out.get(component),
            )
            for component, latest in service.latest.items()
        }
        return {name for name in found if name is not None}

    def _recreate(self, service: _Service) -> None:
        """The Recreate strategy: a component's new revision waits, its old one stops (finishing the
        requests it holds), and then the new one starts; requests meanwhile wait in the gateway."""
        key = (service.namespace, service.name)
        for component in service.recreate:
            latest, old = service.latest.get(component), service.rolled_out.get(component)
            if latest is None:
                continue
            if old is not None and old != latest:
                runner = service.running.pop(old, None)
                if runner is not None:
                    logger.info(
                        "%s/%s: %s recreated: %s stops before %s starts",
                        service.namespace, service.name, component, old, latest,
                    )  # fmt: skip
                    stopping = service.stopping[component] = self._retire(service, runner)
                    stopping.add_done_callback(lambda _task: self.kick(key))
                del service.rolled_out[component]
                service.previous_rolled_out[component] = old
            stopping = service.stopping.get(component)
            if stopping is not None and stopping.done():
                del service.stopping[component]
                logger.info(
                    "%s/%s: %s stopped; starting %s", service.namespace, service.name, component, latest
                )

    def _resume_rollouts(self, service: _Service) -> None:
        """Rollouts a restart carried over (from the revision log) run both their revisions again
        before their next step, each with the replicas it handed over (`_ensure_running`)."""
        for component in [c for c in service.rollouts if c not in service.steps]:
            for revision in (service.rolled_out.get(component), service.latest.get(component)):
                if revision is not None:
                    self._ensure_running(service, revision)

    def _roll(self, service: _Service) -> None:
        """Rolling updates: the next step of each rollout under way (its replica caps), begun where a
        component with a `rollingUpdate` has a new revision and an old one that serves."""
        for component in set(service.rollouts) | set(service.rolling):
            latest, old = service.latest.get(component), service.rolled_out.get(component)
            old_runner = service.running.get(old) if old else None
            update = service.rolling.get(component)
            if update is None or latest in (None, old):
                self._end_rollout(service, component)
                continue
            if old_runner is None:
                continue
            total = service.rollouts.get(component)
            if total is None:
                if not old_runner.desired:
                    continue  # nothing serves at the moment: the new revision starts whole
                total = service.rollouts[component] = old_runner.desired
                self._save_log(service)
                logger.info(
                    "%s/%s: %s rolls out %s over %s (%d replicas, maxSurge %s, maxUnavailable %s)",
                    service.namespace, service.name, component, latest, old, total,
                    update.max_surge, update.max_unavailable,
                )  # fmt: skip
            new_runner = service.running.get(latest)
            new, new_ready = (new_runner.desired, new_runner.state().ready_replicas) if new_runner else (0, 0)
            step = rollout_step(
                update, total, old_runner.desired, old_runner.state().ready_replicas, new, new_ready
            )
            service.steps[component] = step
            self.autoscaling.cap(old_runner, step.old_replicas)
            if new_runner is not None:
                self.autoscaling.cap(new_runner, step.new_replicas)

    def _end_rollout(self, service: _Service, component: str) -> None:
        """A rollout that is over (done, or replaced by a spec back at its old revision): no caps left."""
        if service.rollouts.pop(component, None) is None:
            return
        self._save_log(service)
        service.steps.pop(component, None)
        for revision in (service.latest.get(component), service.rolled_out.get(component)):
            runner = service.running.get(revision) if revision else None
            if runner is not None:
                self.autoscaling.cap(runner, None)

    def _save_log(self, service: _Service) -> None:
        self.revision_log.save(service.namespace, service.name, service.revisions, service.rollouts)

    def _ensure_running(self, service: _Service, revision_name: str) -> None:
        key = (service.namespace, service.name)
        if revision_name not in service.running:
            revision = service.revision(revision_name)
            service.running[revision_name] = RevisionReplicas(
                revision, service.namespace, service.name, 0, self.settings, lambda: self.kick(key)
            )
            service.unstarted.add(revision_name)
        runner = service.running[revision_name]
        held = runner.revision.component in service.stopping  # its component is being recreated
        if revision_name in service.unstarted and not held:
            service.unstarted.discard(revision_name)
            component = runner.revision.component
            step = service.steps.get(component)
            rolling_in = step is not None and service.latest.get(component) == revision_name
            if rolling_in:  # it starts within the rollout's step, wanting the old revision's count
                self.autoscaling.cap(runner, step.new_replicas)
            elif step is None and component in service.rollouts:
                # A rollout carried over a restart: each revision keeps the replicas it handed over
                # until the rollout's next step, rather than starting at its autoscaler's count.
                self.autoscaling.cap(runner, self.settings.handover.count(revision_name))
            initial = service.rollouts.get(component) if rolling_in else None
            if component == "predictor":
                self.autoscaling.lower_minimum(runner, self._replicas_lent(service))
            at_zero = revision_name in self.settings.handover.at_zero
            self.autoscaling.start_scaling(runner, lambda: self.kick(key), initial, at_zero=at_zero)

    def _split_traffic(self, service: _Service) -> None:
        for component, newest in service.latest.items():
            rolled_out = service.rolled_out.get(component)
            step = service.steps.get(component)
            if step is None and component not in service.recreate:
                found = self._latest_ready(service, component, newest)
                latest, ready = found or newest, found is not None
            else:  # a rollout moves replicas to the newest revision, whatever was ready before it
                service.latest_ready.pop(component, None)
                latest, ready = newest, self._takes_traffic(service, newest)
            if step is not None and rolled_out is not None:
                targets = rollout_targets(latest, rolled_out, step)
            else:
                # KServe rolls back only once the newest revision is the latest ready one.
                previous = service.previous_rolled_out.get(component) if latest == newest else None
                targets = traffic_targets(
                    latest,
                    ready,
                    rolled_out,
                    service.canary.get(component),
                    tag_routing=service.tag_routing,
                    previous_rolled_out=previous,
                )
            if not targets and component in service.recreate:
                targets = (TrafficTarget(newest, 100, True),)  # requests wait for it in the gateway
            if targets != service.traffic.get(component):
                split = ", ".join(f"{t.revision} {t.percent}%" for t in targets) or "none yet"
                logger.info("%s/%s: %s traffic: %s", service.namespace, service.name, component, split)
            service.traffic[component] = targets
            now_rolled_out = rolled_out_after(targets, ready, rolled_out)
            if now_rolled_out != rolled_out and step is not None:
                logger.info("%s/%s: %s rolled out %s", service.namespace, service.name, component, latest)
                self._end_rollout(service, component)
            if now_rolled_out != rolled_out:
                service.rolled_out[component] = now_rolled_out
                if rolled_out == latest:  # a rollback: the previous one stays, as in KServe
                    what = (service.namespace, service.name, component, now_rolled_out)
                    logger.info("%s/%s: %s rolled back to %s", *what)
                elif rolled_out:
                    service.previous_rolled_out[component] = rolled_out

    def _latest_ready(self, service: _Service, component: str, newest: str) -> str | None:
        """The newest revision of a component that is ready and not failed since (kept in `latest_ready`)."""
        before = service.latest_ready.get(component)
        still = before in service.running and self._takes_traffic(service, before)
        found = latest_ready_revision(newest, self._takes_traffic(service, newest), before, still)
        if found is None:
            service.latest_ready.pop(component, None)
        else:
            service.latest_ready[component] = found
        return found

    def _takes_traffic(self, service: _Service, revision_name: str) -> bool:
        return self._takes_traffic_in(service, revision_name, service.running[revision_name].state())

    @staticmethod
    def _takes_traffic_in(service: _Service, revision_name: str, state: RevisionState) -> bool:
        """Whether a revision in `state` takes traffic, noting when it became ready or failed."""
        if state.ready:
            service.became_ready.add(revision_name)
            service.seen_ready.add(revision_name)
        elif state.failure is not None:
            service.became_ready.discard(revision_name)
        return takes_traffic(state.ready, state.failure is not None, revision_name in service.became_ready)

    def _lend_replicas_to_canaries(self, service: _Service) -> None:
        """As KServe does, the stable predictor runs its minReplicas less the replicas of the ready
        canaries, at least one."""
        lent = self._replicas_lent(service)
        if not lent and not service.replicas_lent:
            return
        for runner in service.running.values():
            if runner.revision.component == "predictor":
                self.autoscaling.lower_minimum(runner, lent)
        service.replicas_lent = lent

    def _replicas_lent(self, service: _Service) -> int:
        return sum(
            plan.replicas
            for plan in service.canaries
            if self._is_ready(service, service.canary_latest.get(plan.name, ""))
        )

    def _rescaled(self, revision: str, before: int, after: int, why: str) -> None:
        """An Event on the InferenceService whose revision the autoscaler rescaled, as an HPA records
        one (`SuccessfulRescale`)."""
        owner = next((key for key, service in self._services.items() if revision in service.running), None)
        if owner is None or self.events is None:
            return  # a graph's router, or a revision just retired
        try:
            isvc = self.store.get(Ref(INFERENCE_SERVICE.kind, *owner))
        except NotFound:
            return
        self.events.normal(isvc, "SuccessfulRescale", f"{revision}: new size {after} (was {before}); {why}")

    def _retire(self, service: _Service, runner: RevisionReplicas) -> asyncio.Task:
        """Stops a revision the routes no longer name, once the requests it holds are done."""
        logger.info("%s/%s: stopping %s", service.namespace, service.name, runner.revision.name)
        self.autoscaling.forget(runner.revision.name)
        service.unstarted.discard(runner.revision.name)
        service.became_ready.discard(runner.revision.name)
        service.seen_ready.discard(runner.revision.name)
        task = asyncio.create_task(self.draining.stop_revision(runner))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return task

    async def _tear_down(self, key: Key) -> None:
        service = self._services.pop(key, None)
        self._routes.pop(key, None)
        self._update_routes()
        self._report_replicas(key, None)
        if service is None:
            return
        logger.info("%s/%s deleted: stopping its revisions", *key)
        self.revision_log.forget(*key)
        for runner in service.running.values():
            self._retire(service, runner)

    # ---- routes and status ----

    def _update_routes(self) -> None:
        unavailable: dict[str, str] = {}
        for key, service in self._services.items():
            self._routes[key] = self._service_routes(service)
            unavailable.update(self._not_serving_hosts(service))
        table = {host: route for routes in self._routes.values() for host, route in routes.items()}
        # A service keeps its hosts from a graph of the same name (which says so in its status).
        for host, route in self.graphs.routes().items():
            if host not in table and host not in unavailable:
                table[host] = route
        for host, why in self.graphs.unavailable().items():
            unavailable.setdefault(host, why)
        table.update(self.modelmesh.routes())
        starting = (
            self._awaited is None or bool(self._awaited) or not self.graphs.reconciled >= self._awaited_graphs
        )
        routes = RouteTable(
            table,
            unavailable,
            starting,
            model_endpoints=self.modelmesh.endpoints(),
            crashed=self.settings.crashed.recent(),
        )
        if routes != self._routes_in_effect:
            self.gateway.update_routes(routes)
            self._routes_in_effect = routes

    def _not_serving_hosts(self, service: _Service) -> dict[str, str]:
        """The service's host and its components' hosts, each with why it does not serve (the gateway
        uses it for those without a route)."""
        if service.status is None:
            return {}
        name, namespace, domain = service.name, service.namespace, self.settings.domain
        what = f"InferenceService {namespace}/{name}"
        detail = f": {service.invalid_detail}" if service.invalid is not None else ""
        own_host = service_host(name, namespace, domain)
        hosts = {own_host: f"{what} is not ready: {not_serving_reason(service.status)}{detail}"}
        for component in service.components:
            reason = not_serving_reason(service.status, component) + detail
            hosts[spec_component_host(name, namespace, component, domain)] = (
                f"the {component} of {what} does not serve: {reason}"
            )
        if service.predictor_name and "predictor" in service.components:
            named = spec_component_host(name, namespace, "predictor", domain, service.predictor_name)
            hosts[named] = hosts[spec_component_host(name, namespace, "predictor", domain)]
        return hosts

    def _service_routes(self, service: _Service) -> dict[str, Route]:
        component_routes: dict[str, Route] = {}
        tag_routes: dict[str, Route] = {}
        canaries = self._canary_backends(service)
        for plan, backend in canaries:
            host = component_host(
                f"{service.name}-{plan.name}", service.namespace, "predictor", self.settings.domain
            )
            tag_routes[host] = Route((backend,))
        ready_canaries = [
            (plan, backend) for plan, backend in canaries if self._is_ready(service, backend.revision)
        ]
        for component, targets in service.traffic.items():
            backends = [self._backend(service, t.revision, t.percent) for t in targets]
            backends = [backend for backend in backends if backend is not None]
            if not backends:
                continue
            split = backends
            if component == "predictor" and ready_canaries:
                # Weights are relative: the stable split scaled to its share, each ready canary its percent.
                share = stable_share([plan.percent for plan, _ in ready_canaries])
                split = [replace(backend, weight=backend.weight * share) for backend in backends]
                split += [replace(backend, weight=plan.percent * 100) for plan, backend in ready_canaries]
            component_routes[component] = Route(
                tuple(split), refusal=self._refusal(service, component, split)
            )
            # A named predictor is KServe's `<isvc>-<name>-predictor`: its Service selects the stable pods
            # alone, not the canaries, and its Knative Service's tags are `latest-<isvc>-<name>-predictor`.
            names = [service.name]
            if component == "predictor" and service.predictor_name:
                names.append(f"{service.name}-{service.predictor_name}")
                host = component_host(names[-1], service.namespace, "predictor", self.settings.domain)
                tag_routes[host] = Route(tuple(backends), refusal=self._refusal(service, component, backends))
            for target, backend in zip(targets, backends, strict=True):
                for name in names if target.tag else ():
                    host = component_host(
                        name, service.namespace, component, self.settings.domain, target.tag
                    )
                    tag_routes[host] = Route((backend,))
        routes = service_routes(
            service.name, service.namespace, self.settings.domain, set(service.latest), component_routes
        )
        own_host = service_host(service.name, service.namespace, self.settings.domain)
        routes = {
            host: Route(route.backends, explain=explain, refusal=route.refusal)
            for host, (route, explain) in routes.items()
        }
        if own_host in routes and "explainer" not in component_routes:
            routes[own_host] = self._with_explainer_waiting(service, routes[own_host])
        return {**routes, **tag_routes}

    def _refusal(self, service: _Service, component: str, backends: list[Backend]) -> str | None:
        """Why a component's requests are answered 503 at once: every replica of every revision they
        could go to failed to start (woken from zero, say, with its model gone), so a request would
        only wait for the activator's timeout. None while any may still serve."""
        failure = None
        for backend in backends:
            runner = service.running.get(backend.revision)
            state = runner.state() if runner is not None else None
            if state is None or not state.gave_up:
                return None  # it serves, or a replica may still come up
            failure = failure or state.failure.message
        return f"the {component} of InferenceService {service.namespace}/{service.name} does not serve: {failure}"

    def _with_explainer_waiting(self, service: _Service, route: Route) -> Route:
        """The service's host while its explainer does not serve yet: `:explain` calls wait for it
        while it loads (as the first requests of any component do), and are refused with the reason
        once it failed, so predictions are never held back by it."""
        latest = service.latest.get("explainer")
        if latest is None:
            return route
        why = self._failure_of(service, latest)
        if why is None:
            loading = self._backend(service, latest, 100)
            return Route(route.backends, explain=Route((loading,)) if loading is not None else None)
        refusal = f"the explainer of {service.namespace}/{service.name} does not serve: {why}"
        return Route(route.backends, explain_refusal=refusal)

    def _canary_backends(self, service: _Service) -> list[tuple[CanaryPlan, Backend]]:
        found = []
        for plan in service.canaries:
            backend = self._backend(service, service.canary_latest.get(plan.name, ""), plan.percent)
            if backend is not None:
                found.append((plan, backend))
        return found

    def _is_ready(self, service: _Service, revision_name: str) -> bool:
        runner = service.running.get(revision_name)
        return runner is not None and runner.state().ready

    def _backend(self, service: _Service, revision_name: str, percent: int) -> Backend | None:
        runner = service.running.get(revision_name)
        if runner is None:
            return None
        template = runner.revision.template
        timeout = template.get("timeout")
        return Backend(
            revision_name,
            runner.addresses(),
            weight=percent,
            container_concurrency=int(template.get("containerConcurrency") or 0),
            timeout_seconds=float(timeout) if timeout else None,
            grpc_replicas=runner.grpc_addresses(),
            payload_log=service.payload_logs.get(runner.revision.component),
        )

    def _observed(self, service: _Service) -> ServiceState:
        components = {}
        for component, latest in service.latest.items():
            latest_state = self._reported_state(service, latest)
            rolled_out = service.rolled_out.get(component)
            ready = [
                state
                for name in (latest, service.latest_ready.get(component), rolled_out)
                if name in service.running and (state := self._reported_state(service, name)).ready
            ]
            serving = ready[0] if ready else None
            components[component] = ComponentState(
                latest_state,
                serving,
                service.traffic.get(component, ()),
                rolled_out,
                service.previous_rolled_out.get(component),
            )
        host = service_host(service.name, service.namespace, self.settings.domain)
        routed = host in self._routes.get((service.namespace, service.name), {})
        running: dict[str, tuple] = {}
        for runner in service.running.values():
            component = runner.revision.component
            running[component] = (*running.get(component, ()), runner.state())
        canaries = tuple(
            CanaryState(
                plan.name,
                plan.percent,
                self._is_ready(service, service.canary_latest.get(plan.name, "")),
                plan.problem or self._failure_of(service, service.canary_latest.get(plan.name, "")),
            )
            for plan in service.canaries
        )
        return ServiceState(
            components, service.invalid, service.runtime, routed, running, canaries, service.unhonored
        )

    def _reported_state(self, service: _Service, revision_name: str) -> RevisionState:
        state = service.running[revision_name].state()
        keeps_traffic = (
            self._takes_traffic_in(service, revision_name, state) and revision_name in service.seen_ready
        )
        return as_reported(state, keeps_traffic)

    def _failure_of(self, service: _Service, revision_name: str) -> str | None:
        """Why a revision does not serve: its failure, what its replicas wait for, or why they are not
        ready where the platform can tell."""
        runner = service.running.get(revision_name)
        state = runner.state() if runner is not None else None
        if state is None:
            return None
        return state.failure.message if state.failure is not None else state.unschedulable or state.not_ready

    def _write_status(self, ref: Ref, isvc: dict, service: _Service) -> dict:
        previous = isvc.get("status") or {}
        status = inference_service_status(
            isvc,
            self._observed(service),
            domain=self.settings.domain,
            port=self.public.port,
            scheme=self.public.scheme,
            now=now_rfc3339(),
            previous=previous,
        )
        status["deploymentMode"] = deployment_mode(isvc)
        if status != previous:
            with contextlib.suppress(NotFound):
                self.store.set_status(ref, status)
            self._report_failure(isvc, previous, status)
        return status

    def _report_failure(self, isvc: dict, previous: dict, status: dict) -> None:
        """A Warning event when the service stops being ready because a revision failed or cannot be
        scheduled (once for each new reason and message), so `kubectl events` and `describe` say so."""
        ready = _ready_condition(status)
        if self.events is None or ready.get("status") != "False" or ready.get("reason") not in _EVENTFUL:
            return
        before = _ready_condition(previous)
        if (before.get("status"), before.get("reason"), before.get("message")) != (
            "False",
            ready["reason"],
            ready.get("message"),
        ):
            self.events.warning(isvc, ready["reason"], ready.get("message") or "")

    def _cluster_runtimes(self) -> list[dict]:
        """The stored ClusterServingRuntimes, and the built-in ones that no stored one replaces."""
        stored, _ = self.store.list(CLUSTER_SERVING_RUNTIME.kind)
        return with_builtin_runtimes(stored)


# Why a service is not ready that an event says too (the others already have events of their own,
# or are what was asked for: stopped).
_EVENTFUL = ("RevisionFailed", UNSCHEDULABLE)


def _runtime_annotations(runtime: dict | None, runtimes: list[dict]) -> dict | None:
    """The `spec.annotations` of the predictor's runtime (its kind and name), which its pods get."""
    for candidate in runtimes if runtime is not None else ():
        if (candidate.get("kind"), (candidate.get("metadata") or {}).get("name")) == (
            runtime["kind"],  # type: ignore[index]
            runtime["name"],  # type: ignore[index]
        ):
            return (candidate.get("spec") or {}).get("annotations")
    return None


def _ready_condition(status: dict) -> dict:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def _restore_component(service: _Service, component: str, status: dict) -> None:
    """What a component's stored status says of its revisions, taken back by a service seen for the
    first time (after a restart): the rolled-out ones, and the latest ready one, which the latest
    target follows again (a canary ready before a newer revision that loads or failed), as Knative
    keeps `latestReadyRevision` in its Configuration's status."""
    known = {revision.name for revision in service.revisions}
    latest_ready = status.get("latestReadyRevision")
    rolled_out = status.get("latestRolledoutRevision") or latest_ready
    if rolled_out in known:
        service.rolled_out[component] = rolled_out
    if status.get("previousRolledoutRevision") in known:
        service.previous_rolled_out[component] = status["previousRolledoutRevision"]
    if latest_ready in known:
        service.latest_ready[component] = latest_ready
        service.became_ready.add(latest_ready)  # until it fails, even while it starts again
