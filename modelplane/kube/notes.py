"""What the objects of a resource do not act on, said rather than silently dropped: each a field path
of the resource and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from modelplane.api import components
from modelplane.api.constants import HPA_METRICS, KNATIVE, STANDARD
from modelplane.control.hpa_metrics import HPA, KEDA
from modelplane.control.revision_templates import COMPONENTS
from modelplane.kube.autoscalers import autoscaler_class
from modelplane.kube.credentials import AccountObjects
from modelplane.kube.knative import dropped_initial_scale
from modelplane.kube.meta import is_cluster_local
from modelplane.kube.settings import KubeSettings
from modelplane.kube.storage_initializer import fetches_from_container_filesystem
from modelplane.storage.errors import InvalidURIError
from modelplane.storage.uri import parse_uri


@dataclass(frozen=True)
class Note:
    """What to know about a field (a path in `resource`, which is `Kind/namespace/name`), most often
    that it is accepted but not acted on."""

    resource: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def isvc_notes(isvc: dict, mode: str, settings: KubeSettings) -> list[Note]:
    where = resource_ref(isvc)
    return [Note(where, path, message) for path, message in _isvc_fields(isvc, mode, settings)]


def credentials_notes(isvc: dict, accounts: AccountObjects) -> list[Note]:
    """What the service's ServiceAccount gives that its pods' storage credentials leave out (read by
    `accounts.credentials` as the service's objects were made)."""
    where = resource_ref(isvc)
    return [Note(where, _credentials_field(why), why) for why in dict.fromkeys(accounts.unread)]


def _credentials_field(why: str) -> str:
    return (
        "spec.predictor.imagePullSecrets"
        if why.startswith("image pull secret")
        else "spec.predictor.serviceAccountName"
    )


def graph_notes(ig: dict, mode: str) -> list[Note]:
    where = resource_ref(ig)
    if mode == KNATIVE:
        dropped = _initial_scale((ig.get("metadata") or {}).get("annotations"), "metadata.annotations")
        return [Note(where, path, message) for path, message in dropped]
    if mode != STANDARD:
        return []
    scaling = _standard_scaling(ig.get("spec") or {}, "spec", autoscaler_class(ig))
    return [Note(where, path, message) for path, message in scaling]


def trained_model_note(tm: dict) -> Note | None:
    """A storageUri the model agent cannot fetch in the pod: a path in its own container, or a claim it
    does not mount (modelplane up reads both on its machine)."""
    uri = ((tm.get("spec") or {}).get("model") or {}).get("storageUri") or ""
    try:
        kind = parse_uri(uri).kind
    except InvalidURIError:
        return None
    if kind not in ("local", "pvc"):
        return None
    where = (
        "a path inside the model agent's container" if kind == "local" else "a claim the agent does not mount"
    )
    message = f"{uri} is {where}, where no model is; on a cluster use s3://, gs://, https:// or Azure Blob"
    return Note(resource_ref(tm), "spec.model.storageUri", message)


def resource_ref(resource: dict) -> str:
    metadata = resource.get("metadata") or {}
    return f"{resource.get('kind')}/{metadata.get('namespace') or ''}/{metadata.get('name')}"


def _isvc_fields(isvc: dict, mode: str, settings: KubeSettings) -> Iterator[tuple[str, str]]:
    spec = isvc.get("spec") or {}
    klass = autoscaler_class(isvc)
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    if mode == KNATIVE and "serving.kserve.io/autoscalerClass" in annotations:
        yield (
            "metadata.annotations.serving.kserve.io/autoscalerClass",
            "not acted on in Knative mode, which scales by autoscaling.knative.dev/class",
        )
    if mode == KNATIVE:
        yield from _initial_scale(annotations, "metadata.annotations")
    for component in COMPONENTS:
        component_spec = spec.get(component)
        if not isinstance(component_spec, dict):
            continue
        path = f"spec.{component}"
        if mode == KNATIVE:
            yield from _initial_scale(component_spec.get("annotations"), f"{path}.annotations")
        for field, why in (
            (
                "storageContainerName",
                "not acted on: modelplane's storage initializer fetches every model",
            ),
            ("workerSpec", "not acted on: multi-node serving is not supported"),
        ):
            if component_spec.get(field):
                yield f"{path}.{field}", why
        if mode == STANDARD:
            yield from _standard_scaling(component_spec, path, klass)
        found = components.first_implementation(component, component_spec)
        uri = components.storage_uri(component, component_spec) if found else None
        try:
            local = fetches_from_container_filesystem(uri)
        except InvalidURIError:
            local = False
        if local:
            field = "containers" if found and found[0] == components.CUSTOM else f"{found[0]}.storageUri"
            yield (
                f"{path}.{field}",
                f"{uri} is a path inside the storage-initializer container, where no model is; "
                "on a cluster use pvc://, s3://, gs://, https:// or Azure Blob",
            )
    if spec.get("canary") and not settings.gateway_api and not is_cluster_local(isvc):
        yield (
            "spec.canary",
            "an Ingress cannot split traffic: the canaries get none except through their own hosts",
        )


def _initial_scale(annotations: object, path: str) -> Iterator[tuple[str, str]]:
    """An `initial-scale` among `annotations` (at `path`) that the Knative Service is made without."""
    value = dropped_initial_scale(annotations if isinstance(annotations, dict) else {})
    if value is not None:
        yield (
            f"{path}.autoscaling.knative.dev/initial-scale",
            f"{value!r} is not an integer: left out of the Knative Service (as KServe leaves it out), "
            "which starts at Knative's initial scale",
        )


def _standard_scaling(component_spec: dict, path: str, klass: str) -> Iterator[tuple[str, str]]:
    if component_spec.get("canaryTrafficPercent") is not None:
        yield (
            f"{path}.canaryTrafficPercent",
            "not acted on in Standard mode, whose canaries are spec.canary",
        )
    if component_spec.get("containerConcurrency"):
        yield (
            f"{path}.containerConcurrency",
            "not enforced in Standard mode (Knative's queue-proxy enforces it); a transformer gets it as --workers",
        )
    if klass == KEDA:
        metrics = (component_spec.get("autoScaling") or {}).get("metrics") or []
        for index, metric in enumerate(metrics):
            source = ((metric or {}).get("external") or {}).get("metric") or {}
            if source.get("namespace") and (source.get("backend") or "prometheus") != "prometheus":
                yield (
                    f"{path}.autoScaling.metrics[{index}].external.metric.namespace",
                    "only a prometheus trigger takes a namespace (as in KServe): not passed to KEDA",
                )
    if klass == HPA:
        metric = component_spec.get("scaleMetric")
        if metric and metric not in HPA_METRICS:
            yield f"{path}.scaleMetric", f"an HPA scales on cpu or memory, not {metric}: it scales on cpu"
        if component_spec.get("minReplicas") == 0:
            yield f"{path}.minReplicas", "an HPA cannot scale to zero: it keeps 1 replica"
