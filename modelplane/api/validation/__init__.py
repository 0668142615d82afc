"""The semantic rules of each kind, with KServe's messages; each returns every rule broken."""

from __future__ import annotations

from collections.abc import Iterable

from ..config_maps import config_map_errors
from ..errors import FieldError
from ..kinds import (
    CLUSTER_SERVING_RUNTIME,
    CONFIG_MAP,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    SECRET,
    SERVING_RUNTIME,
    TRAINED_MODEL,
    Kind,
)
from ..secrets import secret_errors
from .common import metadata_errors
from .inference_graph import inference_graph_errors
from .inference_service import inference_service_errors
from .serving_runtime import serving_runtime_errors
from .trained_model import trained_model_errors


def semantic_errors(
    resource: dict, kind: Kind, *, old: dict | None = None, existing: Iterable[dict] = ()
) -> list[FieldError]:
    """Every rule a resource of `kind` breaks (after defaulting and the schema check)."""
    # The InferenceService and InferenceGraph name rules are stricter than the API server's, with their
    # own messages, so only theirs is checked.
    own_name_rule = kind in (INFERENCE_SERVICE, INFERENCE_GRAPH)
    errors = list(metadata_errors(resource, namespaced=kind.namespaced, check_name=not own_name_rule))
    if kind == INFERENCE_SERVICE:
        errors += inference_service_errors(resource, old)
    elif kind == INFERENCE_GRAPH:
        errors += inference_graph_errors(resource)
    elif kind in (SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME):
        errors += serving_runtime_errors(resource, existing=existing, old=old)
    elif kind == TRAINED_MODEL:
        errors += trained_model_errors(resource, old)
    elif kind == SECRET:
        errors += secret_errors(resource, old)
    elif kind == CONFIG_MAP:
        errors += config_map_errors(resource, old)
    return errors


__all__ = [
    "inference_graph_errors",
    "inference_service_errors",
    "semantic_errors",
    "serving_runtime_errors",
    "trained_model_errors",
]
