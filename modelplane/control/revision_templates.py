"""What each component of an InferenceService runs: its revision template.

A template is plain JSON-able data: the command line and environment of the component's container
(as KServe's controller would put it in a pod, before any port or folder is chosen), where its model
comes from, how to tell it is ready, and the serving settings of the component. Two specs that run the
same thing give equal templates, so a template's digest tells whether a spec change needs a new
revision.

Ports and the model folder stay symbolic (the container's `8080`/`8081` and `/mnt/models`); the
platform replaces them when it starts a replica.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import NamedTuple

from modelplane.api import (
    RuntimeSelection,
    RuntimeSelectionError,
    TemplateError,
    apply_runtime,
    components,
    conditions,
    render_container,
    select_runtime,
)
from modelplane.api.constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    DEFAULT_MOUNT_PATH,
    KNATIVE,
    MODEL_MESH,
    MULTI_MODEL_SERVER_ENV,
    PREDICTOR_CONTAINER,
    PROTOCOL_ENV,
    STANDARD,
    STORAGE_URI_ENV,
)
from modelplane.api.scraping import scrape_path
from modelplane.api.service_account_credentials import (
    STORAGE_SECRET_ANNOTATION,
    reference_names,
    service_account_name,
)
from modelplane.control.autoscaling_settings import PREFIX as AUTOSCALING_PREFIX
from modelplane.control.hpa_metrics import resource_scaling_spec
from modelplane.control.images import IMAGE_NOT_SERVED, ImageNotServed, local_command
from modelplane.control.modelmesh import deployment_mode
from modelplane.control.progress_deadline import (
    PROGRESS_DEADLINE_ANNOTATION,
    ProgressDeadlineError,
    annotated_progress_deadline,
)
from modelplane.control.scaling_checks import scaling_problems

COMPONENTS = ("predictor", "transformer", "explainer")
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081

# Fields of a predictor's `model` (or framework) spec that are not container fields.
_MODEL_ONLY_FIELDS = (
    "modelFormat",
    "runtime",
    "storageUri",
    "storage",
    "protocolVersion",
    "runtimeVersion",
    "confidential",
)


def revision_templates(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> dict[str, dict]:
    """The template of each component the InferenceService has, by component name.

    Raises RuntimeSelectionError (with KServe's modelStatus reason) when the predictor's runtime
    cannot be found or used, or a component has nothing to run.
    """
    spec = isvc.get("spec") or {}
    metadata = isvc.get("metadata") or {}
    templates: dict[str, dict] = {}
    for component in COMPONENTS:
        component_spec = spec.get(component)
        if not isinstance(component_spec, dict):
            continue
        runtime_annotations = None
        if component == "predictor" and isinstance(component_spec.get("model"), dict):
            templates[component], runtime_annotations = _model_template(
                isvc, namespaced_runtimes, cluster_runtimes
            )
        else:
            templates[component] = _custom_template(component, component_spec, isvc)
        if component_spec.get("storageUris"):
            templates[component]["storageUris"] = [
                {"uri": entry["uri"], "mountPath": entry.get("mountPath") or DEFAULT_MOUNT_PATH}
                for entry in component_spec["storageUris"]
            ]
        if component == "transformer" or (component == "explainer" and "art" not in component_spec):
            _add_transformer_args(templates[component], component_spec, metadata)
        if isinstance(component_spec.get("batcher"), dict):
            annotations = component_annotations(metadata, component_spec, runtime_annotations)
            _add_batcher_args(templates[component], component_spec["batcher"], annotations)
        credentials = _with_runtime_credentials(
            templates[component].get("credentials", {}), _credential_names(component_spec, metadata)
        )
        if credentials:
            templates[component]["credentials"] = credentials
    return templates


def _named(items: object) -> dict[str, dict]:
    """A list of named objects (a pod's `volumes`) by name."""
    if not isinstance(items, list):
        return {}
    return {item["name"]: item for item in items if isinstance(item, dict) and item.get("name")}


def _with_runtime_credentials(runtime: dict, own: dict) -> dict:
    """A component's credential names over its runtime's: its ServiceAccount wins, the image pull
    Secrets of both are merged by name (the runtime's first), as KServe merges the pod fields."""
    merged = {**runtime, **own}
    pulls = list(dict.fromkeys([*runtime.get("imagePullSecrets", []), *own.get("imagePullSecrets", [])]))
    if pulls:
        merged["imagePullSecrets"] = pulls
    return merged


def _credential_names(component_spec: dict, metadata: dict) -> dict:
    """Where a component's storage credentials come from, beyond a `storage.key` (KServe's credential
    builder: api/service_account_credentials.py), when it says: only then, so that other templates
    stay the same."""
    names = {}
    account = service_account_name(component_spec)
    if account:
        names["serviceAccountName"] = account
    pull_secrets = reference_names(component_spec.get("imagePullSecrets"))
    if pull_secrets:
        names["imagePullSecrets"] = pull_secrets
    secret_name = (metadata.get("annotations") or {}).get(STORAGE_SECRET_ANNOTATION)
    if secret_name:
        names["storageSecretName"] = secret_name
    return names


class ModelContainer(NamedTuple):
    """A predictor's `model` as KServe's controller runs it: the InferenceService with its runtime's
    choices written in, the runtime, and the runtime's container merged with the model's fields."""

    isvc: dict
    selection: RuntimeSelection
    container: dict


def model_container(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> ModelContainer:
    """The container of a predictor's `model`, or RuntimeSelectionError (the runtime cannot be found or
    used, it has no container, or a placeholder of its container names nothing)."""
    selection = select_runtime(isvc, namespaced_runtimes, cluster_runtimes)
    isvc = apply_runtime(isvc, selection)
    model = isvc["spec"]["predictor"]["model"]
    runtime_container = _predictor_container(selection)
    container = merge_containers(
        runtime_container, {k: v for k, v in model.items() if k not in _MODEL_ONLY_FIELDS}
    )
    # the merged container, as KServe's controller renders it: the model's own fields too
    container = rendered_runtime_container(container, isvc["metadata"], selection.name)
    return ModelContainer(isvc, selection, container)


def rendered_runtime_container(container: dict, metadata: dict, runtime: str) -> dict:
    """A runtime's container (merged with the service's) with its placeholders filled, as KServe's
    controller fills those of the `kserve-container` and the `transformer-container`; or
    RuntimeSelectionError with KServe's words, which name the runtime and the container."""
    try:
        return render_container(container, metadata)
    except TemplateError as exc:
        message = (
            f"failed to replace placeholders in serving runtime {runtime} Container {container.get('name')}"
        )
        raise RuntimeSelectionError(conditions.INVALID_PREDICTOR_SPEC, message, f"{message}: {exc}") from None


def _predictor_container(selection: RuntimeSelection) -> dict:
    """The runtime's container that runs the model: its `kserve-container`, which KServe's controller
    requires. A multi-model (ModelMesh) runtime's server may have any name: its first container."""
    runtime_containers = [c for c in selection.spec.get("containers") or [] if isinstance(c, dict)]
    if not runtime_containers:
        raise _invalid(f"runtime {selection.name} has no container")
    found = next((c for c in runtime_containers if c.get("name") == PREDICTOR_CONTAINER), None)
    if found is not None:
        return found
    if selection.spec.get("multiModel") is True:
        return runtime_containers[0]
    raise RuntimeSelectionError(
        conditions.INVALID_PREDICTOR_SPEC,
        f"failed to find {PREDICTOR_CONTAINER} in ServingRuntime containers",
        f"failed to find {PREDICTOR_CONTAINER} in ServingRuntime containers: runtime {selection.name} "
        f"names its containers {', '.join(repr(c.get('name')) for c in runtime_containers)}",
    )


def _model_template(
    isvc: dict, namespaced_runtimes: Sequence[dict], cluster_runtimes: Sequence[dict]
) -> tuple[dict, dict | None]:
    """The predictor's template, and its runtime's `spec.annotations` (which its pods get)."""
    isvc, selection, container = model_container(isvc, namespaced_runtimes, cluster_runtimes)
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    model_format = (model.get("modelFormat") or {}).get("name")
    template = _container_template(
        "predictor",
        container,
        predictor,
        isvc,
        model_format,
        f"runtime {selection.name}: ",
        # A ModelMesh pool's pods are not a revision: no autoscaler reads their annotations.
        selection.spec.get("annotations") if deployment_mode(isvc) != MODEL_MESH else None,
    )
    if "volumes" in template:  # the runtime's pod volumes, under the predictor's own
        volumes = template["volumes"]
        volumes["sources"] = {**_named(selection.spec.get("volumes")), **volumes["sources"]}
        if "pod" not in volumes and _reads_the_pod(volumes["sources"]):
            volumes["pod"] = _pod_facts("predictor", predictor, isvc)
    runtime_credentials = _credential_names(selection.spec, {})  # the runtime's pod fields
    if runtime_credentials:
        template["credentials"] = runtime_credentials
    for pod in (template.get("envSpec", {}).get("pod"), template.get("volumes", {}).get("pod")):
        if pod is not None:
            _with_runtime_pod_facts(pod, selection.spec, predictor)
    runtime_grace = selection.spec.get("terminationGracePeriodSeconds")
    if runtime_grace is not None:  # the runtime's pod field, where the predictor does not set its own
        template.setdefault("terminationGracePeriodSeconds", runtime_grace)
    template["protocol"] = model.get("protocolVersion")
    template["storage"] = _storage(model.get("storageUri"), model.get("storage"))
    template["runtime"] = {"kind": selection.kind, "name": selection.name}
    if template["protocol"] and PROTOCOL_ENV not in template["env"]:
        template["env"][PROTOCOL_ENV] = template["protocol"]
    if components.is_multi_model_predictor(predictor):  # its models are TrainedModels
        template["env"].setdefault(MULTI_MODEL_SERVER_ENV, "true")
    return template, selection.spec.get("annotations")


def _custom_template(component: str, component_spec: dict, isvc: dict) -> dict:
    found = components.implementation(component, component_spec)
    if found is not None and found[0] == "art":
        return _art_template(found[1], component_spec, isvc)
    if found is None or found[0] != components.CUSTOM:
        what = found[0] if found else "nothing"
        raise _invalid(f"the {component} runs {what}, which modelplane cannot run as a local process")
    container = found[1]
    template = _container_template(component, container, component_spec, isvc)
    template["protocol"] = template["env"].get(PROTOCOL_ENV)
    uri = template["env"].get(STORAGE_URI_ENV)
    template["storage"] = _storage(uri, None)
    template["runtime"] = None
    return template


# An ART explainer's fields that are not container fields.
_ART_ONLY_FIELDS = ("type", "config", "storageUri", "storage", "runtimeVersion")
ART_IMAGE = "kserve/art-explainer"


def _art_template(art: dict, component_spec: dict, isvc: dict) -> dict:
    """KServe's ART explainer container (its controller's `GetContainer`): the service's name, the
    predictor to query, the attack and its config as flags, then the spec's own args; the image
    `kserve/art-explainer:<runtimeVersion>` unless the spec names one."""
    metadata = isvc["metadata"]
    name, namespace = metadata["name"], metadata.get("namespace") or "default"
    own_args = [str(part) for part in art.get("args") or []]
    args = ["--model_name", name, "--http_port", str(DEFAULT_HTTP_PORT)]
    if not _has_flag(own_args, "--predictor_host"):
        args += ["--predictor_host", f"{name}-predictor.{namespace}"]
    if not _has_flag(own_args, "--workers") and component_spec.get("containerConcurrency"):
        args += ["--workers", str(component_spec["containerConcurrency"])]
    if art.get("storageUri"):
        args += ["--storage_uri", "/mnt/models"]
    args += ["--adversary_type", str(art.get("type") or "")]
    config = art.get("config") or {}
    for key in sorted(config):
        args += [f"--{key}", str(config[key])]
    container = {key: value for key, value in art.items() if key not in _ART_ONLY_FIELDS}
    container["image"] = art.get("image") or f"{ART_IMAGE}:{art.get('runtimeVersion') or 'latest'}"
    container["args"] = args + own_args
    template = _container_template("explainer", container, component_spec, isvc)
    template["protocol"] = "v1"
    template["storage"] = _storage(art.get("storageUri"), art.get("storage"))
    template["runtime"] = None
    return template


def _has_flag(argv: Sequence[str], flag: str) -> bool:
    spellings = (flag, flag.replace("_", "-"))
    return any(part in spellings or part.startswith(tuple(s + "=" for s in spellings)) for part in argv)


def _container_template(
    component: str,
    container: dict,
    component_spec: dict,
    isvc: dict,
    model_format: str | None = None,
    source: str = "",
    runtime_annotations: dict | None = None,
) -> dict:
    mode = deployment_mode(isvc)
    annotations = component_annotations(isvc["metadata"], component_spec, runtime_annotations)
    scaling = scaling_annotations(isvc["metadata"], mode, component_spec, runtime_annotations)
    if runtime_annotations:  # what only the runtime sets was not judged on apply
        from_runtime = set(runtime_annotations) - set(component_annotations(isvc["metadata"], component_spec))
        _refuse_runtime_annotations(component_spec, annotations, scaling, mode, from_runtime, source)
    try:
        local = local_command(container, model_format, isvc["metadata"]["name"])
    except ImageNotServed as exc:
        message = f"{source}{exc}"
        raise RuntimeSelectionError(IMAGE_NOT_SERVED, message, message) from None
    command = [str(part) for part in (container.get("command") or [])]
    command += [str(part) for part in (container.get("args") or [])]
    env = {"INFERENCE_SERVICE_NAME": isvc["metadata"]["name"]}
    for item in container.get("env") or []:
        if isinstance(item, dict) and "value" in item:
            env[str(item["name"])] = str(item["value"])
    ports = [p for p in container.get("ports") or [] if isinstance(p, dict) and "containerPort" in p]
    # A port is gRPC by its name, as KServe's service reconciler tells (`isGrpcPort`), wherever it is
    # in the list: a container with only an `h2c` port still serves HTTP on the default.
    grpc_ports = [p["containerPort"] for p in ports if _is_grpc_port(p)]
    http_ports = [p["containerPort"] for p in ports if not _is_grpc_port(p)]
    http_port = http_ports[0] if http_ports else DEFAULT_HTTP_PORT
    grpc_port = grpc_ports[0] if grpc_ports else DEFAULT_GRPC_PORT
    if local is not None:  # a stock image: the local command that serves what it serves
        command, http_port, grpc_port = local.command, local.http_port, local.grpc_port
        env.update(local.env)
    probe = container.get("readinessProbe") or {}
    http_get = probe.get("httpGet") if isinstance(probe, dict) else None
    template = {
        "component": component,
        "command": command,
        "env": env,
        "ports": {"http": int(http_port), "grpc": int(grpc_port)},
        "readinessPath": http_get.get("path") if isinstance(http_get, dict) else None,
        "containerConcurrency": int(component_spec.get("containerConcurrency") or 0),
        "timeout": component_spec.get("timeout"),
        "minReplicas": component_spec.get("minReplicas"),
        "maxReplicas": component_spec.get("maxReplicas"),
        "scaleMetric": component_spec.get("scaleMetric"),
        "scaleTarget": component_spec.get("scaleTarget"),
        "scalingAnnotations": scaling,
    }
    # Probes beyond a readiness path: only when set, so that other templates stay the same.
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        declared = container.get(kind)
        if isinstance(declared, dict) and (kind != "readinessProbe" or _more_than_a_path(declared)):
            template[kind] = _with_port_numbers(declared, container.get("ports") or [])
    deadline = _progress_deadline(annotations)
    if deadline is not None:  # only when set, as above
        template["progressDeadline"] = deadline
    # Scaled on its cpu or memory (an HPA's metrics): only then, so that other templates stay the same.
    hpa = resource_scaling_spec(component_spec, annotations, mode)
    if hpa is not None:
        template["hpa"] = hpa
    if mode != KNATIVE:  # not a Knative revision, whose replicas have K_SERVICE...: only then, as above
        template["deploymentMode"] = mode
    if local is not None:
        template["image"] = {"image": container.get("image"), "runs": local.server}
        if local.port_env:
            template["portEnv"] = local.port_env
        if local.dropped:
            template["image"]["dropped"] = list(local.dropped)
    # What the replica may use (threads, memory, GPUs): the container's, and the pod's where set.
    if container.get("resources"):
        template["resources"] = container["resources"]
    if component_spec.get("resources"):
        template["podResources"] = component_spec["resources"]
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict) and lifecycle:
        template["lifecycle"] = {
            name: _with_port_numbers(handler, container.get("ports") or [])
            if isinstance(handler, dict)
            else handler
            for name, handler in lifecycle.items()
        }
    if container.get("workingDir"):
        template["workingDir"] = container["workingDir"]
    mounts = [m for m in container.get("volumeMounts") or [] if isinstance(m, dict)]
    if mounts:  # only then, so that other templates stay the same
        template["volumes"] = {"mounts": mounts, "sources": _named(component_spec.get("volumes"))}
        if _reads_the_pod(template["volumes"]["sources"]):  # the pod's facts, for its files
            template["volumes"]["pod"] = _pod_facts(component, component_spec, isvc)
    if component_spec.get("terminationGracePeriodSeconds") is not None:
        template["terminationGracePeriodSeconds"] = component_spec["terminationGracePeriodSeconds"]
    env_spec = _env_spec(component, container, component_spec, isvc)
    if env_spec is not None:
        template["envSpec"] = env_spec
    return template


def _refuse_runtime_annotations(
    component_spec: dict, annotations: dict, scaling: dict, mode: str, from_runtime: set, source: str
) -> None:
    """A setting of the revision's autoscaler (or its progress deadline) that reaches it from its
    runtime's `spec.annotations` (the keys `from_runtime`) and that would be refused: the predictor
    cannot run, and says why. The service's and the component's own values were judged when they were
    applied."""
    problems = list(scaling_problems(component_spec, annotations, scaling, mode))
    try:
        annotated_progress_deadline(annotations)
    except ProgressDeadlineError as error:
        problems.append((PROGRESS_DEADLINE_ANNOTATION, str(error)))
    for key, message in problems:
        if key in from_runtime:
            raise _invalid(f"{source}{message} (in the runtime's spec.annotations)")


def _is_grpc_port(port: dict) -> bool:
    name = str(port.get("name") or "")
    return "grpc" in name or "h2c" in name


def _env_spec(component: str, container: dict, component_spec: dict, isvc: dict) -> dict | None:
    """What a replica's environment is made from when the container's literal values are not all of
    it (`envFrom`, a `valueFrom`, a `$(NAME)` reference: replicas/container_env.py), with the facts of
    the pod the downward API tells; None otherwise, so that other templates stay the same."""
    env = [item for item in container.get("env") or [] if isinstance(item, dict)]
    needed = container.get("envFrom") or any(
        "valueFrom" in item or "$(" in str(item.get("value", "")) for item in env
    )
    if not needed:
        return None
    return {
        "envFrom": list(container.get("envFrom") or []),
        "env": env,
        "pod": _pod_facts(component, component_spec, isvc),
    }


def _reads_the_pod(sources: dict) -> bool:
    """Whether a volume tells of the pod (a downwardAPI volume, or one projected from it)."""
    return "downwardAPI" in json.dumps(sources)


def _pod_facts(component: str, component_spec: dict, isvc: dict) -> dict:
    """What the downward API tells of a component's pod: its namespace, labels, annotations and
    ServiceAccount."""
    metadata = isvc["metadata"]
    labels = {
        **(metadata.get("labels") or {}),
        **(component_spec.get("labels") or {}),
        "serving.kserve.io/inferenceservice": metadata["name"],
        "component": component,
        "app": f"isvc.{metadata['name']}-{component}",  # as KServe labels a component's pods
    }
    annotations = {**(metadata.get("annotations") or {}), **(component_spec.get("annotations") or {})}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return {
        "namespace": metadata.get("namespace") or "default",
        "labels": labels,
        "annotations": annotations,
        "serviceAccountName": service_account_name(component_spec) or "default",
    }


def _with_runtime_pod_facts(pod: dict, runtime_spec: dict, predictor: dict) -> None:
    """The downward API's facts of a predictor's pod, with its runtime's labels, annotations and
    ServiceAccount under the service's own, as KServe merges the runtime's pod fields."""
    pod["labels"] = {**(runtime_spec.get("labels") or {}), **pod["labels"]}
    pod["annotations"] = {**(runtime_spec.get("annotations") or {}), **pod["annotations"]}
    if not service_account_name(predictor) and runtime_spec.get("serviceAccountName"):
        pod["serviceAccountName"] = runtime_spec["serviceAccountName"]


def _more_than_a_path(probe: dict) -> bool:
    """Whether a readiness probe says more than `httpGet.path` (which `readinessPath` holds)."""
    http_get = probe.get("httpGet")
    return set(probe) != {"httpGet"} or not isinstance(http_get, dict) or set(http_get) - {"path"} != set()


def _with_port_numbers(probe: dict, ports: Sequence) -> dict:
    """A probe whose port names the container's port (`port: http`) with that port's number instead."""
    named = {p.get("name"): p.get("containerPort") for p in ports if isinstance(p, dict) and p.get("name")}
    probe = copy.deepcopy(probe)
    for action in ("httpGet", "tcpSocket"):
        target = probe.get(action)
        if isinstance(target, dict) and isinstance(target.get("port"), str):
            port = target["port"]
            target["port"] = int(port) if port.isdigit() else named.get(port, port)
    return probe


def _add_transformer_args(template: dict, component_spec: dict, metadata: dict) -> None:
    """A transformer's, or a custom explainer's, defaults: KServe gives both the same."""
    name, namespace = metadata["name"], metadata.get("namespace") or "default"
    command = template["command"]
    command += transformer_default_args(command, component_spec, name, f"{name}-predictor.{namespace}")
    # KServe passes no gRPC port: in a pod, its SDK's default (8081) is the pod's own. Here replicas share
    # the machine, so it is told its gRPC port, which becomes the replica's as `--http_port 8080` does.
    if not _has_flag(command, "--grpc_port"):
        command += ["--grpc_port", str(template["ports"]["grpc"])]


def transformer_default_args(
    argv: Sequence[str], component_spec: dict, model_name: str, predictor_host: str
) -> list[str]:
    """KServe's transformer defaults that `argv` lacks: the model name, the predictor's address, the
    port, and the workers when `containerConcurrency` is set."""
    defaults = [
        ("--model_name", model_name),
        ("--predictor_host", predictor_host),
        ("--http_port", str(DEFAULT_HTTP_PORT)),
    ]
    concurrency = component_spec.get("containerConcurrency")
    if concurrency:
        defaults.append(("--workers", str(concurrency)))
    missing: list[str] = []
    for flag, value in defaults:
        spellings = (flag, flag.replace("_", "-"))
        if not any(part in spellings or part.startswith(tuple(s + "=" for s in spellings)) for part in argv):
            missing += [flag, value]
    return missing


BATCHER_FIELDS = ("maxBatchSize", "maxLatency", "timeout")


def _add_batcher_args(template: dict, batcher: dict, annotations: dict) -> None:
    """`modelplane serve` batches itself (its flags); in front of any other program the platform starts
    `modelplane batcher`, KServe's batcher sidecar, with the template's `batcher` (replicas/batcher_sidecar.py).
    In a service that asks to be scraped, the sidecar serves its metrics with the program's: its
    `metricsPath` is the component's scrape path, from its `annotations` (`component_annotations`: a
    runtime's path where the service sets none), as a pod's batcher container gets it on Kubernetes."""
    if not components.runs_modelplane_serve(template["command"]):
        template["batcher"] = {
            field: batcher[field] for field in BATCHER_FIELDS if batcher.get(field) is not None
        }
        path = scrape_path(annotations)
        if path is not None:  # only then, so that other templates stay the same
            template["batcher"]["metricsPath"] = path
        return
    runtime = template["runtime"]
    runner = f"runtime {runtime['name']}" if runtime else "its container"
    template["command"] += batcher_args(template["command"], batcher, template["component"], runner)


def batcher_args(argv: Sequence[str], batcher: dict, component: str, runner: str) -> list[str]:
    """KServe's batcher as `modelplane serve`'s flags, which does the batching (unset fields keep its
    defaults, KServe's: 32 rows, 5000 ms). A component that does not run `modelplane serve` cannot
    batch: RuntimeSelectionError (InvalidPredictorSpec), naming `runner` (what runs it)."""
    if not components.runs_modelplane_serve(argv):
        raise _invalid(
            f"the {component} has a batcher, which needs modelplane serve to do the batching; "
            f'{runner} runs "{" ".join(argv[:3])}"'
        )
    flags = ["--enable-batcher"]
    for field, flag in zip(
        BATCHER_FIELDS, ("--max-batch-size", "--max-latency", "--batch-timeout"), strict=True
    ):
        if batcher.get(field) is not None:
            flags.append(f"{flag}={batcher[field]}")
    return flags


def _progress_deadline(annotations: dict) -> float | None:
    """The annotation's deadline; one admission would refuse (stored before it did) is left out."""
    try:
        return annotated_progress_deadline(annotations)
    except ProgressDeadlineError:
        return None


def component_annotations(
    metadata: dict, component_spec: dict | None, runtime_annotations: dict | None = None
) -> dict[str, str]:
    """A component's annotations as KServe gives them to its pods and its Knative revision: its
    runtime's (a predictor's `model`), under the service's, under the component's own
    (`spec.predictor.annotations`)."""
    own = (component_spec or {}).get("annotations")
    return {
        **{k: str(v) for k, v in (runtime_annotations or {}).items()},
        **{k: str(v) for k, v in (metadata.get("annotations") or {}).items()},
        **({k: str(v) for k, v in own.items()} if isinstance(own, dict) else {}),
    }


def scaling_annotations(
    metadata: dict,
    mode: str | None = None,
    component_spec: dict | None = None,
    runtime_annotations: dict | None = None,
) -> dict[str, str]:
    """The annotations that tune a component's autoscaler (Knative's, from its annotations merged as
    `component_annotations` merges them): a change to them is a new revision, as in Knative. KServe's
    own autoscaler class is read from the service, in Standard mode only (`mode`, else the annotation's)."""
    own = metadata.get("annotations") or {}
    mode = mode or deployment_mode({"metadata": metadata})
    scaling = {
        key: value
        for key, value in component_annotations(metadata, component_spec, runtime_annotations).items()
        if key.startswith(AUTOSCALING_PREFIX)
    }
    if mode == STANDARD and own.get(AUTOSCALER_CLASS_ANNOTATION) is not None:
        scaling[AUTOSCALER_CLASS_ANNOTATION] = str(own[AUTOSCALER_CLASS_ANNOTATION])
    return dict(sorted(scaling.items()))


def merge_containers(runtime: dict, override: dict) -> dict:
    """A runtime container merged with the InferenceService's: its fields win, args are concatenated,
    env is merged by name, volumeMounts by mountPath, resources by name within limits and requests (a
    strategic merge)."""
    merged = copy.deepcopy(runtime)
    for key, value in override.items():
        if key == "args":
            merged["args"] = list(merged.get("args") or []) + list(value or [])
        elif key == "resources" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            for kind, amounts in value.items():
                known = merged[key].get(kind)
                if isinstance(amounts, dict) and isinstance(known, dict):
                    merged[key][kind] = {**known, **copy.deepcopy(amounts)}
                else:
                    merged[key][kind] = copy.deepcopy(amounts)
        elif key in _MERGE_KEYS:
            merged[key] = _merged_by(_MERGE_KEYS[key], merged.get(key), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# A container's lists that a strategic merge merges item by item, and their items' key.
_MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath"}


def _merged_by(key: str, runtime: object, own: object) -> list:
    """Two lists of objects merged by `key`: the runtime's in their order, an item of the second
    replacing the one of its key, new ones after."""
    items = {item.get(key): item for item in runtime or [] if isinstance(item, dict)}
    for item in own or []:
        if isinstance(item, dict):
            items[item.get(key)] = copy.deepcopy(item)
    return list(items.values())


def _storage(uri: str | None, storage: dict | None) -> dict | None:
    if not uri and not storage:
        return None
    return {"storageUri": uri, "storage": storage}


def _invalid(detail: str) -> RuntimeSelectionError:
    return RuntimeSelectionError(conditions.INVALID_PREDICTOR_SPEC, detail, detail)
