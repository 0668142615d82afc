"""The TrainedModel reconciler, as KServe's: a TrainedModel whose InferenceService does not exist is
deleted; the others get KServe's finalizer and labels, a place in their service's model ConfigMap
(`modelconfig-<isvc>-0`, while their memory fits), and a status. On delete, the ConfigMap loses the
model before the finalizer goes.

The model agent in each predictor pod (`modelplane agent`) loads what the ConfigMap lists through the
model server's repository API. The operator asks each ready predictor pod whether it holds the model
(`GET /v2/models/<name>/ready`): Ready says on how many of them it is loaded.
"""

from __future__ import annotations

import httpx

from modelplane.control.trained_models import (
    LoadState,
    memory_fits,
    memory_limit,
    parent_name,
    trained_model_labels,
    trained_model_status,
)
from modelplane.kube.meta import FINALIZERS, INFERENCE_SERVICE_LABEL
from modelplane.kube.operator import finalizers
from modelplane.kube.operator import resources as r
from modelplane.kube.operator.context import Context, now_rfc3339
from modelplane.kube.operator.services import apply_model_config

FINALIZER = FINALIZERS["TrainedModel"]
LOOK_AGAIN = 5.0  # seconds, while a model is loading on some replica
PROBE_TIMEOUT = 2.0


async def reconcile_trained_model(ctx: Context, namespace: str, name: str) -> float | None:
    cluster = ctx.cluster
    tm = await cluster.get(r.TRAINED_MODELS, name, namespace)
    if tm is None:
        return None
    parent = (
        await cluster.get(r.INFERENCE_SERVICES, parent_name(tm) or "", namespace) if parent_name(tm) else None
    )
    if finalizers.is_deleting(tm):
        if parent is not None:
            await apply_model_config(ctx, parent)
        if finalizers.has(tm, FINALIZER):
            await finalizers.remove(cluster, r.TRAINED_MODELS, tm, FINALIZER)
        return None
    if parent is None:
        await cluster.delete(r.TRAINED_MODELS, name, namespace)
        return None
    siblings = [
        t for t in await cluster.list(r.TRAINED_MODELS, namespace) if parent_name(t) == parent_name(tm)
    ]
    fits = memory_fits([t for t in siblings if not finalizers.is_deleting(t)], memory_limit(parent)).get(
        name, False
    )
    labels = trained_model_labels(tm, fits)
    if labels != (tm["metadata"].get("labels") or {}) or not finalizers.has(tm, FINALIZER):
        wanted = list(dict.fromkeys([*(tm["metadata"].get("finalizers") or []), FINALIZER]))
        patch = {
            "metadata": {
                "labels": _label_patch(tm, labels),
                "finalizers": wanted,
                "resourceVersion": tm["metadata"]["resourceVersion"],
            }
        }
        tm = await cluster.patch(r.TRAINED_MODELS, name, namespace, patch)
    await apply_model_config(ctx, parent)
    load = await _load_state(ctx, parent, name) if fits else LoadState()
    status = trained_model_status(
        tm, parent, fits=fits, load=load, now=now_rfc3339(), previous=tm.get("status")
    )
    if status != (tm.get("status") or {}):
        await cluster.write_status(r.TRAINED_MODELS, tm, status)
    return LOOK_AGAIN if load.loaded < load.replicas else None


def _label_patch(tm: dict, labels: dict) -> dict:
    """A merge patch from the TrainedModel's labels to `labels` (null removes one)."""
    patch: dict = {key: None for key in (tm["metadata"].get("labels") or {}) if key not in labels}
    patch.update(labels)
    return patch


async def _load_state(ctx: Context, isvc: dict, model: str) -> LoadState:
    """On how many ready predictor pods the model is loaded."""
    name, namespace = isvc["metadata"]["name"], isvc["metadata"].get("namespace") or "default"
    pods = await ctx.cluster.list(
        r.PODS, namespace, {INFERENCE_SERVICE_LABEL: name, "component": "predictor"}
    )
    ready = [p for p in pods if _is_ready(p)]
    loaded = 0
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
        for pod in ready:
            address = _server_address(pod)
            if address is None:
                continue
            try:
                response = await client.get(f"http://{address}/v2/models/{model}/ready")
            except httpx.HTTPError:
                continue
            loaded += response.status_code == 200
    return LoadState(replicas=len(ready), loaded=loaded)


def _is_ready(pod: dict) -> bool:
    return any(
        x.get("type") == "Ready" and x.get("status") == "True"
        for x in (pod.get("status") or {}).get("conditions") or []
    )


def _server_address(pod: dict) -> str | None:
    """`podIP:port` of the pod's model server (its `kserve-container`'s first port, else 8080)."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == "kserve-container":
            ports = container.get("ports") or []
            port = ports[0].get("containerPort") if ports else 8080
            return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    return None
