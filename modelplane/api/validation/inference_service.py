"""The rules an InferenceService must meet, with KServe's messages (`inference_service_validation.go`).

KServe stops at the first broken rule; modelplane reports all of them, each with its field path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import components, paths
from ..components import CUSTOM
from ..constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    AUTOSCALER_CLASSES,
    DEFAULT_MIN_REPLICAS,
    DEPLOYMENT_MODE_ANNOTATION,
    KNATIVE,
    LEGACY_DEPLOYMENT_MODES,
    MODEL_MESH,
    PIPELINE_PARALLEL_SIZE_ENV,
    PROTOCOL_ENV,
    PROTOCOL_V1,
    PROTOCOL_V2,
    STANDARD,
    STORAGE_URI_ENV,
    TENSOR_PARALLEL_SIZE_ENV,
    TRANSFORMER_CONTAINER,
)
from ..errors import FieldError
from .autoscaling import autoscaling_errors
from .batcher import batcher_errors
from .common import blocked_env_errors, containers_blocked_env_errors, dicts, mapping

NAME_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
NAME_RE = re.compile(f"^{NAME_FMT}$")
STORAGE_SPEC_PREFIXES = ("s3://", "hdfs://", "webhdfs://")
KBS_RESOURCE_ID = re.compile(r"^kbs:///[a-zA-Z0-9_.-]+/[a-zA-Z0-9_.-]+/[a-zA-Z0-9_.-]+$")
STORAGE_URIS_CONFLICT = "Setting both StorageURI and StorageURIs is not supported."
# KServe's controller and ModelMesh Serving's both refuse it (KServe's words); modelplane at admission.
STORAGE_PATH_CONFLICT = (
    "must provide only one of storageUri and storage.path: storageUri says where the model is, "
    "storage.path says it inside the storage of storage.key (keep storage.key and parameters for credentials)"
)
COMPONENTS = ("predictor", "transformer", "explainer")


def inference_service_errors(isvc: dict, old: dict | None = None) -> list[FieldError]:
    """Every rule a (defaulted) InferenceService breaks; `old` is the stored version on an update."""
    errors: list[FieldError] = []
    if old is not None:
        errors += _update_errors(isvc, old)
    errors += _name_errors(isvc)
    errors += _annotation_errors(isvc)
    errors += _blocked_env_errors(isvc)
    errors += _multi_node_errors(isvc)
    errors += _collocation_errors(isvc)
    errors += _standard_predictor_name_errors(isvc)
    errors += _storage_uris_errors(isvc)
    errors += _storage_path_errors(isvc)
    errors += _confidential_errors(isvc)
    errors += _component_errors(isvc)
    errors += _canary_errors(isvc)
    return errors


def _name(isvc: dict) -> str:
    return mapping(isvc.get("metadata")).get("name", "")


def _annotations(isvc: dict) -> dict:
    return mapping(mapping(isvc.get("metadata")).get("annotations"))


def _spec(isvc: dict) -> dict:
    return mapping(isvc.get("spec"))


def _invalid(isvc: dict) -> str:
    return f'the InferenceService "{_name(isvc)}" is invalid: '


def _name_errors(isvc: dict) -> Iterator[FieldError]:
    name = _name(isvc)
    if not NAME_RE.match(name):
        yield FieldError(
            "metadata.name",
            f"{_invalid(isvc)}a InferenceService name must consist of lower case alphanumeric characters or '-', "
            f'and must start with alphabetical character. (e.g. "my-name" or "abc-123", regex used for validation '
            f"is '{NAME_FMT}')",
        )


def _annotation_errors(isvc: dict) -> Iterator[FieldError]:
    annotations = _annotations(isvc)
    if AUTOSCALER_CLASS_ANNOTATION in annotations:
        value = annotations[AUTOSCALER_CLASS_ANNOTATION]
        if value not in AUTOSCALER_CLASSES:
            path = paths.join(["metadata", "annotations", AUTOSCALER_CLASS_ANNOTATION])
            yield FieldError(path, f"[{value}] is not a supported autoscaler class type")
    if DEPLOYMENT_MODE_ANNOTATION in annotations:
        mode = annotations[DEPLOYMENT_MODE_ANNOTATION]
        if mode not in (STANDARD, KNATIVE, MODEL_MESH, *LEGACY_DEPLOYMENT_MODES):
            path = paths.join(["metadata", "annotations", DEPLOYMENT_MODE_ANNOTATION])
            yield FieldError(
                path,
                f'Unsupported value: "{mode}": supported values: "{STANDARD}", "{KNATIVE}", "{MODEL_MESH}"',
            )


def _blocked_env_errors(isvc: dict) -> Iterator[FieldError]:
    prefix = _invalid(isvc)
    spec = _spec(isvc)
    predictor = mapping(spec.get("predictor"))
    yield from containers_blocked_env_errors(predictor, ["spec", "predictor"], prefix)
    for name in components.implementations("predictor", predictor):
        if name != CUSTOM:
            yield from blocked_env_errors(predictor[name], ["spec", "predictor", name], prefix)
    if isinstance(predictor.get("workerSpec"), dict):
        yield from containers_blocked_env_errors(
            predictor["workerSpec"], ["spec", "predictor", "workerSpec"], prefix
        )
    for component in ("transformer", "explainer"):
        if isinstance(spec.get(component), dict):
            yield from containers_blocked_env_errors(spec[component], ["spec", component], prefix)
    explainer = mapping(spec.get("explainer"))
    if isinstance(explainer.get("art"), dict):
        yield from blocked_env_errors(explainer["art"], ["spec", "explainer", "art"], prefix)


def _multi_node_errors(isvc: dict) -> Iterator[FieldError]:
    predictor = mapping(_spec(isvc).get("predictor"))
    worker = predictor.get("workerSpec")
    if not isinstance(worker, dict):
        return
    prefix = _invalid(isvc)
    here = ["spec", "predictor", "workerSpec"]
    if len(dicts(worker.get("containers"))) > 1:
        yield FieldError(
            paths.join([*here, "containers"]),
            f"{prefix}setting multiple containers in workerSpec is not allowed",
        )
    model = predictor.get("model")
    if isinstance(model, dict):
        yield from _multi_node_model_errors(isvc, model, prefix)
    for field, label in (
        ("pipelineParallelSize", "PipelineParallelSize"),
        ("tensorParallelSize", "TensorParallelSize"),
    ):
        size = worker.get(field)
        if size is not None and size < 1:
            yield FieldError(
                paths.join([*here, field]), f"{prefix}WorkerSpec.{label} cannot be less than 1({size})"
            )


def _multi_node_model_errors(isvc: dict, model: dict, prefix: str) -> Iterator[FieldError]:
    here = ["spec", "predictor", "model"]
    for env_name in (PIPELINE_PARALLEL_SIZE_ENV, TENSOR_PARALLEL_SIZE_ENV):
        if components.env_value(model, env_name) is not None:
            yield FieldError(
                paths.join([*here, "env"]),
                f"{prefix}setting {env_name} in environment variables is not allowed",
            )
    uri = model.get("storageUri")
    if uri is None:
        yield FieldError(
            paths.join([*here, "storageUri"]), f"{prefix}StorageURI must be set for multinode enabled"
        )
    else:
        scheme = uri.split("://")[0]
        if scheme not in ("pvc", "oci"):
            yield FieldError(
                paths.join([*here, "storageUri"]),
                f"{prefix}Multinode only supports 'pvc' and 'oci' Storage Protocol({scheme})",
            )
    autoscaler = _annotations(isvc).get(AUTOSCALER_CLASS_ANNOTATION, "")
    if autoscaler != "none":
        yield FieldError(
            paths.join(["metadata", "annotations", AUTOSCALER_CLASS_ANNOTATION]),
            f"{prefix}Multinode only supports 'none' autoscaler({autoscaler})",
        )


def _collocation_errors(isvc: dict) -> Iterator[FieldError]:
    predictor = mapping(_spec(isvc).get("predictor"))
    for index, container in enumerate(dicts(predictor.get("containers"))):
        if container.get("name") == TRANSFORMER_CONTAINER:
            if components.env_value(container, STORAGE_URI_ENV) is not None:
                yield FieldError(
                    paths.join(["spec", "predictor", "containers", index, "env"]),
                    "storage uri should not be specified in transformer container",
                )
            return


def _standard_predictor_name_errors(isvc: dict) -> Iterator[FieldError]:
    predictor = mapping(_spec(isvc).get("predictor"))
    for name in components.implementations("predictor", predictor):
        if name != CUSTOM and predictor[name].get("name"):
            yield FieldError(
                paths.join(["spec", "predictor", name, "name"]),
                "the 'name' field is not allowed in standard predictor",
            )


def _storage_uris_errors(isvc: dict) -> Iterator[FieldError]:
    spec = _spec(isvc)
    for component in ("transformer", "explainer", "predictor"):
        component_spec = spec.get(component)
        if not isinstance(component_spec, dict) or "storageUris" not in component_spec:
            continue
        here = ["spec", component, "storageUris"]
        if components.storage_uri(component, component_spec) is not None:
            yield FieldError(paths.join(here), STORAGE_URIS_CONFLICT)
        problem = _storage_uris_problem(dicts(component_spec["storageUris"]))
        if problem:
            yield FieldError(paths.join(here), problem)


def _storage_path_errors(isvc: dict) -> Iterator[FieldError]:
    predictor = mapping(_spec(isvc).get("predictor"))
    for name in components.implementations("predictor", predictor):
        implementation = mapping(predictor[name]) if name != CUSTOM else {}
        storage = mapping(implementation.get("storage"))
        if implementation.get("storageUri") is not None and storage.get("path") is not None:
            yield FieldError(
                paths.join(["spec", "predictor", name, "storage", "path"]), STORAGE_PATH_CONFLICT
            )


def _storage_uris_problem(storage_uris: list[dict]) -> str | None:
    plain_paths: list[str] = []
    pvc_paths: list[str] = []
    for entry in storage_uris:
        uri, mount_path = entry.get("uri", ""), entry.get("mountPath", "")
        if uri == "":
            return "storage URI cannot be empty"
        if mount_path == "/":
            return "storage path cannot be empty"
        if not mount_path.startswith("/"):
            return f"storage path must be absolute: {mount_path}"
        if ".." in mount_path:
            return f"storage path cannot contain '..' for security reasons: {mount_path}"
        (pvc_paths if uri.startswith("pvc://") else plain_paths).append(mount_path)
    # KServe checks PVC paths only when there are also several other paths; modelplane always does.
    if len(pvc_paths) != len(set(pvc_paths)):
        return "PVC storage paths must be unique"
    if len(plain_paths) > 1 and common_parent(plain_paths) == "/":
        shown = "[" + " ".join(plain_paths) + "]"
        return f"storage paths must have a common parent directory. Current paths: {shown} have no common parent beyond root"
    return None


def common_parent(mount_paths: list[str]) -> str:
    """The deepest folder that holds every one of `mount_paths` (`/` when only the root does)."""
    split = [[part for part in p.strip("/").split("/") if part] for p in mount_paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/" + "/".join(common) if common else "/"


def _confidential_errors(isvc: dict) -> Iterator[FieldError]:
    predictor = mapping(_spec(isvc).get("predictor"))
    names = [n for n in components.implementations("predictor", predictor) if n != CUSTOM]
    if not names:
        return
    name = names[0]
    confidential = mapping(predictor[name].get("confidential"))
    if not confidential.get("enabled"):
        return
    here = ["spec", "predictor", name]
    if not predictor[name].get("storageUri"):
        yield FieldError(
            paths.join([*here, "storageUri"]), "confidential model serving requires storageUri to be set"
        )
        return
    resource_id = confidential.get("resourceId")
    if resource_id and not KBS_RESOURCE_ID.match(resource_id):
        yield FieldError(
            paths.join([*here, "confidential", "resourceId"]),
            f'Invalid value: "{resource_id}": must be in the format kbs:///<repo>/<type>/<tag>',
        )


def _component_errors(isvc: dict) -> Iterator[FieldError]:
    spec = _spec(isvc)
    annotations = _annotations(isvc)
    for component in COMPONENTS:
        # The predictor is always there to check, even when the spec leaves it out.
        component_spec = spec.get(component, {} if component == "predictor" else None)
        if not isinstance(component_spec, dict):
            continue
        here = ["spec", component]
        found = components.implementation(component, component_spec)
        if found is None:
            yield FieldError(paths.join(here), components.exactly_one_message(component))
            continue
        yield from _implementation_errors(component, component_spec, found, here)
        yield from extension_errors(component_spec, here)
        yield from batcher_errors(component_spec, here)
        yield from autoscaling_errors(annotations, component_spec, here)


def _implementation_errors(
    component: str, spec: dict, found: tuple[str, dict], here: list
) -> Iterator[FieldError]:
    name, implementation = found
    if name == CUSTOM and component == "predictor":
        containers = dicts(spec.get("containers"))
        protocol = components.env_value(containers[0], PROTOCOL_ENV)
        if protocol is not None and protocol not in (PROTOCOL_V1, PROTOCOL_V2):
            yield FieldError(
                paths.join([*here, "containers", 0, "env"]),
                f"invalid protocol {protocol}. Must be one of [{PROTOCOL_V1}, {PROTOCOL_V2}]",
            )
    elif name == "art":
        yield from _storage_spec_errors(
            implementation, [*here, "art"], implementation.get("storageUri") or None
        )
    elif name == "onnx":
        uri = implementation.get("storageUri")
        extension = _extension(uri) if uri else ""
        if extension not in ("", ".onnx"):
            yield FieldError(
                paths.join([*here, name, "storageUri"]),
                f"expected storageUri file extension: '.onnx' but got '{extension}'",
            )
    if name in ("onnx", "tensorflow", "pytorch", "huggingface", "pmml"):
        yield from _storage_spec_errors(implementation, [*here, name], implementation.get("storageUri"))


def _extension(uri: str) -> str:
    last = uri.rsplit("/", 1)[-1]
    return last[last.rfind(".") :] if "." in last else ""


def _storage_spec_errors(implementation: dict, here: list, storage_uri: str | None) -> Iterator[FieldError]:
    storage = implementation.get("storage")
    if not isinstance(storage, dict):
        return
    prefixes = ", ".join(STORAGE_SPEC_PREFIXES)
    if storage_uri is not None:
        if not storage_uri.startswith(STORAGE_SPEC_PREFIXES):
            yield FieldError(
                paths.join([*here, "storageUri"]),
                f"storageUri, must be one of: [{prefixes}] or match https://{{}}.blob.core.windows.net/{{}}/{{}} or be "
                f"an absolute or relative local path. StorageUri [{storage_uri}] is not supported",
            )
        return
    storage_type = mapping(storage.get("parameters")).get("type")
    if storage_type is not None and not f"{storage_type}://".startswith(STORAGE_SPEC_PREFIXES):
        yield FieldError(
            paths.join([*here, "storage", "parameters", "type"]),
            f"storage.spec.type, must be one of: [{prefixes}]. storage.spec.type [{storage_type}] is not supported",
        )


MAX_CONTAINER_CONCURRENCY = 1000  # Knative's container-concurrency-max-limit, by default


def timeout_errors(timeout: object, here: list) -> Iterator[FieldError]:
    """A request timeout below 0 seconds: KServe passes it on, Knative refuses the revision (its
    timeoutSeconds must be 0 or more) and Gateway API the route, and the service never serves. 0 means
    the platform's default."""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout < 0:
        yield FieldError(paths.join(here), f"timeout must be 0 or more seconds, not {timeout}")


def extension_errors(component: dict, here: list) -> Iterator[FieldError]:
    """The checks every component's replica, concurrency and logger settings must pass."""
    concurrency = component.get("containerConcurrency")
    if concurrency is not None and concurrency < 0:
        yield FieldError(paths.join([*here, "containerConcurrency"]), "parallelism cannot be less than 0")
    elif concurrency is not None and concurrency > MAX_CONTAINER_CONCURRENCY:
        # KServe passes it on and Knative refuses the revision (its container-concurrency-max-limit);
        # a transformer would start that many worker processes.
        yield FieldError(
            paths.join([*here, "containerConcurrency"]),
            f"containerConcurrency must be at most {MAX_CONTAINER_CONCURRENCY} (Knative's limit), not {concurrency}",
        )
    canary_percent = component.get("canaryTrafficPercent")
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        # (KServe passes it on, and Knative refuses the traffic split; a typo of 150 for 15 must not
        # promote the new revision silently.)
        yield FieldError(
            paths.join([*here, "canaryTrafficPercent"]),
            f"canaryTrafficPercent must be between 0 and 100, got {canary_percent}",
        )
    yield from timeout_errors(component.get("timeout"), [*here, "timeout"])
    min_replicas = component.get("minReplicas", DEFAULT_MIN_REPLICAS)
    max_replicas = component.get("maxReplicas", 0)
    if min_replicas < 0:
        yield FieldError(paths.join([*here, "minReplicas"]), "'MinReplicas' cannot be less than 0")
    if max_replicas < 0:
        yield FieldError(paths.join([*here, "maxReplicas"]), "'MaxReplicas' cannot be less than 0")
    elif min_replicas > max_replicas and max_replicas != 0:
        yield FieldError(
            paths.join([*here, "minReplicas"]), "'MinReplicas' cannot be greater than MaxReplicas"
        )
    logger = component.get("logger")
    if isinstance(logger, dict):
        if logger.get("mode") not in ("all", "request", "response"):
            yield FieldError(paths.join([*here, "logger", "mode"]), "invalid logger type")
        storage = logger.get("storage")
        if isinstance(storage, dict) and not all(k in storage for k in ("path", "parameters", "key")):
            yield FieldError(paths.join([*here, "logger", "storage"]), "invalid logger storage configuration")


def _canary_errors(isvc: dict) -> Iterator[FieldError]:
    spec = _spec(isvc)
    canaries = dicts(spec.get("canary"))
    if not canaries:
        return
    if _annotations(isvc).get(DEPLOYMENT_MODE_ANNOTATION) != STANDARD:
        yield FieldError("spec.canary", f"canary is only supported in {STANDARD} deployment mode")
        return
    predictor = mapping(spec.get("predictor"))
    if components.storage_uri("predictor", predictor) is None and "model" not in predictor:
        yield FieldError(
            "spec.canary",
            "canary requires a stable predictor with a model (multi-model serving is not supported with canary)",
        )
        return
    stable_name = predictor.get("name", "")
    stable_min = predictor.get("minReplicas", DEFAULT_MIN_REPLICAS)
    names: set[str] = set()
    total = 0
    for index, canary in enumerate(canaries):
        error = _canary_problem(canary, index, names, stable_name, stable_min)
        if error is not None:
            yield error
            return
        total += canary.get("trafficPercent", 0)
    if total > 100:
        yield FieldError("spec.canary", f"sum of canary trafficPercent values ({total}) must be <= 100")


def _canary_problem(
    canary: dict, index: int, names: set[str], stable_name: str, stable_min: int
) -> FieldError | None:
    here = ["spec", "canary", index]
    predictor = mapping(canary.get("predictor"))
    name = predictor.get("name", "")
    if not name:
        return FieldError(
            paths.join([*here, "predictor", "name"]), f"canary[{index}] predictor.name is required"
        )
    if name in names:
        return FieldError(
            paths.join([*here, "predictor", "name"]), f'canary predictor.name "{name}" is duplicated'
        )
    names.add(name)
    if name == stable_name:
        return FieldError(
            paths.join([*here, "predictor", "name"]),
            f'canary predictor.name "{name}" conflicts with stable predictor name',
        )
    percent = canary.get("trafficPercent", 0)
    if not 0 <= percent <= 100:
        return FieldError(
            paths.join([*here, "trafficPercent"]),
            f'canary "{name}" trafficPercent must be between 0 and 100, got {percent}',
        )
    where = [*here, "predictor"]
    found = components.implementation("predictor", predictor)
    if found is None:
        return FieldError(
            paths.join(where), f'canary "{name}" predictor: {components.exactly_one_message("predictor")}'
        )
    problems = [
        *_implementation_errors("predictor", predictor, found, where),
        *extension_errors(predictor, where),
        *batcher_errors(predictor, where),
    ]
    if problems:
        return FieldError(problems[0].path, f'canary "{name}" predictor: {problems[0].message}')
    if "workerSpec" in predictor:
        return FieldError(
            paths.join([*where, "workerSpec"]),
            f'canary "{name}" must not set workerSpec (multi-node is not yet supported for canary)',
        )
    for field in ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"):
        value = predictor.get(field)
        if value is not None and (field != "maxReplicas" or value > 0):
            return FieldError(
                paths.join([*where, field]),
                f'canary "{name}" must not set {field} (canary uses fixed replicas)',
            )
    min_replicas = predictor.get("minReplicas")
    if min_replicas is not None and min_replicas > stable_min:
        return FieldError(
            paths.join([*where, "minReplicas"]),
            f'canary "{name}" minReplicas ({min_replicas}) must not exceed stable predictor minReplicas ({stable_min})',
        )
    return None


def _update_errors(isvc: dict, old: dict) -> Iterator[FieldError]:
    status_mode = mapping(old.get("status")).get("deploymentMode", "")
    annotations = _annotations(isvc)
    if status_mode and DEPLOYMENT_MODE_ANNOTATION in annotations:
        recorded = LEGACY_DEPLOYMENT_MODES.get(status_mode, status_mode)
        wanted = annotations[DEPLOYMENT_MODE_ANNOTATION]
        if wanted != recorded:
            yield FieldError(
                paths.join(["metadata", "annotations", DEPLOYMENT_MODE_ANNOTATION]),
                f"update rejected: deploymentMode cannot be changed from '{recorded}' to '{wanted}'",
            )
    new_predictor = mapping(_spec(isvc).get("predictor"))
    old_predictor = mapping(_spec(old).get("predictor"))
    if new_predictor.get("name", "") != old_predictor.get("name", "") and _predictor_storage_uri(
        new_predictor
    ) == _predictor_storage_uri(old_predictor):
        yield FieldError(
            "spec.predictor.name", "predictor.name change requires a model change (e.g. storageUri)"
        )


def _predictor_storage_uri(predictor: dict) -> str:
    model = mapping(predictor.get("model"))
    if model.get("storageUri") is not None:
        return model["storageUri"]
    return components.storage_uri("predictor", predictor) or ""
