"""Resources of the serving.kserve.io API: loading, defaults, validation and runtime selection.

The lowest layer of modelplane: pure functions over plain dicts (a resource as parsed from YAML).

    docs = load_path("examples/")                  # LoadError names file:line
    stored = admit(docs[0].resource, old=None)     # defaulted, or ValidationError with field paths
    choice = select_runtime(stored, namespaced_runtimes, builtin_cluster_runtimes())
"""

from .admission import admit, unknown_fields
from .builtin_runtimes import builtin_cluster_runtimes, builtin_runtime_names, with_builtin_runtimes
from .config import DEFAULT_CONFIG, AdmissionConfig
from .defaults import default_inference_service
from .errors import FieldError, LoadError, ValidationError
from .kinds import (
    CLUSTER_SERVING_RUNTIME,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    KINDS,
    SERVING_RUNTIME,
    TRAINED_MODEL,
    Kind,
    kind_named,
    kind_of,
)
from .loader import Document, load_file, load_path, load_text
from .runtime_defaults import apply_runtime, server_type
from .runtime_selection import (
    RuntimeSelection,
    RuntimeSelectionError,
    lowest_protocol,
    select_runtime,
    supporting_runtimes,
)
from .templates import TemplateError, render, render_container
from .validation import inference_graph_errors

__all__ = [
    "CLUSTER_SERVING_RUNTIME",
    "DEFAULT_CONFIG",
    "INFERENCE_GRAPH",
    "INFERENCE_SERVICE",
    "KINDS",
    "SERVING_RUNTIME",
    "TRAINED_MODEL",
    "AdmissionConfig",
    "Document",
    "FieldError",
    "Kind",
    "LoadError",
    "RuntimeSelection",
    "RuntimeSelectionError",
    "TemplateError",
    "ValidationError",
    "admit",
    "apply_runtime",
    "builtin_cluster_runtimes",
    "builtin_runtime_names",
    "default_inference_service",
    "inference_graph_errors",
    "kind_named",
    "kind_of",
    "load_file",
    "load_path",
    "load_text",
    "lowest_protocol",
    "render",
    "render_container",
    "select_runtime",
    "server_type",
    "supporting_runtimes",
    "unknown_fields",
    "with_builtin_runtimes",
]
