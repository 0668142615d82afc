"""The InferenceGraph reconciler: the graph's router (`modelplane.kube.graphs`, each `serviceName`
resolved to that InferenceService on the cluster) applied, what it no longer needs deleted, and its
status: Ready once the services it calls are ready and its router is, with its URL."""

from __future__ import annotations

from modelplane.api import ValidationError, with_builtin_runtimes
from modelplane.api.constants import KNATIVE
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.control.graph_plan import graph_plan, inference_graph_status, stopped_graph_status
from modelplane.kube.meta import INFERENCE_GRAPH_LABEL, is_cluster_local
from modelplane.kube.operator import resources as r
from modelplane.kube.operator.context import Context, now_rfc3339
from modelplane.kube.operator.made_objects import apply_all, prune
from modelplane.kube.operator.workload_states import conditions_of, deployment_revision, knative_component
from modelplane.kube.render import RenderError, deployment_mode, graph_rendering, is_stopped
from modelplane.kube.routes import host


async def reconcile_graph(ctx: Context, namespace: str, name: str) -> None:
    cluster = ctx.cluster
    ig = await cluster.get(r.INFERENCE_GRAPHS, name, namespace)
    if ig is None or ig["metadata"].get("deletionTimestamp"):
        return
    mode = deployment_mode(ig, ctx.settings)
    previous = ig.get("status") or {}
    if is_stopped(ig):
        await prune(cluster, ig, INFERENCE_GRAPH_LABEL, [])
        await _write(
            ctx,
            ig,
            {**stopped_graph_status(ig, now=now_rfc3339(), previous=previous), "deploymentMode": mode},
        )
        return
    try:
        admitted = admit_with_platform_checks(ig, config=ctx.admission)
    except ValidationError as error:
        await _write_refusal(ctx, ig, mode, refusal_message(ig, error))
        return
    services = {s["metadata"]["name"]: s for s in await cluster.list(r.INFERENCE_SERVICES, namespace)}
    runtimes = await cluster.list(r.SERVING_RUNTIMES, namespace)
    cluster_runtimes = with_builtin_runtimes(await cluster.list(r.CLUSTER_SERVING_RUNTIMES))
    admitted_services = {}
    for service_name, service in services.items():
        try:
            admitted_services[(namespace, service_name)] = admit_with_platform_checks(
                service, config=ctx.admission
            )
        except ValidationError:
            continue
    try:
        rendering = graph_rendering(admitted, admitted_services, runtimes, cluster_runtimes, ctx.settings)
    except RenderError as error:
        await _write_refusal(ctx, ig, mode, f"{error.path}: {error}")
        return
    await apply_all(cluster, rendering.objects)
    await prune(cluster, ig, INFERENCE_GRAPH_LABEL, rendering.objects)

    pods = await cluster.list(r.PODS, namespace, {INFERENCE_GRAPH_LABEL: name})
    url = None
    routed = knative = None
    if mode == KNATIVE:
        ksvc = await cluster.get(r.KNATIVE_SERVICES, name, namespace)
        latest = ((ksvc or {}).get("status") or {}).get("latestCreatedRevisionName")
        mine = [
            p
            for p in pods
            if (p["metadata"].get("labels") or {}).get("serving.knative.dev/revision") == latest
        ]
        component = knative_component(ksvc, mine, {})
        revision = component.latest if component else None
        url = ((ksvc or {}).get("status") or {}).get("url")
        if ksvc is not None:  # Knative's conditions, copied as KServe copies them
            knative = conditions_of(ksvc)
            routed = (knative.get("RoutesReady") or {}).get("status") == "True"
    else:
        deployment = await cluster.get(r.DEPLOYMENTS, name, namespace)
        revision = deployment_revision(deployment, pods) if deployment else None
        if is_cluster_local(ig):
            url = f"{ctx.settings.url_scheme}://{name}.{namespace}.svc.{ctx.settings.cluster_domain}"
        else:
            url = f"{ctx.settings.url_scheme}://{host(name, namespace, ctx.settings)}"
    failure = revision.failure.message if revision is not None and revision.failure else None
    status = inference_graph_status(
        ig,
        graph_plan(admitted, services),
        router_ready=revision is not None and revision.ready,
        router_failure=failure,
        domain=ctx.settings.ingress_domain,
        port=80,
        now=now_rfc3339(),
        previous=previous,
        routed=routed,
        knative=knative,
    )
    if "url" in status:
        status["url"] = url
    status["deploymentMode"] = mode
    await _write(ctx, ig, status)


async def _write_refusal(ctx: Context, ig: dict, mode: str, message: str) -> None:
    """The status of a graph that cannot run: its router is not ready, for `message`."""
    status = inference_graph_status(
        ig,
        graph_plan(ig, {}),
        router_ready=False,
        router_failure=message,
        domain=ctx.settings.ingress_domain,
        port=80,
        now=now_rfc3339(),
        previous=ig.get("status") or {},
    )
    await _write(ctx, ig, {**status, "deploymentMode": mode})


async def _write(ctx: Context, ig: dict, status: dict) -> None:
    if status != (ig.get("status") or {}):
        await ctx.cluster.write_status(r.INFERENCE_GRAPHS, ig, status)
