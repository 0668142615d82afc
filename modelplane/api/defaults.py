"""Defaults, applied as KServe's mutating webhook applies them to an InferenceService.

- the legacy deploymentMode values `RawDeployment`/`Serverless` become `Standard`/`Knative`, and a
  configured `Standard` or `ModelMesh` default is written onto a resource without the annotation;
- a framework shorthand (`sklearn:`, `xgboost:`...) becomes `model:` with `modelFormat.name` set
  (outside ModelMesh mode), with protocol `v2` for triton, onnx and huggingface; on an update, a
  shorthand next to the `model` stored before replaces it (see `_shorthand_to_model`);
- `model.protocolVersion` becomes `v2` for the triton and vLLM formats, and the `modelFormat`
  annotation records the format;
- custom containers get the `kserve-container` name and the configured resource requests and limits.

`modelplane apply` replaces a resource's metadata whole; a TrainedModel applied again keeps the labels
its controller keeps, which record where the model has its place (`applied_over`).

Other kinds have no defaulting webhook; only their schema's `default:` values apply (see `schema.py`).
"""

from __future__ import annotations

import copy

from . import components, schema
from .config import DEFAULT_CONFIG, AdmissionConfig
from .constants import (
    DEPLOYMENT_MODE_ANNOTATION,
    FRAMEWORK_SHORTHANDS,
    LEGACY_DEPLOYMENT_MODES,
    MODEL_FORMAT_ANNOTATION,
    MODEL_MESH,
    PREDICTOR_CONTAINER,
    PROTOCOL_V2,
    STANDARD,
    TRAINED_MODEL_ALLOCATED_LABEL,
    TRAINED_MODEL_SERVICE_LABEL,
    V2_MODEL_FORMATS,
    V2_SHORTHANDS,
)
from .kinds import TRAINED_MODEL, kind_of


def default_inference_service(
    isvc: dict, config: AdmissionConfig = DEFAULT_CONFIG, *, old: dict | None = None
) -> dict:
    """A defaulted copy of an InferenceService; `old` is the stored one when this is an update."""
    isvc = copy.deepcopy(isvc)
    metadata = isvc.setdefault("metadata", {})
    spec = isvc.get("spec")
    mode = _default_deployment_mode(metadata, config)
    if not isinstance(spec, dict):
        return isvc

    names = ["transformer", "explainer"]
    predictor = spec.get("predictor")
    if mode != MODEL_MESH and isinstance(predictor, dict):
        _shorthand_to_model(predictor, _stored_model(old))
        _default_model(predictor, metadata)
        names.append("predictor")
    for name in names:
        component = spec.get(name)
        if isinstance(component, dict):
            _default_implementation(name, component, config)

    if not config.automount_service_account_token:
        for name in ("predictor", "transformer", "explainer"):
            if isinstance(spec.get(name), dict):
                spec[name].setdefault("automountServiceAccountToken", False)
    return isvc


def _default_deployment_mode(metadata: dict, config: AdmissionConfig) -> str | None:
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict) and DEPLOYMENT_MODE_ANNOTATION in annotations:
        mode = annotations[DEPLOYMENT_MODE_ANNOTATION]
        if mode in LEGACY_DEPLOYMENT_MODES:
            mode = annotations[DEPLOYMENT_MODE_ANNOTATION] = LEGACY_DEPLOYMENT_MODES[mode]
        return mode
    if config.default_deployment_mode in (STANDARD, MODEL_MESH):
        metadata.setdefault("annotations", {})[DEPLOYMENT_MODE_ANNOTATION] = config.default_deployment_mode
    return None


def _stored_model(old: dict | None) -> dict | None:
    predictor = ((old or {}).get("spec") or {}).get("predictor")
    model = predictor.get("model") if isinstance(predictor, dict) else None
    return model if isinstance(model, dict) else None


def _shorthand_to_model(predictor: dict, stored_model: dict | None) -> None:
    """KServe turns the first shorthand it finds into `model`, replacing any `model` there.

    modelplane replaces only the `model` stored before, unchanged: that is what an update such as
    kubectl's three-way merge patch carries next to the shorthand the user's file still has (the
    shorthand is again what the user wrote). A `model` the user wrote next to a shorthand is left
    alone, so that validation refuses the two ("exactly one of ...") rather than drop one.
    """
    shorthand = next((name for name in FRAMEWORK_SHORTHANDS if isinstance(predictor.get(name), dict)), None)
    if shorthand is None:
        return
    if "model" in predictor:
        if stored_model is None or schema.prune_nulls(predictor["model"]) != schema.prune_nulls(stored_model):
            return
        del predictor["model"]
    spec = predictor.pop(shorthand)
    if shorthand in V2_SHORTHANDS:
        spec.setdefault("protocolVersion", PROTOCOL_V2)
    predictor["model"] = {"modelFormat": {"name": FRAMEWORK_SHORTHANDS[shorthand]}, **spec}


def _default_model(predictor: dict, metadata: dict) -> None:
    model = predictor.get("model")
    if not isinstance(model, dict):
        return
    model_format = model.get("modelFormat")
    name = model_format.get("name") if isinstance(model_format, dict) else None
    if name in V2_MODEL_FORMATS:
        model.setdefault("protocolVersion", PROTOCOL_V2)
    if isinstance(name, str) and name:
        annotations = metadata.setdefault("annotations", {})
        if isinstance(annotations, dict):
            annotations.setdefault(MODEL_FORMAT_ANNOTATION, name)


def _default_implementation(component: str, spec: dict, config: AdmissionConfig) -> None:
    found = components.implementation(component, spec)
    if found is None:
        return
    name, _ = found
    if name == components.CUSTOM:
        containers = spec["containers"]
        first = containers[0]
        if not isinstance(first, dict):
            return
        # A predictor names its only (or unnamed first) container; a transformer or explainer always
        # renames its first one.
        if component != "predictor" or len(containers) == 1 or not first.get("name"):
            first["name"] = PREDICTOR_CONTAINER
        _default_resources(first, config)
    elif name == "art":
        art = spec["art"]
        art["name"] = PREDICTOR_CONTAINER
        art.setdefault("runtimeVersion", config.art_default_image_version)
        _default_resources(art, config)


def _default_resources(container: dict, config: AdmissionConfig) -> None:
    for key in ("requests", "limits"):
        defaults = config.resource_defaults.get(key) or {}
        if not defaults:
            continue
        values = container.setdefault("resources", {}).setdefault(key, {})
        for resource, quantity in defaults.items():
            values.setdefault(resource, quantity)


def applied_over(resource: dict, stored: dict) -> dict:
    """What `modelplane apply` of `resource` stores over `stored`: the resource as written, except that a
    TrainedModel keeps the labels its controller keeps when the file leaves them out (`kubectl apply`
    keeps them too, as labels it never applied): a file applied again must not take a model's place
    in memory from it."""
    if kind_of(resource) != TRAINED_MODEL:
        return resource
    labels = (stored.get("metadata") or {}).get("labels") or {}
    written = (resource.get("metadata") or {}).get("labels") or {}
    kept = {
        key: labels[key]
        for key in (TRAINED_MODEL_SERVICE_LABEL, TRAINED_MODEL_ALLOCATED_LABEL)
        if key in labels and key not in written
    }
    if not kept or not isinstance(resource.get("metadata"), dict):
        return resource
    resource = copy.deepcopy(resource)
    resource["metadata"]["labels"] = {**written, **kept}
    return resource
