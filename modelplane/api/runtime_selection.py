"""Choosing the ServingRuntime or ClusterServingRuntime that serves an InferenceService's model.

An explicit `model.runtime` is looked up by name (namespace first, then cluster). Otherwise each scope's
runtimes are ranked (lowest protocol, newest, name), filtered (enabled, single-model, multi-node as the
predictor, the model format auto-selected, the protocol supported), stably sorted by the format's
priority, and the namespaced ones come before every cluster-scoped one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from . import conditions
from .constants import PROTOCOL_V1, PROTOCOL_VERSIONS
from .kinds import CLUSTER_SERVING_RUNTIME, SERVING_RUNTIME


class RuntimeSelectionError(Exception):
    """No runtime can serve the model. `reason` is the modelStatus.lastFailureInfo reason, `message` its
    message; `str()` is the controller's error text."""

    def __init__(self, reason: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.message = message


class RuntimeSelection(NamedTuple):
    """The chosen runtime and its kind (`ServingRuntime` or `ClusterServingRuntime`)."""

    kind: str
    runtime: dict

    @property
    def name(self) -> str:
        return self.runtime["metadata"]["name"]

    @property
    def spec(self) -> dict:
        return self.runtime.get("spec") or {}


def select_runtime(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> RuntimeSelection:
    """The runtime for a defaulted InferenceService's `predictor.model`, or RuntimeSelectionError.

    `namespaced_runtimes` are the ServingRuntimes of the InferenceService's namespace.
    """
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model")
    if not isinstance(model, dict):
        raise RuntimeSelectionError(
            conditions.INVALID_PREDICTOR_SPEC,
            "The predictor has no model",
            "the predictor has no model to serve",
        )
    runtime_name = model.get("runtime")
    if runtime_name:
        return _explicit_runtime(model, runtime_name, namespaced_runtimes, cluster_runtimes)
    candidates = supporting_runtimes(
        model, namespaced_runtimes, cluster_runtimes, multi_node="workerSpec" in predictor
    )
    if not candidates:
        model_format = model.get("modelFormat") or {}
        raise RuntimeSelectionError(
            conditions.NO_SUPPORTING_RUNTIME,
            "No runtime found to support specified framework/version",
            f"no runtime found to support predictor with model type: {_format_text(model_format)}",
        )
    return candidates[0]


def supporting_runtimes(
    model: dict,
    namespaced_runtimes: Sequence[dict],
    cluster_runtimes: Sequence[dict],
    *,
    multi_model: bool = False,
    multi_node: bool = False,
    default_protocol: str | None = PROTOCOL_V1,
) -> list[RuntimeSelection]:
    """Every runtime that may auto-serve the model, best first. A model that names no protocol speaks
    `default_protocol` (None: any)."""
    protocol = model.get("protocolVersion") or default_protocol
    selections: list[RuntimeSelection] = []
    for kind, runtimes in (
        (SERVING_RUNTIME.kind, namespaced_runtimes),
        (CLUSTER_SERVING_RUNTIME.kind, cluster_runtimes),
    ):
        supporting = [
            runtime
            for runtime in sorted(runtimes, key=_rank)
            if _spec(runtime).get("disabled") is not True
            and bool(_spec(runtime).get("multiModel")) == multi_model
            and ("workerSpec" in _spec(runtime)) == multi_node
            and supports_model(_spec(runtime), model, explicit=False)
            and supports_protocol(_spec(runtime), protocol)
        ]
        format_name = (model.get("modelFormat") or {}).get("name")
        supporting.sort(key=lambda runtime: _priority_key(_spec(runtime), format_name))
        selections += [RuntimeSelection(kind, runtime) for runtime in supporting]
    return selections


def supports_model(runtime_spec: dict, model: dict, *, explicit: bool) -> bool:
    """Whether a runtime lists the model's format (and version, exactly, when the model names one).

    For auto-selection only formats with `autoSelect: true` count; an explicit runtime counts them all.
    """
    model_format = model.get("modelFormat") or {}
    wanted = _format_label(model_format.get("name"), model_format.get("version"))
    offered: set[str] = set()
    for supported in runtime_spec.get("supportedModelFormats") or []:
        if explicit or supported.get("autoSelect") is True:
            offered.add(_format_label(supported.get("name"), None))
            if supported.get("version") is not None:
                offered.add(_format_label(supported.get("name"), supported.get("version")))
    return wanted in offered


def supports_protocol(runtime_spec: dict, protocol: str | None) -> bool:
    """Whether a runtime speaks a protocol; a runtime that lists none speaks them all."""
    versions = runtime_spec.get("protocolVersions") or []
    return not protocol or not versions or protocol in versions


def lowest_protocol(runtime_spec: dict) -> str | None:
    """The runtime's first protocol in the order v1, v2, grpc-v1, grpc-v2; None if it lists none it knows."""
    rank = _protocol_rank(runtime_spec)
    return PROTOCOL_VERSIONS[rank] if rank < len(PROTOCOL_VERSIONS) else None


def _explicit_runtime(
    model: dict, name: str, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> RuntimeSelection:
    selection = _find(name, namespaced_runtimes, cluster_runtimes)
    if selection is None:
        raise RuntimeSelectionError(
            conditions.RUNTIME_NOT_RECOGNIZED,
            "Waiting for runtime to become available",
            f"No ServingRuntimes or ClusterServingRuntimes with the name: {name}",
        )
    if selection.spec.get("disabled") is True:
        raise RuntimeSelectionError(
            conditions.RUNTIME_DISABLED,
            "Specified runtime is disabled",
            f"specified runtime {name} is disabled",
        )
    protocol = model.get("protocolVersion")
    if protocol and not supports_protocol(selection.spec, protocol):
        raise RuntimeSelectionError(
            conditions.NO_SUPPORTING_RUNTIME,
            "Specified runtime does not support specified protocol version",
            f"specified runtime {name} does not support specified protocol version",
        )
    if not supports_model(selection.spec, model, explicit=True):
        raise RuntimeSelectionError(
            conditions.NO_SUPPORTING_RUNTIME,
            "Specified runtime does not support specified framework/version",
            f"specified runtime {name} does not support specified framework/version",
        )
    return selection


def _find(
    name: str, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> RuntimeSelection | None:
    for kind, runtimes in (
        (SERVING_RUNTIME.kind, namespaced_runtimes),
        (CLUSTER_SERVING_RUNTIME.kind, cluster_runtimes),
    ):
        for runtime in runtimes:
            if (runtime.get("metadata") or {}).get("name") == name:
                return RuntimeSelection(kind, runtime)
    return None


def _spec(runtime: dict) -> dict:
    return runtime.get("spec") or {}


def _format_label(name: object, version: object) -> str:
    return f"mt:{name}" if version is None else f"mt:{name}:{version}"


def _format_text(model_format: dict) -> str:
    # The controller prints the Go struct: {name 0xc000...}; modelplane prints the version itself.
    version = model_format.get("version")
    return "{" + str(model_format.get("name", "")) + (f" {version}" if version is not None else "") + "}"


def _protocol_rank(runtime_spec: dict) -> int:
    versions = runtime_spec.get("protocolVersions") or []
    ranks = [
        PROTOCOL_VERSIONS.index(v) if v in PROTOCOL_VERSIONS else len(PROTOCOL_VERSIONS) for v in versions
    ]
    return min(ranks, default=len(PROTOCOL_VERSIONS))


def _rank(runtime: dict) -> tuple:
    # Lowest protocol first, then newest, then by name. RFC 3339 timestamps sort as text; a runtime
    # without one counts as the oldest.
    metadata = runtime.get("metadata") or {}
    created = str(metadata.get("creationTimestamp") or "")
    return (_protocol_rank(_spec(runtime)), _Descending(created), str(metadata.get("name", "")))


class _Descending:
    """Wraps a value so that sorting puts larger values first."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value


def _priority_key(runtime_spec: dict, format_name: object) -> tuple[int, int]:
    # Runtimes with a priority for the format come first, highest first; the sort is stable otherwise.
    for supported in runtime_spec.get("supportedModelFormats") or []:
        if supported.get("name") == format_name:
            priority = supported.get("priority")
            return (0, -priority) if priority is not None else (1, 0)
    return (1, 0)
