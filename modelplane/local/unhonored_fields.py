"""Fields one machine cannot honor: accepted, and said so on `apply` and in the status.

`modelplane up` runs every replica on this machine, so the fields that choose a node, or rank pods
for a scheduler, have nothing to act on: `nodeSelector`, `affinity`, `tolerations` and the others in
`SCHEDULING_FIELDS`. Of a container's `resources`, `cpu`, `memory` and `nvidia.com/gpu` are acted on
(`replica_resources.py`); other resources (`ephemeral-storage`, `hugepages-2Mi`, another vendor's
GPUs) are not. A pod-level `resources` is acted on for `cpu` and `memory`, as Kubernetes allows. A
`logger`'s blob-storage settings (`storage`, `marshallerUrl`, `batchSize`, `batchInterval`) are not:
the gateway sends each event to the logger's `url`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from modelplane.api import paths
from modelplane.api.constants import FRAMEWORK_SHORTHANDS
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, INFERENCE_GRAPH, INFERENCE_SERVICE, SERVING_RUNTIME
from modelplane.control.payload_logging import BLOB_STORAGE_FIELDS
from modelplane.local.replica_resources import ACTED_ON

SCHEDULING_FIELDS = (
    "nodeSelector",
    "nodeName",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "schedulerName",
    "schedulingGates",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "runtimeClassName",
    "overhead",
    "resourceClaims",
)
COMPONENTS = ("predictor", "transformer", "explainer")
_POD_RESOURCES = ("cpu", "memory")
_ONE_MACHINE = "every replica runs on this machine"
_RESOURCES_ACTED_ON = "modelplane up acts on cpu, memory and nvidia.com/gpu"
_POD_RESOURCES_ACTED_ON = "pod-level resources are cpu and memory"
_BLOB_LOGGING = "payload events go to the logger's url; modelplane up writes no blob storage"
Path = list[str | int]


@dataclass(frozen=True)
class Unhonored:
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def unhonored_fields(resource: dict) -> list[Unhonored]:
    """The fields of a resource (as written, or as stored) that are accepted but not acted on."""
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return []
    kind = resource.get("kind")
    found: list[Unhonored] = []
    if kind == INFERENCE_SERVICE.kind:
        for component in COMPONENTS:
            found += _pod(spec.get(component), ["spec", component])
            found += _blob_logging(spec.get(component), ["spec", component, "logger"])
        for index, canary in enumerate(_dicts(spec.get("canary"))):
            found += _pod(canary.get("predictor"), ["spec", "canary", index, "predictor"])
    elif kind in (SERVING_RUNTIME.kind, CLUSTER_SERVING_RUNTIME.kind):
        found += _pod(spec, ["spec"])
    elif kind == INFERENCE_GRAPH.kind:  # its `resources` are its router's, as a container's
        found += _scheduling(spec, ["spec"]) + _resources(spec.get("resources"), ["spec", "resources"])
    return found


def service_unhonored(
    isvc: dict, runtime: Mapping[str, str] | None = None, runtimes: Iterable[dict] = ()
) -> tuple[str, ...]:
    """An InferenceService's unhonored fields, and those of the runtime its predictor uses (`runtime`
    is its kind and name, found among `runtimes`), for its status."""
    found = [str(field) for field in unhonored_fields(isvc)]
    for candidate in runtimes if runtime is not None else ():
        if (candidate.get("kind"), candidate["metadata"].get("name")) == (runtime["kind"], runtime["name"]):
            found += [
                f"{runtime['kind']} {runtime['name']}: {field}" for field in unhonored_fields(candidate)
            ]
            break
    return tuple(found)


def _pod(spec: object, path: Path) -> list[Unhonored]:
    """A pod spec's scheduling fields and resources, and its containers' resources."""
    if not isinstance(spec, dict):
        return []
    found = _scheduling(spec, path)
    found += _resources(spec.get("resources"), [*path, "resources"], _POD_RESOURCES, _POD_RESOURCES_ACTED_ON)
    for container_path, container in _containers(spec, path):
        found += _resources(container.get("resources"), [*container_path, "resources"])
    found += _pod(spec.get("workerSpec"), [*path, "workerSpec"])
    return found


def _blob_logging(component: object, path: Path) -> list[Unhonored]:
    logger = component.get("logger") if isinstance(component, dict) else None
    if not isinstance(logger, dict):
        return []
    return [
        Unhonored(paths.join([*path, name]), _BLOB_LOGGING)
        for name in BLOB_STORAGE_FIELDS
        if logger.get(name) not in (None, "", {}, 0)
    ]


def _scheduling(spec: dict, path: Path) -> list[Unhonored]:
    return [
        Unhonored(paths.join([*path, name]), _ONE_MACHINE)
        for name in SCHEDULING_FIELDS
        if spec.get(name) not in (None, "", {}, [])
    ]


def _containers(spec: dict, path: Path) -> Iterator[tuple[Path, dict]]:
    for index, container in enumerate(_dicts(spec.get("containers"))):
        yield [*path, "containers", index], container
    for name in ("model", "art", *FRAMEWORK_SHORTHANDS):
        if isinstance(spec.get(name), dict):
            yield [*path, name], spec[name]


def _resources(
    resources: object, path: Path, acted_on: tuple[str, ...] = ACTED_ON, why: str = _RESOURCES_ACTED_ON
) -> list[Unhonored]:
    if not isinstance(resources, dict):
        return []
    return [
        Unhonored(paths.join([*path, kind, name]), why)
        for kind in ("limits", "requests")
        if isinstance(resources.get(kind), dict)
        for name in resources[kind]
        if name not in acted_on
    ]


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
