"""What `modelplane up` does with each field a user can set: acts on it, refuses it, or accepts it
with a warning. Nothing is silently ignored.

A rule's pattern is a field path in the form the CRD schemas give it: `[]` stands for any item of a
list, `{}` for any value of a map (`spec.nodes{}.steps[].name`). A rule covers its field and everything
under it, unless a longer rule says otherwise: `livenessProbe` is acted on,
`livenessProbe.successThreshold` is refused unless it is 1. A warned field says so on `apply` (a `Warning:` line, as kubectl prints the API server's
warnings) and in the status; a refused one is answered with its message, and nothing is stored.

The tables are written once for what several kinds share (a container, a pod spec, a component of an
InferenceService) and mounted where each kind has one. `tests/local/api/test_field_dispositions.py` walks
every leaf of the CRDs in `modelplane/api/crds` and fails on any field no rule covers; docs/platform.md
lists them (`disposition_docs()`, kept equal by that test).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from modelplane.api.config import DEFAULT_CONFIG
from modelplane.api.constants import FRAMEWORK_SHORTHANDS, KNATIVE_AUTOSCALER_CLASS_ANNOTATION
from modelplane.api.kinds import (
    CLUSTER_SERVING_RUNTIME,
    INFERENCE_GRAPH,
    INFERENCE_SERVICE,
    SERVING_RUNTIME,
    TRAINED_MODEL,
)
from modelplane.api.scraping import SCRAPE_ANNOTATIONS
from modelplane.control.autoscaling_settings import ANNOTATIONS as AUTOSCALING_ANNOTATIONS
from modelplane.control.payload_logging import BLOB_STORAGE_FIELDS
from modelplane.control.progress_deadline import PROGRESS_DEADLINE_ANNOTATION
from modelplane.local.replicas.resources import ACTED_ON as CONTAINER_RESOURCES
from modelplane.storage.config import READ_FIELDS as STORAGE_SETTINGS


class Disposition(Enum):
    ACTED = "acted on"
    WARNED = "accepted with a warning"
    REFUSED = "refused"


@dataclass(frozen=True)
class Rule:
    disposition: Disposition
    why: str  # how it is acted on, why it is not, or the refusal's message
    quiet: tuple = ()  # values that ask for nothing (a default): said nothing about
    keys: tuple[str, ...] | None = None  # of a map acted on: its keys acted on; any other is warned, `why`


def acted(how: str, *, keys: tuple[str, ...] | None = None) -> Rule:
    return Rule(Disposition.ACTED, how, keys=keys)


def warned(why: str, *, quiet: tuple = ()) -> Rule:
    return Rule(Disposition.WARNED, why, quiet)


def refused(message: str, *, quiet: tuple = ()) -> Rule:
    return Rule(Disposition.REFUSED, message, quiet)


Table = dict[str, Rule]

ONE_MACHINE = "every replica runs on this machine"
# The annotations of a revision that `modelplane up` reads, wherever KServe takes them from.
REVISION_ANNOTATIONS = (
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    *AUTOSCALING_ANNOTATIONS,
    PROGRESS_DEADLINE_ANNOTATION,
)
RESOURCES_ACTED_ON = "modelplane up acts on cpu, memory and nvidia.com/gpu"
POD_RESOURCES_ACTED_ON = "pod-level resources are cpu and memory"
BLOB_LOGGING = "with a bucket url (s3://, gs://, abfs://), how the payload logs are written there"
_ENV_SOURCES = "read from the service's ConfigMaps and Secrets, the pod's fields and the container's resources when the replica starts"
_SERVICE_ACCOUNT = (
    "its Secrets give the storage initializer its credentials, as KServe's credential builder reads them"
)
_VOLUME_FOLDER = "a folder here stands for the mountPath in the replica's arguments, variables and workingDir"
_NOT_ENFORCED = "a replica is a process of the user that runs modelplane up: nothing enforces it"
_NO_IMAGES = "no image is pulled: a replica is a local process"
_AS_THE_USER = "a replica runs as the user that runs modelplane up"
_NO_POD = "a replica is a process, not a pod"
_ONE_SUCCESS = "must be 1"
_NOT_A_HOOK = "Kubernetes keeps it for compatibility and does not run it; neither does modelplane up"
_MODEL_MESH = "ModelMesh's settings: modelplane up runs each runtime as its own replicas"
_MODEL_MESH_ADAPTER = (
    "ModelMesh's adapter settings: a pool replica is a modelplane serve, loaded through its repository "
    "API (only memBufferBytes and modelLoadingTimeoutMillis are acted on)"
)
_REVISION_ANNOTATIONS_READ = (
    "the autoscaling.knative.dev/ annotations the autoscaler reads, the progress deadline and the "
    "Prometheus scraping ones (a replica's HTTP port alone is scraped) are acted on"
)

CONTAINER: Table = {
    "name": acted("a runtime's `kserve-container` (else its first) is the one run"),
    "image": acted("a stock image runs its server as a local process; a `command` runs in its place"),
    "command": acted("the replica's command line, `$(NAME)` references expanded"),
    "args": acted("the replica's command line, after `command`, `$(NAME)` references expanded"),
    "env[].name": acted("set in the replica's environment"),
    "env[].value": acted("set in the replica's environment, its `$(NAME)` references expanded"),
    "env[].valueFrom": acted(_ENV_SOURCES),
    "envFrom": acted("every key of the ConfigMap or Secret, after `prefix`, set when the replica starts"),
    "ports[].containerPort": acted("the first is the HTTP port, one named grpc or h2c the gRPC port"),
    "ports[].name": acted("a port named grpc or h2c is the gRPC port"),
    "ports[].protocol": warned("a replica listens on TCP", quiet=("TCP",)),
    "ports[].hostPort": warned("each replica listens on a loopback port of its own"),
    "ports[].hostIP": warned("each replica listens on a loopback port of its own"),
    "resources.limits": acted(RESOURCES_ACTED_ON, keys=CONTAINER_RESOURCES),
    "resources.requests": acted(RESOURCES_ACTED_ON, keys=CONTAINER_RESOURCES),
    "resources.claims": warned("dynamic resource claims need Kubernetes"),
    "readinessProbe": acted("the replica gets requests while it passes"),
    "livenessProbe": acted("a replica that fails it is restarted"),
    "livenessProbe.successThreshold": refused(_ONE_SUCCESS, quiet=(1,)),
    "startupProbe": acted("a replica is not probed for readiness until it passes, and restarted if it fails"),
    "startupProbe.successThreshold": refused(_ONE_SUCCESS, quiet=(1,)),
    "lifecycle.postStart": acted("run as the replica starts; it gets no request until the hook ends"),
    "lifecycle.preStop": acted("run before the replica is sent its stop signal"),
    "lifecycle.postStart.tcpSocket": warned(_NOT_A_HOOK),
    "lifecycle.preStop.tcpSocket": warned(_NOT_A_HOOK),
    "lifecycle.stopSignal": acted("the signal a replica is stopped with"),
    "securityContext": warned(_AS_THE_USER, quiet=(False,)),
    "volumeMounts": acted(_VOLUME_FOLDER),
    "volumeMounts[].readOnly": warned(_NOT_ENFORCED, quiet=(False,)),
    "volumeMounts[].mountPropagation": warned("a volume is a folder here: nothing is mounted to propagate"),
    "volumeMounts[].recursiveReadOnly": warned(_NOT_ENFORCED),
    "volumeDevices": warned("no block device is attached to a replica"),
    "workingDir": acted("a replica starts there where this machine has the folder (its log says when not)"),
    "imagePullPolicy": warned(_NO_IMAGES),
    "stdin": warned("a replica has no stdin or terminal", quiet=(False,)),
    "stdinOnce": warned("a replica has no stdin or terminal", quiet=(False,)),
    "tty": warned("a replica has no stdin or terminal", quiet=(False,)),
    "terminationMessagePath": warned("an exit is described from the replica's log"),
    "terminationMessagePolicy": warned("an exit is described from the replica's log"),
    "resizePolicy": warned("resources are given when a replica starts"),
    "restartPolicy": warned("a replica is restarted whenever it exits"),
    "restartPolicyRules": warned("a replica is restarted whenever it exits"),
}

SCHEDULING_FIELDS = (
    "nodeSelector",
    "nodeName",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "schedulerName",
    "schedulingGates",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "runtimeClassName",
    "overhead",
    "resourceClaims",
)

_CONTAINERS: Table = {f"containers[].{field}": rule for field, rule in CONTAINER.items()}
POD: Table = {
    **{name: warned(ONE_MACHINE) for name in SCHEDULING_FIELDS},
    **_CONTAINERS,
    "resources": acted(POD_RESOURCES_ACTED_ON, keys=("cpu", "memory")),
    "resources.claims": warned("dynamic resource claims need Kubernetes"),
    "initContainers": warned("no init containers run: the storage initializer is modelplane's own"),
    "ephemeralContainers": warned(_NO_POD),
    "volumes": warned(
        "only configMap, secret, downwardAPI, projected, emptyDir, persistentVolumeClaim and hostPath "
        "volumes are made"
    ),
    "volumes[].downwardAPI": acted("the pod's fields and the container's resources written as files"),
    "volumes[].projected": acted("its ConfigMap, Secret and downwardAPI sources' files in one folder"),
    "volumes[].projected.sources[].serviceAccountToken": warned("no service account token is mounted"),
    "volumes[].projected.sources[].clusterTrustBundle": warned("cluster trust bundles need Kubernetes"),
    "volumes[].projected.sources[].podCertificate": warned("pod certificates need Kubernetes"),
    "volumes[].name": acted("what volumeMounts name"),
    "volumes[].configMap": acted("its keys written as files when the replica starts"),
    "volumes[].secret": acted("its keys written as files when the replica starts"),
    "volumes[].emptyDir": acted("a folder of the replica's own, empty when the replica is made"),
    "volumes[].emptyDir.medium": warned("an emptyDir is a folder on this machine's disk", quiet=("",)),
    "volumes[].emptyDir.sizeLimit": warned(_NOT_ENFORCED),
    "volumes[].persistentVolumeClaim": acted("the claim's folder, $MODELPLANE_PVC_DIR/<claimName>"),
    "volumes[].persistentVolumeClaim.readOnly": warned(_NOT_ENFORCED, quiet=(False,)),
    "volumes[].hostPath": acted("the path itself"),
    "volumes[].hostPath.type": warned("the path is used as it is, whatever it is", quiet=("",)),
    "imagePullSecrets": acted("the registry credentials an oci:// model (a modelcar) is pulled with"),
    "serviceAccount": acted("the deprecated name of serviceAccountName, read where that is not set"),
    "serviceAccountName": acted(_SERVICE_ACCOUNT),
    "automountServiceAccountToken": warned("no service account token is mounted", quiet=(False,)),
    "securityContext": warned(_AS_THE_USER),
    "terminationGracePeriodSeconds": acted("the time a replica has to stop (its preStop hook included)"),
    "activeDeadlineSeconds": warned("a replica runs until it is stopped"),
    "restartPolicy": warned("a replica is restarted whenever it exits"),
    "readinessGates": warned("a replica is ready when its readiness path answers"),
    "os": warned("a replica runs on this machine's operating system"),
    **{
        name: warned("a replica uses this machine's network and names")
        for name in ("dnsConfig", "dnsPolicy", "hostAliases", "hostname", "hostnameOverride", "subdomain")
    },
    "setHostnameAsFQDN": warned("a replica uses this machine's network and names", quiet=(False,)),
    "enableServiceLinks": warned("no service environment variables are set", quiet=(False,)),
    **{
        name: warned(f"{_NO_POD}: it shares this machine's namespaces", quiet=(False,))
        for name in ("hostIPC", "hostNetwork", "hostPID", "hostUsers", "shareProcessNamespace")
    },
}


# What every component of an InferenceService has next to its pod spec.
COMPONENT: Table = {
    **POD,
    "minReplicas": acted("the autoscaler's floor (0 scales to zero)"),
    "maxReplicas": acted("the autoscaler's ceiling"),
    "scaleMetric": acted("what the autoscaler scales on"),
    "scaleTarget": acted("the autoscaler's target per replica"),
    "scaleMetricType": acted("what a cpu or memory scaleTarget is: Utilization or AverageValue"),
    "autoScaling": acted("the cpu and memory metrics and the behavior of an HPA, measured on this machine"),
    "autoScaling.metrics[].external": warned("Prometheus and Graphite queries need KEDA on Kubernetes"),
    "autoScaling.metrics[].podmetric": warned("OpenTelemetry pod metrics need KEDA on Kubernetes"),
    "deploymentStrategy": acted("Recreate: the old revision stops before the new one starts"),
    "deploymentStrategy.rollingUpdate": acted(
        "the new revision replaces the old one a few replicas at a time, within maxSurge and maxUnavailable"
    ),
    "containerConcurrency": acted("requests a replica is given at once; more wait in the gateway"),
    "timeout": acted("the gateway's limit on one request, in seconds"),
    "canaryTrafficPercent": acted("the share of requests the latest revision gets"),
    "logger.url": acted("where payload events are sent (http, https or file)"),
    "logger.mode": acted("which payloads are sent"),
    "logger.metadataHeaders": acted("request headers copied into each event"),
    "logger.metadataAnnotations": acted("annotations copied into each event"),
    **{f"logger.{name}": acted(BLOB_LOGGING) for name in BLOB_STORAGE_FIELDS},
    "logger.storage.serviceAccountName": warned(
        "the credentials are those of the storage config its key names"
    ),
    "batcher": acted(
        "modelplane serve batches requests (its flags); in front of another program, modelplane batcher"
    ),
    "labels": warned("no pods to label; a replica's downward API (fieldRef) reads them"),
    "annotations": acted(
        "no pods to annotate: a replica's downward API (fieldRef) reads it, over the service's; "
        f"{_REVISION_ANNOTATIONS_READ}, over the service's",
        keys=(*REVISION_ANNOTATIONS, *SCRAPE_ANNOTATIONS),
    ),
    "storageUris": acted("each model is fetched and seen at its mountPath"),
    "storageContainerName": warned("the storage initializer is modelplane's own"),
}

SCHEMA_FOR_MODEL_MESH = (
    "only ModelMesh reads a model's schema file (the inputs and outputs of a ModelMesh model's metadata); "
    "KServe's storage initializer does not fetch it"
)

# A predictor's `model` (and each framework shorthand): a container, and where the model comes from.
MODEL: Table = {
    **CONTAINER,
    "modelFormat.name": acted("chooses the runtime"),
    "modelFormat.version": acted("chooses the runtime"),
    "runtime": acted("names the runtime"),
    "protocolVersion": acted("chooses the runtime, and tells the server its protocol"),
    "runtimeVersion": warned("it is an image tag: the server installed here runs whatever the tag"),
    "storageUri": acted("fetched by the storage initializer"),
    "storage.key": acted("the storage credentials to fetch with"),
    "storage.path": acted("the model's path within the storage"),
    "storage.parameters": acted(
        "not a storage setting modelplane reads (docs/storage.md lists them): it is passed over",
        keys=tuple(sorted(STORAGE_SETTINGS)),
    ),
    # Read for a ModelMesh model only: unhonored_fields.py warns of it elsewhere.
    "storage.schemaPath": acted("a ModelMesh model's schema file: the inputs and outputs of its metadata"),
    "confidential.enabled": refused(
        "confidential model serving needs a key broker service, which modelplane up does not have",
        quiet=(False,),
    ),
    "confidential.resourceId": warned("used only by confidential model serving, which modelplane up refuses"),
}

ART: Table = {
    **CONTAINER,
    "type": acted("the attack"),
    "config": acted("the attack's settings, as flags"),
    "storageUri": acted("fetched by the storage initializer"),
    "storage.key": acted("the storage credentials to fetch with"),
    "storage.path": acted("the model's path within the storage"),
    "storage.parameters": acted(
        "not a storage setting modelplane reads (docs/storage.md lists them): it is passed over",
        keys=tuple(sorted(STORAGE_SETTINGS)),
    ),
    "storage.schemaPath": warned(SCHEMA_FOR_MODEL_MESH),
    # Defaulting writes KServe's default tag when the user names none.
    "runtimeVersion": warned(
        "it is an image tag: the server installed here runs whatever the tag",
        quiet=(DEFAULT_CONFIG.art_default_image_version,),
    ),
}

_MODELS: Table = {
    f"{name}.{field}": rule for name in ("model", *FRAMEWORK_SHORTHANDS) for field, rule in MODEL.items()
}
_WORKER = "multi-node serving: every replica is one process on this machine, and no workers run"

PREDICTOR: Table = {
    **COMPONENT,
    **_MODELS,
    "workerSpec": warned(_WORKER),
}

# A canary's predictor is laid over the stable one, and runs a fixed number of replicas.
_CANARY_SCALING = "a canary runs a fixed number of replicas: its minReplicas, else its share of the stable's"
CANARY_PREDICTOR: Table = {
    **PREDICTOR,
    "name": acted("names the canary"),
    "minReplicas": acted("the canary's number of replicas"),
    **{
        name: warned(_CANARY_SCALING)
        for name in ("maxReplicas", "scaleMetric", "scaleTarget", "autoScaling", "canaryTrafficPercent")
    },
}

EXPLAINER: Table = {**COMPONENT, **{f"art.{field}": rule for field, rule in ART.items()}}

_OBJECT: Table = {
    "apiVersion": acted("the kind's version"),
    "kind": acted("the kind"),
    "metadata": acted("name, namespace, labels, and the annotations modelplane reads"),
    "status": acted("written by modelplane up"),
}


def _under(prefix: str, table: Table) -> Table:
    return {f"{prefix}.{pattern}": rule for pattern, rule in table.items()}


_SERVICE_OWN: Table = {
    "spec.predictor.name": acted("names the stable predictor next to its canaries"),
    "spec.canary[].trafficPercent": acted("the canary's share of requests"),
}
_SERVICE: Table = {
    **_OBJECT,
    **_under("spec.predictor", PREDICTOR),
    **_under("spec.transformer", COMPONENT),
    **_under("spec.explainer", EXPLAINER),
    **_under("spec.canary[].predictor", CANARY_PREDICTOR),
    **_SERVICE_OWN,
}

_RUNTIME: Table = {
    **_OBJECT,
    **_under("spec", POD),
    "spec.supportedModelFormats": acted("which models the runtime is chosen for"),
    "spec.protocolVersions": acted("which protocols the runtime is chosen for"),
    "spec.multiModel": acted("a multi-model runtime serves TrainedModels"),
    "spec.disabled": acted("a disabled runtime is never chosen"),
    "spec.annotations": acted(
        "no pods to annotate: a replica's downward API (fieldRef) reads it, under the service's own; "
        f"{_REVISION_ANNOTATIONS_READ}, under the service's and the predictor's own",
        keys=(*REVISION_ANNOTATIONS, *SCRAPE_ANNOTATIONS),
    ),
    "spec.labels": warned(
        "no pods to label; a replica's downward API (fieldRef) reads them under the service's own"
    ),
    "spec.storageHelper": warned("the storage initializer always fetches the model"),
    "spec.workerSpec": warned(_WORKER),
    **{
        name: warned(_MODEL_MESH)
        for name in (
            "spec.builtInAdapter",
            "spec.grpcDataEndpoint",
            "spec.grpcEndpoint",
            "spec.httpDataEndpoint",
        )
    },
    # Named one by one, so that a warning does not seem to say memBufferBytes beside them is ignored.
    **{
        f"spec.builtInAdapter.{name}": warned(_MODEL_MESH_ADAPTER)
        for name in ("serverType", "runtimeManagementPort", "env")
    },
    "spec.builtInAdapter.modelLoadingTimeoutMillis": acted(
        "the longest a model's load may take on a ModelMesh pool replica: then it failed to load"
    ),
    "spec.builtInAdapter.memBufferBytes": acted(
        "held back from each ModelMesh pool replica's memory: the rest is for its models"
    ),
    "spec.replicas": acted(
        "how many replicas a ModelMesh runtime's pool runs (a single-model runtime's replicas are each "
        "service's own)"
    ),
}

_GRAPH: Table = {
    **_OBJECT,
    "spec.nodes{}.routerType": acted("how the router runs the node"),
    "spec.nodes{}.steps": acted("what the router calls, and when"),
    "spec.routerTimeouts": acted("the router's timeouts"),
    "spec.minReplicas": acted("the autoscaler's floor for the router"),
    "spec.maxReplicas": acted("the autoscaler's ceiling for the router"),
    "spec.scaleMetric": acted("what the autoscaler scales the router on"),
    "spec.scaleTarget": acted("the autoscaler's target per router replica"),
    "spec.timeout": acted("the gateway's limit on one request to the router, in seconds"),
    "spec.resources": acted(RESOURCES_ACTED_ON, keys=CONTAINER_RESOURCES),
    "spec.resources.claims": warned("dynamic resource claims need Kubernetes"),
    "spec.serviceAccountName": warned("the router calls the services through the gateway, as itself"),
    **{
        f"spec.{name}": warned(ONE_MACHINE)
        for name in ("affinity", "nodeName", "nodeSelector", "tolerations")
    },
}

_TRAINED_MODEL: Table = {
    **_OBJECT,
    "spec.inferenceService": acted("the multi-model service that loads it"),
    "spec.model.framework": acted(
        "kept in the model list (models.json on a cluster), as KServe keeps it: the service's runtime "
        "loads the model as its own format, and one of another framework fails to load with its reason"
    ),
    "spec.model.memory": acted("its share of the predictor's memory limit"),
    "spec.model.storageUri": acted("fetched into the server's model folder"),
}

FIELDS: dict[str, Table] = {
    INFERENCE_SERVICE.kind: _SERVICE,
    INFERENCE_GRAPH.kind: _GRAPH,
    SERVING_RUNTIME.kind: _RUNTIME,
    CLUSTER_SERVING_RUNTIME.kind: _RUNTIME,
    TRAINED_MODEL.kind: _TRAINED_MODEL,
}


_SEGMENT = re.compile(r"[^.\[\]{}]+|\[\]|\{\}")


def pattern_segments(pattern: str) -> tuple[str, ...]:
    """`containers[].env[].value` -> ("containers", "[]", "env", "[]", "value")."""
    return tuple(_SEGMENT.findall(pattern))


_BY_SEGMENTS: dict[str, dict[tuple[str, ...], Rule]] = {
    kind: {pattern_segments(pattern): rule for pattern, rule in table.items()}
    for kind, table in FIELDS.items()
}


def rule_for(kind: str, segments: Iterable[str]) -> tuple[int, Rule] | None:
    """The rule that covers a field (its path as segments, `[]` for a list item, `{}` for a map
    value), with the length of its pattern: the longest pattern that the field starts with."""
    rules = _BY_SEGMENTS.get(kind, {})
    path = tuple(segments)
    for length in range(len(path), 0, -1):
        rule = rules.get(path[:length])
        if rule is not None:
            return length, rule
    return None


# How docs/resources.md lists the tables: each section with where it applies, and the rules it adds
# to those it builds on.
_DOC_SECTIONS: tuple[tuple[str, str, Table, Table], ...] = (
    ("Every kind", "", _OBJECT, {}),
    (
        "Any container",
        "a component's `containers[]`, a predictor's `model` and framework shorthands, an explainer's "
        "`art`, a runtime's `containers[]`",
        CONTAINER,
        {},
    ),
    ("Any pod spec", "each InferenceService component, a runtime's `spec`", POD, _CONTAINERS),
    (
        "An InferenceService component",
        "`spec.predictor`, `spec.transformer`, `spec.explainer`",
        COMPONENT,
        POD,
    ),
    ("A predictor", "`spec.predictor`, and each canary's", PREDICTOR, {**COMPONENT, **_MODELS}),
    ("A predictor's model", "`spec.predictor.model`, and each framework shorthand", MODEL, CONTAINER),
    ("An explainer's `art`", "`spec.explainer.art`", ART, CONTAINER),
    ("A canary's predictor", "`spec.canary[].predictor`", CANARY_PREDICTOR, PREDICTOR),
    ("InferenceService", "", _SERVICE_OWN, {}),
    ("ServingRuntime and ClusterServingRuntime", "", _RUNTIME, {**_OBJECT, **_under("spec", POD)}),
    ("InferenceGraph", "", _GRAPH, _OBJECT),
    ("TrainedModel", "", _TRAINED_MODEL, _OBJECT),
)


def disposition_docs() -> str:
    """The tables in Markdown, as docs/resources.md has them."""
    lines: list[str] = []
    for title, where, table, base in _DOC_SECTIONS:
        own = {pattern: rule for pattern, rule in table.items() if base.get(pattern) != rule}
        lines += [f"#### {title}", ""]
        if where:
            lines += [f"In {where}.", ""]
        said: dict[tuple[str, str], list[str]] = {}
        for pattern, rule in own.items():
            if rule.keys is not None:
                keys = ", ".join(f"`{key}`" for key in rule.keys)
                said.setdefault((f"warned, but for {keys}", rule.why), []).append(f"`{pattern}`")
            elif rule.disposition != Disposition.ACTED:
                said.setdefault((rule.disposition.name.lower(), rule.why), []).append(f"`{pattern}`")
        if said:
            lines += ["| field | | why |", "|---|---|---|"]
            lines += [f"| {', '.join(names)} | {what} | {why} |" for (what, why), names in said.items()]
            lines.append("")
        acted_on = [
            f"`{pattern}`"
            for pattern, rule in own.items()
            if rule.disposition == Disposition.ACTED and rule.keys is None
        ]
        if acted_on:
            lines += [f"Acted on: {', '.join(acted_on)}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(disposition_docs())
