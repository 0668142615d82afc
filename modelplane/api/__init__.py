"""Resources of the serving.kserve.io API: loading, defaults, validation and runtime selection.

The lowest layer of modelplane: pure functions over plain dicts (a resource as parsed from YAML).

    docs = load_path("examples/")                  # LoadError names file:line
    stored = admit(docs[0].resource, old=None)     # defaulted, or ValidationError with field paths
    choice = select_runtime(stored, namespaced_runtimes, builtin_cluster_runtimes())
"""

import importlib
from typing import Any

# Each public name and the module it comes from. They are imported on first use, so that a process
# needing one small module (the CLI's `get` reads only the kinds) does not load every other.
_SOURCES = {
    "AdmissionConfig": "config",
    "CLUSTER_SERVING_RUNTIME": "kinds",
    "DEFAULT_CONFIG": "config",
    "Document": "loader",
    "FieldError": "errors",
    "INFERENCE_GRAPH": "kinds",
    "INFERENCE_SERVICE": "kinds",
    "KINDS": "kinds",
    "Kind": "kinds",
    "LoadError": "errors",
    "RuntimeSelection": "runtime_selection",
    "RuntimeSelectionError": "runtime_selection",
    "SERVING_RUNTIME": "kinds",
    "TRAINED_MODEL": "kinds",
    "TemplateError": "templates",
    "ValidationError": "errors",
    "admit": "admission",
    "apply_runtime": "runtime_defaults",
    "builtin_cluster_runtimes": "builtin_runtimes",
    "builtin_runtime_names": "builtin_runtimes",
    "default_inference_service": "defaults",
    "inference_graph_errors": "validation",
    "kind_named": "kinds",
    "kind_of": "kinds",
    "load_file": "loader",
    "load_path": "loader",
    "load_text": "loader",
    "lowest_protocol": "runtime_selection",
    "render": "templates",
    "render_container": "templates",
    "select_runtime": "runtime_selection",
    "server_type": "runtime_defaults",
    "supporting_runtimes": "runtime_selection",
    "unknown_fields": "admission",
    "with_builtin_runtimes": "builtin_runtimes",
}
__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
