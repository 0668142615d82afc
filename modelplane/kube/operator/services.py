"""The InferenceService reconciler: one service at a time, from what the cluster holds now.

1. KServe's finalizer while the service lives (its objects go with it by the garbage collector);
2. the service as admitted (defaulting and validation, `modelplane.control.admission`), its runtimes
   (the namespace's ServingRuntimes, the ClusterServingRuntimes and the built-in ones) and the
   TrainedModels that fit in its memory;
3. its objects rendered (`modelplane.kube.render.isvc_objects`, with the canaries the cluster reports
   ready), applied, and the ones it no longer needs deleted;
4. its status from its Deployments or Knative Services, their pods and its routes (`isvc_status`).

A service that cannot run (no runtime for its model, a spec the admission refuses) keeps the objects
it had and says why in its status and in an Event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace

from lightkube import ApiError

from modelplane.api import RuntimeSelectionError, ValidationError, select_runtime, with_builtin_runtimes
from modelplane.api import conditions as c
from modelplane.api.constants import KNATIVE
from modelplane.api.service_account_credentials import STORAGE_SECRET_ANNOTATION
from modelplane.control import ComponentState, Failure, ServiceState
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.control.observed import CanaryState
from modelplane.control.trained_models import is_mms_predictor, memory_fits, memory_limit, parent_name
from modelplane.kube.credentials import AccountObjects
from modelplane.kube.meta import FINALIZERS, INFERENCE_SERVICE_LABEL, component_name, is_cluster_local
from modelplane.kube.notes import credentials_notes, isvc_notes
from modelplane.kube.operator import finalizers, isvc_status
from modelplane.kube.operator import resources as r
from modelplane.kube.operator.context import Context, is_ready, now_rfc3339
from modelplane.kube.operator.made_objects import apply_all, prune
from modelplane.kube.operator.workload_states import (
    deployment_revision,
    knative_component,
    route_accepted,
    standard_component,
)
from modelplane.kube.render import RenderError, deployment_mode, is_stopped, isvc_objects
from modelplane.kube.trained_models import model_config

logger = logging.getLogger("modelplane.operator")

FINALIZER = FINALIZERS["InferenceService"]
COMPONENTS = ("predictor", "transformer", "explainer")
KNATIVE_MISSING = (
    "Knative Serving is not installed on this cluster (no serving.knative.dev/v1 Service): "
    "the Knative deployment mode needs it"
)


async def reconcile_service(ctx: Context, namespace: str, name: str) -> None:
    cluster = ctx.cluster
    isvc = await cluster.get(r.INFERENCE_SERVICES, name, namespace)
    if isvc is None:
        return
    if finalizers.is_deleting(isvc):
        if finalizers.has(isvc, FINALIZER):
            await finalizers.remove(cluster, r.INFERENCE_SERVICES, isvc, FINALIZER)
        return
    if not finalizers.has(isvc, FINALIZER):
        isvc = await finalizers.add(cluster, r.INFERENCE_SERVICES, isvc, FINALIZER)
    mode = deployment_mode(isvc, ctx.settings)
    if is_stopped(isvc):
        await prune(cluster, isvc, INFERENCE_SERVICE_LABEL, [])
        await _write_status(ctx, isvc, isvc_status.stopped(isvc, mode, now=now_rfc3339()))
        return
    invalid: Failure | None = None
    try:
        admitted = admit_with_platform_checks(isvc, config=ctx.admission)
    except ValidationError as error:
        admitted, invalid = (
            None,
            Failure(c.INVALID_PREDICTOR_SPEC, refusal_message(isvc, error), time=now_rfc3339()),
        )
    observed = await _observe(ctx, isvc, mode)
    if admitted is not None:
        accounts = await _accounts(ctx, admitted)
        invalid = await _apply_objects(ctx, isvc, admitted, mode, observed, accounts)
    if invalid is not None:
        await _say_once(ctx, isvc, invalid)
    state = _service_state(isvc, mode, observed, invalid)
    if admitted is not None:
        notes = isvc_notes(admitted, mode, ctx.settings) + credentials_notes(admitted, accounts)
        state = replace(state, unhonored=tuple(str(note) for note in notes))
    knative_urls = {k: (v.get("status") or {}) for k, v in observed.knative.items()}
    status = isvc_status.cluster_status(
        isvc, state, mode, ctx.settings, now=now_rfc3339(), knative_urls=knative_urls
    )
    if invalid is None and admitted is not None:
        status.update(_runtime_names(observed.runtime))
    await _write_status(ctx, isvc, status)


async def apply_model_config(ctx: Context, isvc: dict) -> None:
    """Writes the ConfigMap of a multi-model predictor's TrainedModels (those that fit, not being
    deleted), as the TrainedModel reconciler needs it before it lets a TrainedModel go."""
    if not is_mms_predictor(isvc) or finalizers.is_deleting(isvc):
        return
    namespace = isvc["metadata"].get("namespace") or "default"
    await ctx.cluster.apply(model_config(isvc, namespace, await _trained_models(ctx, isvc)))


class _Observed:
    """What the cluster holds for one service."""

    def __init__(self) -> None:
        self.deployments: dict[str, dict] = {}
        self.knative: dict[str, dict] = {}  # component -> its Knative Service
        self.pods: dict[str, list[dict]] = defaultdict(list)  # by `app` label, and by Knative revision
        self.routes: list[dict] = []
        self.ingresses: list[dict] = []
        self.runtime: dict | None = None
        self.canaries: list[CanaryState] = []


async def _observe(ctx: Context, isvc: dict, mode: str) -> _Observed:
    cluster = ctx.cluster
    name, namespace = isvc["metadata"]["name"], isvc["metadata"].get("namespace") or "default"
    labels = {INFERENCE_SERVICE_LABEL: name}
    found = _Observed()
    for pod in await cluster.list(r.PODS, namespace, labels):
        pod_labels = pod["metadata"].get("labels") or {}
        for key in ("app", "serving.knative.dev/revision"):
            if pod_labels.get(key):
                found.pods[pod_labels[key]].append(pod)
    if mode == KNATIVE:
        for ksvc in await cluster.list(r.KNATIVE_SERVICES, namespace, labels):
            component = (ksvc["metadata"].get("labels") or {}).get("component")
            found.knative[component] = ksvc
    else:
        found.deployments = {
            d["metadata"]["name"]: d for d in await cluster.list(r.DEPLOYMENTS, namespace, labels)
        }
        found.routes = await cluster.list(r.HTTP_ROUTES, namespace, labels)
        found.ingresses = await cluster.list(r.INGRESSES, namespace, labels)
        for canary in (isvc.get("spec") or {}).get("canary") or []:
            canary_name = (canary.get("predictor") or {}).get("name", "")
            deployment = found.deployments.get(component_name(name, "predictor", canary_name))
            revision = (
                deployment_revision(deployment, found.pods.get(f"isvc.{deployment['metadata']['name']}", []))
                if deployment
                else None
            )
            ready = revision is not None and revision.ready_replicas > 0
            problem = revision.failure.message if revision is not None and revision.failure else None
            found.canaries.append(
                CanaryState(canary_name, int(canary.get("trafficPercent") or 0), ready, problem)
            )
    return found


async def _apply_objects(
    ctx: Context, isvc: dict, admitted: dict, mode: str, observed: _Observed, accounts: AccountObjects
) -> Failure | None:
    """Applies the service's objects; the Failure that keeps it from running, if one does."""
    cluster = ctx.cluster
    namespace = isvc["metadata"].get("namespace") or "default"
    runtimes = await cluster.list(r.SERVING_RUNTIMES, namespace)
    cluster_runtimes = with_builtin_runtimes(await cluster.list(r.CLUSTER_SERVING_RUNTIMES))
    ready_canaries = [canary.name for canary in observed.canaries if canary.ready]
    try:
        objects = isvc_objects(
            admitted,
            runtimes,
            cluster_runtimes,
            ctx.settings,
            await _trained_models(ctx, admitted),
            ready_canaries=ready_canaries,
            accounts=accounts,
        )
    except RenderError as error:
        return Failure(error.reason, str(error), time=now_rfc3339())
    observed.runtime = _selected_runtime(admitted, runtimes, cluster_runtimes)
    try:
        await apply_all(cluster, objects)
    except ApiError as error:
        if error.status.code == 404 and mode == KNATIVE:
            return Failure(c.RUNTIME_NOT_RECOGNIZED, KNATIVE_MISSING, time=now_rfc3339())
        raise
    gone = await prune(cluster, isvc, INFERENCE_SERVICE_LABEL, objects)
    if gone:
        logger.info("%s/%s: deleted %s", namespace, isvc["metadata"]["name"], ", ".join(gone))
    return None


async def _accounts(ctx: Context, isvc: dict) -> AccountObjects:
    """The ServiceAccounts of the service's namespace, and the Secrets they (or the service's
    storageSecretName annotation) name: where its pods' storage credentials come from."""
    namespace = isvc["metadata"].get("namespace") or "default"
    accounts = {sa["metadata"]["name"]: sa for sa in await ctx.cluster.list(r.SERVICE_ACCOUNTS, namespace)}
    names = {
        ref.get("name")
        for sa in accounts.values()
        for ref in sa.get("secrets") or []
        if isinstance(ref, dict)
    }
    names.add((isvc["metadata"].get("annotations") or {}).get(STORAGE_SECRET_ANNOTATION))
    secrets = {}
    for name in sorted(n for n in names if n):
        secret = await ctx.cluster.get(r.SECRETS, name, namespace)
        if secret is not None:
            secrets[name] = secret
    return AccountObjects(namespace, accounts, secrets)


async def _trained_models(ctx: Context, isvc: dict) -> list[dict]:
    """The TrainedModels of a service that its ConfigMap lists: not being deleted, and fitting in the
    predictor's memory (in the order they were created)."""
    name, namespace = isvc["metadata"]["name"], isvc["metadata"].get("namespace") or "default"
    mine = [
        tm
        for tm in await ctx.cluster.list(r.TRAINED_MODELS, namespace)
        if parent_name(tm) == name and not finalizers.is_deleting(tm)
    ]
    fits = memory_fits(mine, memory_limit(isvc))
    return [tm for tm in mine if fits.get(tm["metadata"]["name"])]


def _selected_runtime(isvc: dict, runtimes: list[dict], cluster_runtimes: list[dict]) -> dict | None:
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model")
    if not isinstance(model, dict):
        return None
    try:
        selection = select_runtime(isvc, runtimes, cluster_runtimes)
    except RuntimeSelectionError:
        return None
    return {"kind": selection.kind, "name": selection.name}


def _runtime_names(runtime: dict | None) -> dict:
    if not runtime:
        return {}
    if runtime["kind"] == "ServingRuntime":
        return {"servingRuntimeName": runtime["name"]}
    return {"clusterServingRuntimeName": runtime["name"]}


def _service_state(isvc: dict, mode: str, observed: _Observed, invalid: Failure | None) -> ServiceState:
    name = isvc["metadata"]["name"]
    spec = isvc.get("spec") or {}
    components: dict[str, ComponentState] = {}
    running: dict[str, tuple] = {}
    before = (isvc.get("status") or {}).get("components") or {}
    for component in COMPONENTS:
        if not isinstance(spec.get(component), dict):
            continue
        if mode == KNATIVE:
            ksvc = observed.knative.get(component)
            revisions = (ksvc or {}).get("status") or {}
            latest, ready = (
                revisions.get("latestCreatedRevisionName"),
                revisions.get("latestReadyRevisionName"),
            )
            state = knative_component(
                ksvc,
                observed.pods.get(latest, []) if latest else [],
                before.get(component) or {},
                serving_pods=observed.pods.get(ready, []) if ready else [],
            )
        else:
            predictor_name = spec[component].get("name") if component == "predictor" else None
            obj_name = component_name(name, component, predictor_name)
            state = standard_component(
                observed.deployments.get(obj_name), observed.pods.get(f"isvc.{obj_name}", [])
            )
        if state is not None:
            components[component] = state
            running[component] = (state.latest,)
    return ServiceState(
        components,
        invalid,
        None,
        _routed(isvc, mode, observed, components),
        running,
        tuple(observed.canaries),
    )


def _routed(isvc: dict, mode: str, observed: _Observed, components: dict[str, ComponentState]) -> bool:
    """Whether traffic can reach the service: Knative's routes are ready; in Standard mode its
    HTTPRoutes are accepted by their gateway (or its Ingress is there), or it is cluster-local."""
    if mode == KNATIVE:
        return bool(observed.knative) and all(
            any(
                x.get("type") == "RoutesReady" and x.get("status") == "True"
                for x in (k.get("status") or {}).get("conditions") or []
            )
            for k in observed.knative.values()
        )
    if is_cluster_local(isvc):
        return True
    if observed.routes:
        return all(route_accepted(route) for route in observed.routes)
    return bool(observed.ingresses)


async def _say_once(ctx: Context, isvc: dict, failure: Failure) -> None:
    """An Event when the service's problem is new (not the one its status already reports)."""
    reported = ((isvc.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo") or {}
    if reported.get("message") != failure.message:
        namespace = isvc["metadata"].get("namespace") or "default"
        logger.warning("%s/%s cannot run: %s", namespace, isvc["metadata"]["name"], failure.message)
        await ctx.cluster.event(isvc, "Warning", failure.reason, failure.message)


async def _write_status(ctx: Context, isvc: dict, status: dict) -> None:
    previous = isvc.get("status") or {}
    if status == previous:
        return
    await ctx.cluster.write_status(r.INFERENCE_SERVICES, isvc, status)
    if is_ready({"status": status}) != is_ready(isvc):
        reason, kind = (
            ("InferenceServiceReady", "Normal")
            if is_ready({"status": status})
            else ("InferenceServiceNotReady", "Warning")
        )
        await ctx.cluster.event(
            isvc,
            kind,
            reason,
            f"InferenceService [{isvc['metadata']['name']}] is {'' if kind == 'Normal' else 'not '}ready",
        )
