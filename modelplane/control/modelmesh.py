"""ModelMesh mode (pure): which InferenceServices are ModelMesh models, the runtime pool that serves
them, and their status.

An InferenceService annotated `serving.kserve.io/deploymentMode: ModelMesh` is a model, not a
deployment: a ServingRuntime or ClusterServingRuntime with `multiModel: true` runs one pool of
replicas (its `replicas`, or the platform's default) that every ModelMesh service of that runtime
shares, and each service's model is loaded onto a pool replica when it is used.

A pool replica's memory is its runtime container's memory limit (else its request, else the
platform's default); what it keeps for models is that less `builtInAdapter.memBufferBytes`, the
overhead ModelMesh Serving subtracts for the server itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from modelplane.api import components
from modelplane.api import conditions as c
from modelplane.api.constants import (
    DEPLOYMENT_MODE_ANNOTATION,
    FRAMEWORK_SHORTHANDS,
    KNATIVE,
    LEGACY_DEPLOYMENT_MODES,
    MODEL_MESH,
    PREDICTOR_CONTAINER,
)
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, SERVING_RUNTIME
from modelplane.api.quantity import parse_quantity
from modelplane.api.runtime_selection import (
    RuntimeSelection,
    RuntimeSelectionError,
    supporting_runtimes,
    supports_model,
)
from modelplane.control.observed import Failure
from modelplane.control.status import _condition, failure_info, with_transition_times
from modelplane.control.urls import component_host, grpc_url, host_url, service_host

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
DEFAULT_POOL_REPLICAS = 1
# How long a pool no service uses keeps its replicas: ModelMesh Serving's `scaleToZero.gracePeriodSeconds`.
SCALE_TO_ZERO_GRACE_PERIOD = 60.0  # seconds
DEFAULT_REPLICA_MEMORY = 2 * 1024**3  # KServe's default memory for a container that sets none
DEFAULT_MEM_BUFFER = 128 * 1024**2  # what a pool replica keeps for its server, not for models
POOL_PREFIX = (
    "modelmesh-serving-"  # a pool's replicas are `modelmesh-serving-<runtime>`, as ModelMesh names them
)
MODEL_NOT_SERVED = "ModelNotServed"
NOT_HONORED_IN_MODEL_MESH = "NotHonoredInModelMesh"
# ModelMesh Serving's way to give a storageUri the storage-config key it is fetched with.
SECRET_KEY_ANNOTATION = "serving.kserve.io/secretKey"
# ModelMesh Serving's way to name the runtime of a framework predictor (`sklearn:`, ...), which has no
# `runtime` field; a `model` predictor names it with `model.runtime`, and may not use the annotation.
RUNTIME_ANNOTATION = "serving.kserve.io/servingRuntime"
# ModelMesh Serving's way to give a model's input and output schema (a file beside the model).
SCHEMA_PATH_ANNOTATION = "serving.kserve.io/schemaPath"
# What a ModelMesh predictor's model acts on; the rest of a predictor is its pool's business.
_MODEL_FIELDS = ("modelFormat", "storageUri", "storage", "runtime", "protocolVersion")


def ignored_fields(isvc: dict) -> tuple[str, ...]:
    """The fields of a ModelMesh service that are accepted but not acted on: its transformer and
    explainer, and whatever of its predictor is not the model's format, storage, runtime or protocol."""
    spec = isvc.get("spec") or {}
    found = [f"spec.{component}" for component in ("transformer", "explainer") if component in spec]
    predictor = spec.get("predictor") or {}
    found += [
        f"spec.predictor.{key}" for key in sorted(predictor) if key not in ("model", *FRAMEWORK_SHORTHANDS)
    ]
    implementation = components.first_implementation("predictor", predictor)
    if implementation is not None and implementation[0] != components.CUSTOM:
        name, model = implementation
        found += [f"spec.predictor.{name}.{key}" for key in sorted(model) if key not in _MODEL_FIELDS]
    return tuple(found)


def deployment_mode(isvc: dict) -> str:
    """KServe's resolution on `modelplane up`: the mode the status recorded, else the annotation, else
    Knative (the platform's default)."""
    recorded = (isvc.get("status") or {}).get("deploymentMode")
    written = ((isvc.get("metadata") or {}).get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION)
    mode = recorded or written or KNATIVE
    return LEGACY_DEPLOYMENT_MODES.get(mode, mode)


def is_model_mesh(isvc: dict) -> bool:
    return deployment_mode(isvc) == MODEL_MESH


def mesh_model(isvc: dict) -> dict | None:
    """The predictor's model, a framework shorthand written as `model` (ModelMesh services keep their
    shorthand at admission)."""
    predictor = (isvc.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        return None
    found = components.first_implementation("predictor", predictor)
    if found is None or found[0] == components.CUSTOM:
        return None
    name, spec = found
    model = spec if name == "model" else {"modelFormat": {"name": FRAMEWORK_SHORTHANDS[name]}, **spec}
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    key = annotations.get(SECRET_KEY_ANNOTATION)
    storage = model.get("storage") or {}
    if key and not storage.get("key"):
        model = {**model, "storage": {**storage, "key": key}}
    schema_path = annotations.get(SCHEMA_PATH_ANNOTATION)
    storage = model.get("storage") or {}
    if schema_path and not storage.get("schemaPath"):
        model = {**model, "storage": {**storage, "schemaPath": schema_path}}
    runtime = annotations.get(RUNTIME_ANNOTATION)
    if runtime and name != "model" and not model.get("runtime"):
        model = {**model, "runtime": runtime}
    return model


def model_digest(model: dict) -> str:
    """What changes when the model a service names changes (a changed model is loaded again)."""
    wanted = {k: model.get(k) for k in ("modelFormat", "storageUri", "storage", "runtime")}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:10]


def model_revision_name(name: str, digest: str) -> str:
    """A model version's id, as ModelMesh Serving names it: `<service>__isvc-<digest>`."""
    return f"{name}__isvc-{digest}"


def storage_argument(model: dict) -> str:
    """Where the model's files are, as `fetch_model` takes it: JSON of the `storage` spec and the
    storageUri beside it if there is one (the URI says where, the spec's key gives the credentials).
    A storageUri without a key reads the storage-config's `default_<type>` entry, the type its
    scheme's, as ModelMesh's puller does (the entry may be missing); one of a scheme ModelMesh does
    not fetch (hf://, oci://, a local path) is the URI alone."""
    uri = str(model.get("storageUri") or "")
    storage = dict(model.get("storage") or {})
    storage.pop("schemaPath", None)  # a file of its own: `schema_argument`
    parameters = storage.get("parameters") or {}
    kind = _storage_type(uri)
    if not storage.get("key") and "type" not in parameters and kind:
        storage["parameters"] = {**parameters, "type": kind}
    if not storage:
        return uri
    return json.dumps({"storage": storage, "storageUri": model.get("storageUri")}, sort_keys=True)


def schema_argument(model: dict) -> str:
    """Where the model's schema file is (`storage.schemaPath`, which `mesh_model` fills from the
    annotation), as `storage_argument` writes where the model is: "" for a model without one. The
    path is in the storage the model is in, as ModelMesh's puller reads it: the spec's bucket,
    container or claim, or those of the storageUri (an http one's host). RuntimeSelectionError
    (InvalidPredictorSpec) for a storageUri that is no such storage."""
    storage = dict(model.get("storage") or {})
    schema_path = str(storage.pop("schemaPath", None) or "").lstrip("/")
    if not schema_path:
        return ""
    uri = str(model.get("storageUri") or "")
    if not uri:
        return storage_argument({**model, "storage": {**storage, "path": schema_path}})
    base = _storage_root(uri)
    if base is None:
        raise RuntimeSelectionError(
            c.INVALID_PREDICTOR_SPEC,
            f"storage.schemaPath names a file in the storage the model is in, and storageUri {uri} is "
            "none ModelMesh fetches from (s3://, gs://, pvc://, http(s)://, Azure Blob)",
            "the schemaPath of a model whose storageUri is not in a bucket, container, claim or web server",
        )
    root, query = base
    return storage_argument({**model, "storage": storage, "storageUri": f"{root}/{schema_path}{query}"})


def _storage_root(uri: str) -> tuple[str, str] | None:
    """The storage a storageUri is in, as ModelMesh Serving reads it, and the URI's query (an Azure SAS
    token, say): `s3://bucket`, `gs://bucket`, `pvc://claim`, an http server, or an Azure account's
    container. None for a URI of another scheme."""
    kind = _storage_type(uri)
    if kind is None:
        return None
    parts = urlsplit(uri)
    root = f"{parts.scheme}://{parts.netloc}"
    if kind == "azure":
        root += "/" + parts.path.lstrip("/").partition("/")[0]
    return root, f"?{parts.query}" if parts.query else ""


def _storage_type(uri: str) -> str | None:
    """The storage type ModelMesh Serving gives a storageUri's scheme (None: a scheme it lacks)."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        host = rest.partition("/")[0].rpartition("@")[2].partition(":")[0].lower()
        return "azure" if host.endswith(".blob.core.windows.net") else "http"
    return {"s3": "s3", "gs": "gcs", "pvc": "pvc"}.get(scheme)


def select_pool_runtime(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> RuntimeSelection:
    """The multi-model runtime whose pool serves a ModelMesh service, or RuntimeSelectionError."""
    model = mesh_model(isvc)
    if model is None:
        raise RuntimeSelectionError(
            c.INVALID_PREDICTOR_SPEC,
            "ModelMesh serves a predictor's model, not a custom container",
            "a ModelMesh predictor needs `model` or a framework (sklearn, xgboost, ...)",
        )
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    if RUNTIME_ANNOTATION in annotations and isinstance(predictor.get("model"), dict):
        raise RuntimeSelectionError(
            c.INVALID_PREDICTOR_SPEC,
            f"the InferenceService cannot have both the model spec and the runtime annotation "
            f"{RUNTIME_ANNOTATION}: name the runtime with spec.predictor.model.runtime",
            f"both spec.predictor.model and the annotation {RUNTIME_ANNOTATION}",
        )
    if not model.get("storageUri") and not model.get("storage"):
        raise RuntimeSelectionError(
            c.INVALID_PREDICTOR_SPEC,
            "A ModelMesh predictor needs a storageUri or a storage spec",
            "the model has no storageUri or storage",
        )
    name = model.get("runtime")
    if not name:
        # As ModelMesh Serving chooses: a model that names no protocol may go to a runtime of any.
        candidates = supporting_runtimes(
            model, namespaced_runtimes, cluster_runtimes, multi_model=True, default_protocol=None
        )
        if not candidates:
            raise RuntimeSelectionError(
                c.NO_SUPPORTING_RUNTIME,
                "No runtime found to support specified framework/version",
                "no multi-model runtime (multiModel: true) supports the model's format",
            )
        return candidates[0]
    found = [(SERVING_RUNTIME.kind, r) for r in namespaced_runtimes if r["metadata"]["name"] == name]
    found += [(CLUSTER_SERVING_RUNTIME.kind, r) for r in cluster_runtimes if r["metadata"]["name"] == name]
    if not found:
        raise RuntimeSelectionError(
            c.RUNTIME_NOT_RECOGNIZED, "Waiting for runtime to become available", f"no runtime {name}"
        )
    selection = RuntimeSelection(*found[0])
    if selection.spec.get("disabled") is True:
        raise RuntimeSelectionError(
            c.RUNTIME_DISABLED, "Specified runtime is disabled", f"runtime {name} is disabled"
        )
    if selection.spec.get("multiModel") is not True:
        raise RuntimeSelectionError(
            c.INVALID_PREDICTOR_SPEC,
            f"Runtime {name} is not a multi-model runtime (multiModel: true), which ModelMesh needs",
            f"runtime {name} is not multiModel",
        )
    if not supports_model(selection.spec, model, explicit=True):
        raise RuntimeSelectionError(
            c.NO_SUPPORTING_RUNTIME,
            "Specified runtime does not support specified framework/version",
            f"runtime {name} does not support the model's format",
        )
    return selection


@dataclass(frozen=True)
class PoolSpec:
    """One runtime's pool of replicas in one namespace."""

    namespace: str
    kind: str
    runtime: str
    replicas: int
    memory: int  # bytes, each replica's
    capacity: int  # bytes, what each replica keeps for models
    formats: tuple[str, ...]  # the names of the formats the runtime serves, in its order
    warnings: tuple[str, ...] = field(default=())
    load_timeout: float | None = None  # seconds a model's load may take (builtInAdapter's); None: no limit

    @property
    def name(self) -> str:
        return f"{POOL_PREFIX}{self.runtime}"


def pool_spec(
    selection: RuntimeSelection,
    namespace: str,
    *,
    default_replicas: int = DEFAULT_POOL_REPLICAS,
    default_memory: int = DEFAULT_REPLICA_MEMORY,
) -> PoolSpec:
    spec = selection.spec
    replicas = spec.get("replicas")
    replicas = int(replicas) if isinstance(replicas, int) and replicas > 0 else default_replicas
    containers = spec.get("containers") or [{}]
    container = next((x for x in containers if x.get("name") == PREDICTOR_CONTAINER), containers[0])
    resources = container.get("resources") or {}
    memory_text = (resources.get("limits") or {}).get("memory") or (resources.get("requests") or {}).get(
        "memory"
    )
    memory = int(parse_quantity(memory_text) or Decimal(0)) if memory_text else default_memory
    adapter = spec.get("builtInAdapter") or {}
    buffer = adapter.get("memBufferBytes")
    buffer = int(buffer) if isinstance(buffer, int) and buffer >= 0 else DEFAULT_MEM_BUFFER
    load_timeout = adapter.get("modelLoadingTimeoutMillis")
    load_timeout = load_timeout / 1000 if isinstance(load_timeout, int) and load_timeout > 0 else None
    formats = [f.get("name") for f in spec.get("supportedModelFormats") or [] if f.get("name")]
    formats = list(dict.fromkeys(formats))
    return PoolSpec(
        namespace,
        selection.kind,
        selection.name,
        replicas,
        memory,
        max(memory - buffer, 0),
        tuple(formats),
        load_timeout=load_timeout,
    )


def pool_service(pool: PoolSpec, model_format: str) -> dict:
    """The multi-model InferenceService a pool's replicas run as, for one of its runtime's formats
    (their template is rendered from it: `mesh_pool_template`)."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": pool.name, "namespace": pool.namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": model_format}, "runtime": pool.runtime}}},
    }


# ---- status ----


@dataclass(frozen=True)
class MeshModelState:
    """What the platform knows of one ModelMesh service's model."""

    runtime: RuntimeSelection | None = None
    invalid: Failure | None = None  # no runtime can serve it
    pool_ready: bool = False  # at least one replica of its pool is ready
    revision: str = ""  # the model version the spec names (`model_revision_name`)
    active_revision: str | None = None  # the version that last served (None: none yet)
    copies: int = 0  # ready replicas that hold the version the spec names
    active_copies: int = 0  # ... that hold the active version, when it is another one
    loading: bool = False
    failed_copies: int = 0
    failure: Failure | None = None  # the last failure of the version the spec names
    exit: Failure | None = None  # how the process of a replica that held a copy last ended
    exit_revision: str = ""  # the version of that copy
    pool_failure: Failure | None = None  # while no replica of its pool is ready: how the last one ended


def model_status(state: MeshModelState) -> dict:
    """`modelStatus`, ModelMesh's way: `targetModelState` only while the version the spec names is not
    the one that serves (`transitionStatus` is not `UpToDate`); `lastFailureInfo` the version's last
    failure to load, else how a replica that held a copy last exited."""
    if state.invalid is not None:
        # The model of the last valid spec, if still loaded, is the active one and serves on.
        serving = state.copies + state.active_copies
        return {
            "transitionStatus": c.INVALID_SPEC,
            "states": {"activeModelState": c.LOADED if serving else "", "targetModelState": c.FAILED_TO_LOAD},
            "lastFailureInfo": failure_info(state.invalid, None),
            "copies": {"failedCopies": 0, "totalCopies": serving},
        }
    own_state = _own_state(state)
    transition = state.active_revision is not None and state.active_revision != state.revision
    status: dict = {"copies": {"failedCopies": state.failed_copies, "totalCopies": state.copies}}
    if not transition:
        status["states"] = {"activeModelState": own_state}
        if own_state == c.FAILED_TO_LOAD:
            status["states"]["targetModelState"] = c.FAILED_TO_LOAD
            status["transitionStatus"] = c.BLOCKED_BY_FAILED_LOAD
        else:
            status["transitionStatus"] = c.UP_TO_DATE
    else:
        active = c.LOADED if state.active_copies else c.STANDBY
        status["states"] = {"activeModelState": active, "targetModelState": own_state}
        blocked = own_state == c.FAILED_TO_LOAD
        status["transitionStatus"] = c.BLOCKED_BY_FAILED_LOAD if blocked else c.IN_PROGRESS
        status["copies"]["totalCopies"] = state.copies + state.active_copies
    if state.failure is not None:
        status["lastFailureInfo"] = failure_info(state.failure, state.revision)
    elif state.exit is not None:
        status["lastFailureInfo"] = failure_info(state.exit, state.exit_revision)
    elif state.pool_failure is not None:
        status["lastFailureInfo"] = failure_info(state.pool_failure, None)
    return status


def _own_state(state: MeshModelState) -> str:
    if state.failure is not None and not state.copies:
        return c.FAILED_TO_LOAD
    if state.copies:
        return c.LOADED
    if state.loading:
        return c.LOADING
    return c.STANDBY if state.pool_ready else c.PENDING


def mesh_service_status(
    isvc: dict, state: MeshModelState, *, domain: str, port: int, now: str, previous: dict | None = None
) -> dict:
    """The whole `status` of a ModelMesh InferenceService."""
    previous = previous or {}
    metadata = isvc.get("metadata") or {}
    name, namespace = metadata["name"], metadata.get("namespace") or "default"
    model = model_status(state)
    own = model["states"].get("targetModelState") or model["states"]["activeModelState"]
    # A version that failed to load in place of one that is loaded leaves that one serving.
    old_version_serves = model["states"]["activeModelState"] == c.LOADED
    if state.invalid is not None and not old_version_serves:
        predictor = _condition(FALSE, state.invalid.reason, state.invalid.message)
    elif own == c.FAILED_TO_LOAD and state.failure is not None and not old_version_serves:
        predictor = _condition(FALSE, c.MODEL_LOAD_FAILED, state.failure.message)
    elif not state.pool_ready:
        runtime = state.runtime.name if state.runtime else "its runtime"
        if state.pool_failure is not None:  # a pool that keeps failing says how, not only "not yet"
            message = f"no replica of {runtime}'s pool is ready: {state.pool_failure.message}"
            predictor = _condition(FALSE, c.RUNTIME_UNHEALTHY, message)
        else:
            predictor = _condition(UNKNOWN, "RuntimeNotReady", f"no replica of {runtime}'s pool is ready yet")
    else:
        predictor = _condition(TRUE)
    routed = state.invalid is None or old_version_serves
    ingress = _condition(TRUE) if routed else _condition(FALSE, MODEL_NOT_SERVED, "the model has no runtime")
    ready = dict(predictor) if predictor["status"] != TRUE else dict(ingress)
    found = {c.PREDICTOR_READY: predictor, c.INGRESS_READY: ingress, c.READY: ready}
    ignored = ignored_fields(isvc)
    if ignored:
        message = "Accepted but not acted on in ModelMesh mode (a pool's runtime decides): " + ", ".join(
            ignored
        )
        found[c.FIELDS_HONORED] = {
            "status": FALSE,
            "severity": "Warning",
            "reason": NOT_HONORED_IN_MODEL_MESH,
            "message": message + ".",
        }
    status: dict = {
        "observedGeneration": metadata.get("generation"),
        "conditions": with_transition_times(found, previous.get("conditions") or [], now),
        "deploymentMode": MODEL_MESH,
        "modelStatus": model,
    }
    if routed:
        status["url"] = host_url(service_host(name, namespace, domain), port)
        predictor_host = component_host(name, namespace, "predictor", domain)
        status["address"] = {"url": host_url(predictor_host, port)}
        status["components"] = {
            "predictor": {
                "url": host_url(predictor_host, port),
                "restUrl": host_url(predictor_host, port),
                "grpcUrl": grpc_url(predictor_host, port),
            }
        }
    if state.runtime is not None:
        key = (
            "servingRuntimeName"
            if state.runtime.kind == SERVING_RUNTIME.kind
            else "clusterServingRuntimeName"
        )
        status[key] = state.runtime.name
    return status
