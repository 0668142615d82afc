"""The rules a ServingRuntime or ClusterServingRuntime must meet, with KServe's messages
(`servingruntime_webhook.go`). Priorities are checked against the other runtimes of the same scope."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import paths
from ..constants import PIPELINE_PARALLEL_SIZE_ENV, PREDICTOR_CONTAINER, TENSOR_PARALLEL_SIZE_ENV
from ..errors import FieldError
from .common import blocked_env_errors, dicts, mapping


def serving_runtime_errors(
    runtime: dict, *, existing: Iterable[dict] = (), old: dict | None = None
) -> list[FieldError]:
    """Every rule a runtime breaks. `existing` are the other runtimes of its scope (its namespace, or the
    cluster); `old` is the stored version on an update."""
    spec = mapping(runtime.get("spec"))
    metadata = mapping(runtime.get("metadata"))
    kind, name = runtime.get("kind", "ServingRuntime"), metadata.get("name", "")
    if spec.get("disabled") is True:
        # KServe admits a disabled runtime without looking at it.
        return []
    errors: list[FieldError] = []
    problem = _same_format_priority_problem(spec)
    if problem:
        under = "servingruntime" if kind == "ServingRuntime" else "clusterservingruntime"
        errors.append(FieldError("spec.supportedModelFormats", f"{problem} under the {under} {name}"))
    for other in existing:
        other_name = mapping(other.get("metadata")).get("name", "")
        problem = _priority_conflict(spec, mapping(other.get("spec")), name, other_name)
        if problem:
            if kind == "ServingRuntime":
                where = f"in the servingruntimes {other_name} and {name} in namespace {metadata.get('namespace', '')}"
            else:
                where = f"in the clusterservingruntimes {other_name} and {name}"
            errors.append(FieldError("spec.supportedModelFormats", f"{problem} {where}"))
    old_spec = mapping(old.get("spec")) if old is not None else {}
    for error in _multi_node_errors(spec, old_spec):
        errors.append(FieldError(error.path, f"the {kind} {name} is invalid: {error.message}"))
    prefix = f'the {kind} "{name}" is invalid: '
    for index, container in enumerate(dicts(spec.get("containers"))):
        errors += blocked_env_errors(container, ["spec", "containers", index], prefix)
    worker = mapping(spec.get("workerSpec"))
    for index, container in enumerate(dicts(worker.get("containers"))):
        errors += blocked_env_errors(container, ["spec", "workerSpec", "containers", index], prefix)
    load_timeout = mapping(spec.get("builtInAdapter")).get("modelLoadingTimeoutMillis")
    if load_timeout is not None and (not isinstance(load_timeout, int) or load_timeout <= 0):
        # (ModelMesh would load with no limit; modelplane refuses what it could not act on.)
        errors.append(
            FieldError(
                "spec.builtInAdapter.modelLoadingTimeoutMillis",
                f"{prefix}modelLoadingTimeoutMillis must be a number of milliseconds above 0, not {load_timeout!r}",
            )
        )
    return errors


def _auto_selected(model_format: dict) -> bool:
    return model_format.get("autoSelect") is True


def _same_format_priority_problem(spec: dict) -> str | None:
    priorities: dict[str, int | None] = {}
    for model_format in dicts(spec.get("supportedModelFormats")):
        if not _auto_selected(model_format):
            continue
        name, priority = model_format.get("name"), model_format.get("priority")
        if name not in priorities:
            priorities[name] = priority
        elif priorities[name] is not None and priority is not None and priorities[name] != priority:
            return f"different priorities assigned for the model format {name}"
    return None


def _priority_conflict(spec: dict, other: dict, name: str, other_name: str) -> str | None:
    if (
        bool(spec.get("multiModel")) != bool(other.get("multiModel"))
        or other.get("disabled") is True
        or name == other_name
    ):
        return None
    protocols = set(spec.get("protocolVersions") or [])
    if not any(p in protocols for p in other.get("protocolVersions") or []):
        return None
    for theirs in dicts(other.get("supportedModelFormats")):
        for ours in dicts(spec.get("supportedModelFormats")):
            if (
                _auto_selected(theirs)
                and _auto_selected(ours)
                and str(theirs.get("name", "")).lower() == str(ours.get("name", "")).lower()
                and theirs.get("version") == ours.get("version")
                and theirs.get("priority") is not None
                and theirs.get("priority") == ours.get("priority")
            ):
                return f"same priority assigned for the model format {ours.get('name')}"
    return None


def _multi_node_errors(spec: dict, old_spec: dict) -> Iterator[FieldError]:
    worker = spec.get("workerSpec")
    if "workerSpec" in old_spec and worker is None:
        yield FieldError("spec.workerSpec", "removing workerSpec where it already exists is not allowed")
        return
    if not isinstance(worker, dict):
        return
    if len(dicts(worker.get("containers"))) > 1:
        yield FieldError(
            "spec.workerSpec.containers", "setting multiple containers in workerSpec is not allowed"
        )
    for index, container in enumerate(dicts(spec.get("containers"))):
        if container.get("name") != PREDICTOR_CONTAINER:
            continue
        names = {env.get("name") for env in dicts(container.get("env"))}
        for env_name in (PIPELINE_PARALLEL_SIZE_ENV, TENSOR_PARALLEL_SIZE_ENV):
            if env_name in names:
                yield FieldError(
                    paths.join(["spec", "containers", index, "env"]),
                    f"setting {env_name} in environment variables is not allowed",
                )
    for field, label in (
        ("pipelineParallelSize", "PipelineParallelSize"),
        ("tensorParallelSize", "TensorParallelSize"),
    ):
        size = worker.get(field, 1)
        if size < 1:
            yield FieldError(
                paths.join(["spec", "workerSpec", field]),
                f"the WorkerSpec.{label} cannot be less than 1({size})",
            )
