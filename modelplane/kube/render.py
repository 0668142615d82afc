"""From admitted resources to the Kubernetes objects the operator creates for them.

    rendering = render(admitted_resources, KubeSettings())   # objects, and notes on what is not acted on

ServingRuntimes and ClusterServingRuntimes are used as they are (the cluster keeps them); the built-in
ClusterServingRuntimes are there unless one of the same name is given. InferenceServices become their
components' objects in their deployment mode (the annotation, else the status's mode, else
`settings.default_mode`); InferenceGraphs their router; the TrainedModels of a multi-model predictor
its model ConfigMap.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from modelplane.api import (
    RuntimeSelectionError,
    apply_runtime,
    conditions,
    select_runtime,
    with_builtin_runtimes,
)
from modelplane.api.constants import DEPLOYMENT_MODE_ANNOTATION, KNATIVE, LEGACY_DEPLOYMENT_MODES, MODEL_MESH
from modelplane.api.kinds import (
    CLUSTER_SERVING_RUNTIME,
    CONFIG_MAP,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    SECRET,
    SERVICE_ACCOUNT,
    SERVING_RUNTIME,
    TRAINED_MODEL,
    kind_of,
)
from modelplane.control.trained_models import is_mms_predictor, parent_name
from modelplane.kube.credentials import AccountObjects
from modelplane.kube.graphs import graph_objects, service_endpoint
from modelplane.kube.knative import knative_service
from modelplane.kube.meta import namespace_of
from modelplane.kube.name_limits import too_long
from modelplane.kube.notes import (
    Note,
    credentials_notes,
    graph_notes,
    isvc_notes,
    resource_ref,
    trained_model_note,
)
from modelplane.kube.pods import ComponentError, component_pods
from modelplane.kube.settings import KubeSettings
from modelplane.kube.standard import standard_objects
from modelplane.kube.trained_models import model_config

STOP_ANNOTATION = "serving.kserve.io/stop"


class RenderError(Exception):
    """A resource that cannot become objects: `resource` (`Kind/namespace/name`), the field at fault
    and why (`reason`: KServe's modelStatus reason)."""

    def __init__(self, resource: str, path: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.resource = resource
        self.path = path
        self.reason = reason


@dataclass
class Rendering:
    objects: list[dict] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def deployment_mode(resource: dict, settings: KubeSettings) -> str:
    """KServe's resolution: the status's mode, else the annotation, else the installation's default."""
    recorded = (resource.get("status") or {}).get("deploymentMode")
    written = ((resource.get("metadata") or {}).get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION)
    mode = recorded or written or settings.default_mode
    return LEGACY_DEPLOYMENT_MODES.get(mode, mode)


def is_stopped(resource: dict) -> bool:
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(STOP_ANNOTATION, "")).lower() == "true"


def render(resources: Sequence[dict], settings: KubeSettings) -> Rendering:
    """The objects of every resource, in order (RenderError for one that cannot run)."""
    namespaced = [r for r in resources if kind_of(r) == SERVING_RUNTIME]
    cluster = with_builtin_runtimes([r for r in resources if kind_of(r) == CLUSTER_SERVING_RUNTIME])
    services = {
        (namespace_of(r), r["metadata"]["name"]): r for r in resources if kind_of(r) == INFERENCE_SERVICE
    }
    trained = [r for r in resources if kind_of(r) == TRAINED_MODEL]
    rendering = Rendering()
    for resource in resources:
        kind = kind_of(resource)
        namespace = namespace_of(resource)
        runtimes = [r for r in namespaced if namespace_of(r) == namespace]
        if kind == INFERENCE_SERVICE:
            models = [tm for tm in trained if namespace_of(tm) == namespace]
            accounts = _input_accounts(resources, namespace)
            rendering.objects += isvc_objects(
                resource, runtimes, cluster, settings, models, accounts=accounts
            )
            if not is_stopped(resource):
                rendering.notes += isvc_notes(resource, deployment_mode(resource, settings), settings)
                rendering.notes += credentials_notes(resource, accounts)
        elif kind == INFERENCE_GRAPH and not is_stopped(resource):
            graph = graph_rendering(resource, services, runtimes, cluster, settings)
            rendering.objects += graph.objects
            rendering.notes += graph.notes
        elif kind == TRAINED_MODEL:
            note = _trained_model_note(resource, services.get((namespace, parent_name(resource))))
            rendering.notes += [note] if note else []
        elif kind in (SECRET, CONFIG_MAP, SERVICE_ACCOUNT):  # already Kubernetes objects: as they are
            rendering.objects.append(resource)
    return rendering


def isvc_objects(
    isvc: dict,
    namespaced_runtimes: Sequence[dict],
    cluster_runtimes: Sequence[dict],
    settings: KubeSettings,
    trained_models: Sequence[dict] = (),
    *,
    ready_canaries: Collection[str] | None = None,
    accounts: AccountObjects | None = None,
) -> list[dict]:
    """The objects of one admitted InferenceService (none while `serving.kserve.io/stop` is "true").

    `cluster_runtimes` are those in effect (with the built-in ones); `trained_models` those of its
    namespace (the ones naming it go in its model ConfigMap); `ready_canaries` the names of the
    Standard-mode canaries that are ready (None: all of them); `accounts` the ServiceAccounts and
    Secrets of its namespace, whose storage credentials its pods get (None: none).
    """
    if is_stopped(isvc):
        return []
    mode = deployment_mode(isvc, settings)
    if mode == MODEL_MESH:
        raise RenderError(
            resource_ref(isvc),
            f"metadata.annotations[{DEPLOYMENT_MODE_ANNOTATION}]",
            conditions.INVALID_PREDICTOR_SPEC,
            "the ModelMesh mode is served by modelplane up; on a cluster it needs ModelMesh Serving",
        )
    namespace = namespace_of(isvc)
    try:
        pods = component_pods(isvc, namespaced_runtimes, cluster_runtimes, settings, mode, accounts)
    except ComponentError as exc:
        raise RenderError(resource_ref(isvc), exc.path, exc.reason, str(exc)) from None
    if mode == KNATIVE:
        components_status = (isvc.get("status") or {}).get("components") or {}
        objects = [
            knative_service(
                isvc,
                pod,
                namespace,
                rolled_out=(components_status.get(pod.component) or {}).get("latestRolledoutRevision"),
            )
            for pod in pods
        ]
    else:
        objects = standard_objects(isvc, pods, settings, ready_canaries=ready_canaries)
    _check_name_limits(isvc, objects)
    if is_mms_predictor(isvc):
        objects.append(model_config(isvc, namespace, trained_models))
    return objects


def _check_name_limits(resource: dict, objects: list[dict]) -> None:
    problem = too_long(objects)
    if problem:
        raise RenderError(resource_ref(resource), "metadata.name", conditions.INVALID_PREDICTOR_SPEC, problem)


def _input_accounts(resources: Sequence[dict], namespace: str) -> AccountObjects:
    """The ServiceAccounts and Secrets of a namespace in `render`'s input (others may be on the cluster)."""
    mine = [r for r in resources if namespace_of(r) == namespace]
    return AccountObjects(
        namespace,
        {r["metadata"]["name"]: r for r in mine if kind_of(r) == SERVICE_ACCOUNT},
        {r["metadata"]["name"]: r for r in mine if kind_of(r) == SECRET},
        complete=False,
    )


def _trained_model_note(tm: dict, isvc: dict | None) -> Note | None:
    """Why a TrainedModel is in no model ConfigMap, if it is not."""
    parent = parent_name(tm)
    if isvc is None:
        message = f"InferenceService {parent} is not in the input, so neither is the ConfigMap that lists its models"
    elif not is_mms_predictor(isvc):
        message = (
            f"InferenceService {parent} has a model of its own (a storageUri), so it serves no TrainedModels"
        )
    else:
        return trained_model_note(tm)
    return Note(resource_ref(tm), "spec.inferenceService", message)


def graph_rendering(
    ig: dict,
    services: dict[tuple[str, str], dict],
    namespaced_runtimes: Sequence[dict],
    cluster_runtimes: Sequence[dict],
    settings: KubeSettings,
) -> Rendering:
    """A graph's objects; a service it names that is not in the input is taken to be a v1 model of its
    name in Standard mode's shape, and said so. RenderError for a name too long for its objects."""
    namespace = namespace_of(ig)
    missing: list[str] = []

    def endpoint_of(name: str) -> str:
        isvc = services.get((namespace, name))
        if isvc is None:
            missing.append(name)
            isvc = {"kind": INFERENCE_SERVICE.kind, "metadata": {"name": name, "namespace": namespace}}
        return service_endpoint(_with_runtime(isvc, namespaced_runtimes, cluster_runtimes), settings)

    mode = deployment_mode(ig, settings)
    rendering = Rendering(graph_objects(ig, mode, settings, endpoint_of), graph_notes(ig, mode))
    _check_name_limits(ig, rendering.objects)
    for name in dict.fromkeys(missing):
        message = (
            f"InferenceService {name} is not in the input: its URL is taken to be {endpoint_of(name)} "
            "(a v1 model of its name)"
        )
        rendering.notes.append(Note(resource_ref(ig), "spec.nodes", message))
    return rendering


def _with_runtime(isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]) -> dict:
    """The InferenceService with its runtime's choices (its protocol), when one can be chosen."""
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model")
    if not isinstance(model, dict):
        return isvc
    try:
        return apply_runtime(isvc, select_runtime(isvc, namespaced_runtimes, cluster_runtimes))
    except RuntimeSelectionError:
        return isvc
