"""TrainedModels: which InferenceServices serve them, which fit, and their status (pure).

An InferenceService whose predictor has no `storageUri`, `storage` or `storageUris` (and is not a Hugging
Face model) is a multi-model (MMS) predictor: its replicas start with an empty model folder and load the
TrainedModels that name the service as their `spec.inferenceService`. A custom predictor is one when its
`kserve-container` sets `MULTI_MODEL_SERVER=true`. The rule is `components.is_multi_model_predictor`,
which both platforms' pods follow. The TrainedModels of a service share each replica's memory, the predictor
container's memory limit, as ModelMesh's models share a pool replica's (`memory_fits`): a model placed
keeps its place, one that does not fit waits (`MemoryResourceAvailable` False) until room is freed, and
when the models placed no longer fit together the least recently used leave.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from modelplane.api import components
from modelplane.api import conditions as c
from modelplane.api.constants import (
    MULTI_MODEL_SERVER_ENV,
    PROTOCOL_GRPC_V2,
    PROTOCOL_V2,
    TRAINED_MODEL_ALLOCATED_LABEL,
    TRAINED_MODEL_SERVICE_LABEL,
)
from modelplane.api.quantity import parse_quantity
from modelplane.control.placement import Copy, DoesNotFit, ReplicaRoom, over_capacity, place
from modelplane.control.status import (
    _condition,  # (shared within modelplane.control)
    with_transition_times,
)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
SERVICE_LABEL = TRAINED_MODEL_SERVICE_LABEL
ALLOCATED_LABEL = TRAINED_MODEL_ALLOCATED_LABEL
MODEL_LOAD_FAILED = "ModelLoadFailed"
MODEL_LOADING = "ModelLoading"


@dataclass(frozen=True)
class LoadState:
    """How a TrainedModel fares on the replicas of its service that are ready."""

    replicas: int = 0  # ready replicas of the service's predictor
    loaded: int = 0  # of them, those that hold this model as it is now
    failure: str | None = None  # why the last fetch or load failed, if it did


def parent_name(tm: dict) -> str | None:
    return ((tm.get("spec") or {}).get("inferenceService")) or None


def _predictor_implementation(isvc: dict) -> tuple[str, dict] | None:
    predictor = (isvc.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        return None
    return components.first_implementation("predictor", predictor)


def is_mms_predictor(isvc: dict) -> bool:
    """Whether the service's predictor serves TrainedModels (`components.is_multi_model_predictor`)."""
    predictor = (isvc.get("spec") or {}).get("predictor")
    return isinstance(predictor, dict) and components.is_multi_model_predictor(predictor)


def is_multi_model_template(template: dict) -> bool:
    """Whether a revision's replicas are multi-model servers (each gets an empty model folder)."""
    env = template.get("env") or {}
    return not template.get("storage") and str(env.get(MULTI_MODEL_SERVER_ENV, "")).lower() == "true"


def memory_limit(isvc: dict) -> Decimal | None:
    """The predictor container's memory limit, if it sets one."""
    found = _predictor_implementation(isvc)
    if found is None:
        return None
    limits = ((found[1].get("resources") or {}).get("limits")) or {}
    return parse_quantity(limits.get("memory")) if "memory" in limits else None


def memory_fits(
    trained_models: Iterable[dict], limit: Decimal | None, last_used: Mapping[str, float] | None = None
) -> dict[str, bool]:
    """Whether each TrainedModel of a service has its place in a replica's memory, by the placement of
    ModelMesh's pools (`modelplane.control.placement`). Every replica of the service holds the same
    models, in the predictor container's memory limit, each taking its `spec.model.memory`:

    - the models placed before (labelled `trainedmodel-allocated`) keep their place; when they no longer
      fit together (the service's memory limit was lowered), the least recently used leave
      (`last_used`: when a request last reached each; those never seen go first, newest created first);
    - the others take the room that is left, in the order they were created: one that does not fit
      waits, and no model in place is unloaded for it.
    """
    ordered = sorted(
        trained_models,
        key=lambda tm: ((tm.get("metadata") or {}).get("creationTimestamp") or "", tm["metadata"]["name"]),
    )
    if limit is None:
        return {tm["metadata"]["name"]: True for tm in ordered}
    last_used = last_used or {}
    placed = [tm for tm in ordered if _allocated(tm)]
    copies = tuple(
        Copy(tm["metadata"]["name"], _memory(tm), last_used.get(tm["metadata"]["name"], 0.0))
        for tm in reversed(placed)
    )
    room = ReplicaRoom("replica", int(limit), copies)
    leaving = set(over_capacity(room))
    room = ReplicaRoom("replica", int(limit), tuple(x for x in copies if x.model not in leaving))
    fits = {tm["metadata"]["name"]: tm["metadata"]["name"] not in leaving for tm in placed}
    for tm in ordered:
        name = tm["metadata"]["name"]
        if name in fits:
            continue
        try:
            place(_memory(tm), [room], pinned={copy.model for copy in room.copies})
        except DoesNotFit:
            fits[name] = False
            continue
        fits[name] = True
        room = ReplicaRoom(room.address, room.capacity, (*room.copies, Copy(name, _memory(tm), 0.0)))
    return fits


def _allocated(tm: dict) -> bool:
    labels = (tm.get("metadata") or {}).get("labels") or {}
    return labels.get(ALLOCATED_LABEL) is not None and labels.get(ALLOCATED_LABEL) == parent_name(tm)


def _memory(tm: dict) -> int:
    return int(parse_quantity(((tm.get("spec") or {}).get("model") or {}).get("memory")) or Decimal(0))


def model_digest(tm: dict) -> str:
    """What changes when the model a TrainedModel names changes (a changed spec is reloaded)."""
    model = (tm.get("spec") or {}).get("model") or {}
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def model_path(isvc: dict, name: str) -> str:
    """The path that predicts with a TrainedModel, by the predictor's protocol."""
    found = _predictor_implementation(isvc)
    protocol = (found[1].get("protocolVersion") if found else None) or ""
    if protocol in (PROTOCOL_V2, PROTOCOL_GRPC_V2):
        return f"/v2/models/{name}/infer"
    return f"/v1/models/{name}:predict"


def trained_model_status(
    tm: dict, isvc: dict, *, fits: bool, load: LoadState, now: str, previous: dict | None = None
) -> dict:
    """The whole `status` of a TrainedModel whose InferenceService exists."""
    name = tm["metadata"]["name"]
    isvc_status = isvc.get("status") or {}
    isvc_ready = any(
        cond.get("type") == c.READY and cond.get("status") == TRUE
        for cond in isvc_status.get("conditions") or []
    )
    found = {
        c.INFERENCE_SERVICE_READY: _condition(TRUE)
        if isvc_ready
        else _condition(
            FALSE,
            c.INFERENCE_SERVICE_NOT_READY,
            "Inference Service needs to be ready before Trained Model can be ready",
        ),
        c.IS_MMS_PREDICTOR: _condition(TRUE)
        if is_mms_predictor(isvc)
        else _condition(
            FALSE,
            c.IS_NOT_MMS_PREDICTOR,
            "Inference Service predictor is not configured for multi-model serving",
        ),
        c.MEMORY_RESOURCE_AVAILABLE: _condition(TRUE)
        if fits
        else _condition(
            FALSE,
            c.MEMORY_RESOURCE_NOT_AVAILABLE,
            "Inference Service does not have enough memory resources for Trained Model",
        ),
    }
    found[c.READY] = _ready(found, load)
    status: dict = {
        "observedGeneration": (tm.get("metadata") or {}).get("generation"),
        "conditions": with_transition_times(found, (previous or {}).get("conditions") or [], now),
    }
    path = model_path(isvc, name)
    if isvc_status.get("url"):
        status["url"] = isvc_status["url"] + path
    address = (isvc_status.get("address") or {}).get("url")
    if address:
        status["address"] = {"url": address + path}
    return status


def _ready(found: dict[str, dict], load: LoadState) -> dict:
    for condition in found.values():
        if condition["status"] != TRUE:
            return dict(condition)
    if load.failure:
        return _condition(FALSE, MODEL_LOAD_FAILED, load.failure)
    if load.loaded < load.replicas:
        return _condition(
            UNKNOWN, MODEL_LOADING, f"The model is loaded on {load.loaded} of {load.replicas} replicas."
        )
    return _condition(TRUE)


def trained_model_labels(tm: dict, fits: bool) -> dict[str, str]:
    """The TrainedModel's labels with the ones KServe's controller keeps: the service it belongs to,
    and, while it fits in that service's memory, the service it is allocated to."""
    labels = dict((tm.get("metadata") or {}).get("labels") or {})
    service = (tm.get("spec") or {}).get("inferenceService")
    labels[SERVICE_LABEL] = service
    if fits:
        labels[ALLOCATED_LABEL] = service
    else:
        labels.pop(ALLOCATED_LABEL, None)
    return labels
