"""Fields one machine cannot honor: accepted, and said so on `apply` and in the status; and the few
it refuses.

Which fields those are is `api/field_dispositions.py`'s tables; this module finds them in a resource. It
walks the resource next to its kind's schema, so a list item or a map value finds the rule of its
pattern, and says each warned field once, at the field its rule names
(`spec.predictor.containers[0].livenessProbe`). A value that asks for nothing (empty, or a rule's
quiet default such as `protocol: TCP`) says nothing. Of a map with acted-on keys (`resources.limits`),
each other key is said (`limits[amd.com/gpu]`).

A component runs one container: an InferenceService's other containers, and a runtime's other than
its `kserve-container`, are said too; and any object's `metadata.finalizers`, as nothing waits for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from modelplane.api import components, paths
from modelplane.api.builtin_runtimes import BUILT_IN_ANNOTATION
from modelplane.api.constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    HPA_METRICS,
    KNATIVE,
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    KNATIVE_HPA_CLASS,
    MODEL_MESH,
    PREDICTOR_CONTAINER,
    STANDARD,
)
from modelplane.api.kinds import (
    CLUSTER_SERVING_RUNTIME,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    SERVICE_ACCOUNT,
    SERVING_RUNTIME,
    TRAINED_MODEL,
)
from modelplane.api.schema import openapi_schema
from modelplane.control.autoscaling_settings import INITIAL_SCALE, ignored_initial_scale
from modelplane.control.hpa_metrics import KNATIVE_METRIC, resource_scaling_spec
from modelplane.control.modelmesh import deployment_mode
from modelplane.control.payload_logging import blob_fields_unused
from modelplane.local.api.field_dispositions import SCHEMA_FOR_MODEL_MESH, Disposition, rule_for
from modelplane.local.api.unhonored_metadata import unhonored_metadata

_KINDS = {
    kind.kind: kind
    for kind in (INFERENCE_SERVICE, INFERENCE_GRAPH, SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME, TRAINED_MODEL)
}
_EMPTY = (None, "", {}, [])
_ONE_CONTAINER = "a replica runs one container, and this is not it"
_ACCOUNT_FIELDS = ("serviceAccountName", "serviceAccount")
_SECRET_BY_NAME = "a ServiceAccount's Secret is read by its name, in the account's namespace"
_MESH_CREDENTIALS = (
    "a ModelMesh model is fetched with the storage-config Secret, as ModelMesh Serving fetches it"
)
_REQUEST_SCALING = "it types a cpu or memory target, and this component scales on its requests"
_ONE_MODEL_POOL = (
    "a ModelMesh pool's setting, and this runtime is not multiModel: each service runs its own replicas"
)
_KNATIVE_AUTOSCALES = (
    "KServe reads it in Standard mode only: in Knative mode Knative's autoscaler scales the component "
    "(autoscaling.knative.dev/class)"
)
_STANDARD_CANARY = (
    "KServe's Standard mode does not split traffic by it (its canaries are spec.canary): a new revision "
    "takes all the traffic once it is ready"
)
_NOTHING_ROLLED_OUT = (
    "a new service's first revision takes all the traffic: the percent splits the revision of a later "
    "change from this one"
)
COMPONENTS = ("predictor", "transformer", "explainer")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token
WARNED, REFUSED = Disposition.WARNED, Disposition.REFUSED
Path = list[str | int]
Found = tuple[str, Disposition, str]  # a field's path, what is done with it, and why


@dataclass(frozen=True)
class Unhonored:
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def unhonored_fields(resource: dict) -> list[Unhonored]:
    """The fields of a resource (as written, or as stored) that are accepted but not acted on."""
    found = [
        Unhonored(path, why) for path, disposition, why in _set_fields(resource) if disposition == WARNED
    ]
    return _once(
        found
        + _containers_not_run(resource)
        + _read_only_with(resource)
        + _account_fields(resource)
        + _pool_fields_of_one_model_runtime(resource)
        + _finalizers(resource)
        + _kserve_metadata(resource)
        + _dropped_initial_scales(resource)
        + _logger_headers_no_request_has(resource)
        + _custom_hpa_metrics(resource)
    )


def _kserve_metadata(resource: dict) -> list[Unhonored]:
    """An InferenceService's annotations and labels that KServe or Knative act on and one machine does
    not, and misspelt ones under their prefixes (unhonored_metadata.py)."""
    metadata = resource.get("metadata")
    if resource.get("kind") != INFERENCE_SERVICE.kind or not isinstance(metadata, dict):
        return []
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), dict) else {}
    model_mesh = deployment_mode(resource) == MODEL_MESH
    return [Unhonored(path, why) for path, why in unhonored_metadata(annotations, labels, model_mesh)]


def _dropped_initial_scales(resource: dict) -> list[Unhonored]:
    """An `initial-scale` in a component's or a runtime's annotations that KServe drops (the service's
    is `_kserve_metadata`'s)."""
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return []
    if resource.get("kind") == INFERENCE_SERVICE.kind:
        where = [
            (["spec", name, "annotations"], (spec.get(name) or {}).get("annotations"))
            for name in COMPONENTS
            if isinstance(spec.get(name), dict)
        ]
    elif resource.get("kind") in (SERVING_RUNTIME.kind, CLUSTER_SERVING_RUNTIME.kind):
        where = [(["spec", "annotations"], spec.get("annotations"))]
    else:
        return []
    found = []
    for path, given in where:
        if isinstance(given, dict) and INITIAL_SCALE in given:
            why = ignored_initial_scale(given[INITIAL_SCALE])
            if why:
                found.append(Unhonored(paths.join([*path, INITIAL_SCALE]), why))
    return found


def _finalizers(resource: dict) -> list[Unhonored]:
    """Any object's finalizers: a delete removes the object at once, with no `deletionTimestamp` for
    a finalizer's owner to act on."""
    metadata = resource.get("metadata")
    if isinstance(metadata, dict) and metadata.get("finalizers"):
        return [Unhonored("metadata.finalizers", _NO_FINALIZERS)]
    return []


def _logger_headers_no_request_has(resource: dict) -> list[Unhonored]:
    """A logger's `metadataHeaders` entries that are not header names (`"bad header!"`): no request
    can carry them, so they would never be copied into an event."""
    spec = resource.get("spec")
    if resource.get("kind") != INFERENCE_SERVICE.kind or not isinstance(spec, dict):
        return []
    found = []
    for name in COMPONENTS:
        logger = spec.get(name).get("logger") if isinstance(spec.get(name), dict) else None
        headers = logger.get("metadataHeaders") if isinstance(logger, dict) else None
        for index, header in enumerate(headers if isinstance(headers, list) else []):
            if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
                path = f"spec.{name}.logger.metadataHeaders[{index}]"
                found.append(Unhonored(path, f"{header!r} is not a header name: no request carries it"))
    return found


def _pool_fields_of_one_model_runtime(resource: dict) -> list[Unhonored]:
    """A runtime's ModelMesh pool settings, which only a `multiModel` runtime has a pool to act on."""
    spec = resource.get("spec")
    kinds = (SERVING_RUNTIME.kind, CLUSTER_SERVING_RUNTIME.kind)
    if resource.get("kind") not in kinds or not isinstance(spec, dict) or spec.get("multiModel"):
        return []
    adapter = spec.get("builtInAdapter")
    fields = {
        "spec.replicas": spec.get("replicas"),
        "spec.builtInAdapter.memBufferBytes": adapter.get("memBufferBytes")
        if isinstance(adapter, dict)
        else None,
    }
    return [Unhonored(path, _ONE_MODEL_POOL) for path, value in fields.items() if value is not None]


def _account_fields(resource: dict) -> list[Unhonored]:
    """A ServiceAccount's fields that nothing reads: its Secrets are named (they are of its own
    namespace, as in Kubernetes), and no token is mounted."""
    if resource.get("kind") != SERVICE_ACCOUNT.kind:
        return []
    found = []
    if resource.get("automountServiceAccountToken"):
        found.append(Unhonored("automountServiceAccountToken", "no service account token is mounted"))
    for index, ref in enumerate(resource.get("secrets") or []):
        for field in sorted(set(ref) - {"name"} if isinstance(ref, dict) else ()):
            found.append(Unhonored(f"secrets[{index}].{field}", _SECRET_BY_NAME))
    return found


def unhonored_warnings(resource: dict) -> list[str]:
    """The warnings an API server sends about them, as `kubectl apply` prints them."""
    return _warnings(unhonored_fields(resource))


def first_revision_warnings(resource: dict) -> list[str]:
    return _warnings(first_revision_unhonored(resource))


def _warnings(fields: list[Unhonored]) -> list[str]:
    return [f"{field.path}: accepted but not acted on: {field.why}" for field in fields]


def refused_fields(resource: dict) -> list[Unhonored]:
    """The fields of a resource that modelplane up refuses, each with the refusal's message."""
    return _once(
        [Unhonored(path, why) for path, disposition, why in _set_fields(resource) if disposition == REFUSED]
    )


def service_unhonored(
    isvc: dict, runtime: Mapping[str, str] | None = None, runtimes: Iterable[dict] = ()
) -> tuple[str, ...]:
    """An InferenceService's unhonored fields, and those of the runtime its predictor uses (`runtime`
    is its kind and name, found among `runtimes`), for its status. A built-in runtime's fields are
    modelplane's own, not the user's: they say nothing."""
    found = [str(field) for field in unhonored_fields(isvc)]
    for candidate in runtimes if runtime is not None else ():
        metadata = candidate.get("metadata") or {}
        if (candidate.get("kind"), metadata.get("name")) == (runtime["kind"], runtime["name"]):
            if BUILT_IN_ANNOTATION not in (metadata.get("annotations") or {}):
                found += [
                    f"{runtime['kind']} {runtime['name']}: {field}" for field in unhonored_fields(candidate)
                ]
            break
    return tuple(found)


def _set_fields(resource: dict) -> Iterator[Found]:
    """Each field set in `resource` that is warned or refused: the path its rule names, what is done
    with it, and why."""
    kind = _KINDS.get(resource.get("kind"))  # type: ignore[arg-type]
    spec = resource.get("spec")
    if kind is None or not isinstance(spec, dict):
        return
    schema = openapi_schema(kind)["properties"]["spec"]
    yield from _walk(kind.kind, spec, schema, ["spec"], ("spec",))


def _walk(kind: str, value: object, schema: dict, path: Path, segments: tuple[str, ...]) -> Iterator[Found]:
    if value in _EMPTY:
        return
    properties = schema.get("properties")
    items = schema.get("items")
    extra = schema.get("additionalProperties")
    if isinstance(value, dict) and properties:
        for name, child in value.items():
            if name in properties:  # a field the schema does not know is warned about as unknown
                yield from _walk(kind, child, properties[name], [*path, name], (*segments, name))
    elif (
        isinstance(value, dict)
        and isinstance(extra, dict)
        and (extra.get("properties") or extra.get("items"))
    ):
        for key, child in value.items():
            yield from _walk(kind, child, extra, [*path, key], (*segments, "{}"))
    elif (
        isinstance(value, list)
        and isinstance(items, dict)
        and (items.get("properties") or items.get("items"))
    ):
        for index, child in enumerate(value):
            yield from _walk(kind, child, items, [*path, index], (*segments, "[]"))
    else:
        yield from _leaf(kind, value, path, segments)


def _leaf(kind: str, value: object, path: Path, segments: tuple[str, ...]) -> Iterator[Found]:
    found = rule_for(kind, segments)
    if found is None:
        return
    length, rule = found
    if rule.keys is not None and isinstance(value, dict):
        for name in value:
            if name not in rule.keys:
                yield paths.join([*path, name]), WARNED, rule.why
    elif rule.disposition != Disposition.ACTED and value not in rule.quiet:
        yield paths.join(path[:length]), rule.disposition, rule.why


def _containers_not_run(resource: dict) -> list[Unhonored]:
    """The containers that do not run: a runtime's other than its `kserve-container` (else its
    first), and a component's other than the one it runs."""
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return []
    kind = resource.get("kind")
    if kind in (SERVING_RUNTIME.kind, CLUSTER_SERVING_RUNTIME.kind):
        containers = _dicts(spec.get("containers"))
        named = [c for c in containers if c.get("name") == PREDICTOR_CONTAINER]
        return _others(["spec"], containers, (named or containers)[0] if containers else None)
    if kind != INFERENCE_SERVICE.kind:
        return []
    parts = [(name, ["spec", name], spec.get(name)) for name in COMPONENTS]
    for index, canary in enumerate(_dicts(spec.get("canary"))):
        parts.append(("predictor", ["spec", "canary", index, "predictor"], canary.get("predictor")))
    found = []
    for component, path, part in parts:
        if isinstance(part, dict):
            running = components.first_implementation(component, part)
            run = running[1] if running and running[0] == components.CUSTOM else None
            found += _others(path, _dicts(part.get("containers")), run)
    return found


def first_revision_unhonored(resource: dict) -> list[Unhonored]:
    """What a new InferenceService asks that only a later change can do: a `canaryTrafficPercent` below
    100 splits the traffic between a change's revision and the one rolled out before it, and the first
    revision has none before it, so it takes all the traffic (as on KServe). Standard mode's is said
    by `unhonored_fields` already."""
    spec = resource.get("spec")
    if resource.get("kind") != INFERENCE_SERVICE.kind or not isinstance(spec, dict):
        return []
    if deployment_mode(resource) == STANDARD:
        return []
    found = []
    for name in COMPONENTS:
        part = spec.get(name)
        percent = part.get("canaryTrafficPercent") if isinstance(part, dict) else None
        if isinstance(percent, int) and percent < 100:
            found.append(Unhonored(f"spec.{name}.canaryTrafficPercent", _NOTHING_ROLLED_OUT))
    return found


def _read_only_with(resource: dict) -> list[Unhonored]:
    """An InferenceService component's fields that other fields leave with nothing to do: a
    `scaleMetricType` where no cpu or memory target is typed, KServe's autoscaler class in Knative mode, a
    `canaryTrafficPercent` in Standard mode (KServe's raw reconciler does not read it)."""
    spec = resource.get("spec")
    if resource.get("kind") != INFERENCE_SERVICE.kind or not isinstance(spec, dict):
        return []
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    mode = deployment_mode(resource)
    found = []
    if mode == KNATIVE and annotations.get(AUTOSCALER_CLASS_ANNOTATION):
        path = paths.join(["metadata", "annotations", AUTOSCALER_CLASS_ANNOTATION])
        found.append(Unhonored(path, _KNATIVE_AUTOSCALES))
    for name in COMPONENTS:
        part = spec.get(name)
        if not isinstance(part, dict):
            continue
        if part.get("scaleMetricType") and resource_scaling_spec(part, annotations, mode) is None:
            found.append(Unhonored(f"spec.{name}.scaleMetricType", _REQUEST_SCALING))
        if mode == STANDARD and part.get("canaryTrafficPercent") is not None:
            found.append(Unhonored(f"spec.{name}.canaryTrafficPercent", _STANDARD_CANARY))
        if mode == MODEL_MESH:
            found += [
                Unhonored(f"spec.{name}.{field}", _MESH_CREDENTIALS)
                for field in _ACCOUNT_FIELDS
                if part.get(field)
            ]
        elif name == "predictor":
            found += _schema_paths(f"spec.{name}", part)
        logger = part.get("logger")
        if isinstance(logger, dict):
            found += [
                Unhonored(f"spec.{name}.logger.{field}", _NOT_A_BUCKET)
                for field in blob_fields_unused(logger)
            ]
    for index, canary in enumerate(_dicts(spec.get("canary"))):  # ModelMesh runs no canary either
        if isinstance(canary.get("predictor"), dict):
            found += _schema_paths(f"spec.canary[{index}].predictor", canary["predictor"])
    return found


def _schema_paths(path: str, predictor: dict) -> list[Unhonored]:
    """A predictor's `storage.schemaPath`, where no ModelMesh model reads it."""
    implementation = components.first_implementation("predictor", predictor)
    if implementation is None or implementation[0] == components.CUSTOM:
        return []
    name, model = implementation
    storage = model.get("storage")
    if not isinstance(storage, dict) or storage.get("schemaPath") is None:
        return []
    return [Unhonored(f"{path}.{name}.storage.schemaPath", SCHEMA_FOR_MODEL_MESH)]


_CUSTOM_HPA_METRIC = (
    "Knative's HPA class takes it for the name of a custom metric, which modelplane up has no source of: "
    "the replicas scale on their cpu, at the HPA's default of 80%"
)


def _custom_hpa_metrics(resource: dict) -> list[Unhonored]:
    """A metric other than cpu or memory under Knative's HPA class, for an InferenceService's component
    or a graph's router: Knative makes an HPA of a custom metric of that name."""
    spec = resource.get("spec")
    kind = resource.get("kind")
    if kind not in (INFERENCE_SERVICE.kind, INFERENCE_GRAPH.kind) or not isinstance(spec, dict):
        return []
    if deployment_mode(resource) != KNATIVE:
        return []
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    parts = (
        [("spec", spec)] if kind == INFERENCE_GRAPH.kind else [(f"spec.{n}", spec.get(n)) for n in COMPONENTS]
    )
    found = []
    for path, part in parts:
        if not isinstance(part, dict):
            continue
        own = part.get("annotations") if isinstance(part.get("annotations"), dict) else {}
        if {**annotations, **own}.get(KNATIVE_AUTOSCALER_CLASS_ANNOTATION) != KNATIVE_HPA_CLASS:
            continue
        if part.get("scaleMetric"):
            metric, field = part["scaleMetric"], f"{path}.scaleMetric"
        elif KNATIVE_METRIC in own:
            metric, field = own[KNATIVE_METRIC], paths.join([*path.split("."), "annotations", KNATIVE_METRIC])
        elif KNATIVE_METRIC in annotations:
            metric, field = (
                annotations[KNATIVE_METRIC],
                paths.join(["metadata", "annotations", KNATIVE_METRIC]),
            )
        else:
            continue
        if metric not in HPA_METRICS:
            found.append(Unhonored(field, _CUSTOM_HPA_METRIC))
    return found


_NO_FINALIZERS = "a delete removes the object at once, without waiting for its finalizers to be removed"
_NOT_A_BUCKET = "it applies to a logger whose url is a bucket (s3://, gs://, abfs://)"


def _others(path: Path, containers: list[dict], run: dict | None) -> list[Unhonored]:
    return [
        Unhonored(paths.join([*path, "containers", index]), _ONE_CONTAINER)
        for index, container in enumerate(containers)
        if container is not run
    ]


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _once(found: list[Unhonored]) -> list[Unhonored]:
    return list(dict.fromkeys(found))
