"""The pod of each component of an InferenceService, as KServe's controller (and its pod webhook)
would make it: what both modes then wrap, in a Deployment or a Knative Service.

- A predictor's `model` runs its runtime's container (chosen and merged as on `modelplane up`, by
  `modelplane.control.revision_templates.model_container`), next to the runtime's other containers and
  the predictor's own; the runtime's pod fields (volumes, nodeSelector, tolerations...) come first,
  the predictor's win.
- A custom component runs its containers; the transformer and a custom explainer get KServe's default
  arguments (`--model_name`, `--predictor_host`, `--http_port`, `--workers`); an ART explainer KServe's
  image.
- A component with a model gets the storage initializer (`storage_initializer.py`); a multi-model
  predictor an empty, writable `/mnt/models` for its TrainedModels, and the model agent that loads them
  (`model_agent.py`).
- `modelplane serve` is told to listen on every address (`--host=0.0.0.0`), its ports are declared
  (Standard mode: REST 8080 and gRPC 8081, so the Service exposes both), and it is ready when its
  models are (`GET /v2/health/ready`). Other containers get KServe's TCP readiness probe (Standard).
- A batcher is `modelplane serve`'s own (`--enable-batcher`); in front of another container it is a
  `batcher` sidecar, as KServe's agent is (`batcher.py`), chained behind a `logger` one
  (`front_sidecar.py`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelplane.api import RuntimeSelectionError, components, conditions
from modelplane.api.constants import (
    AGENT_PORT,
    DEFAULT_MOUNT_PATH,
    KNATIVE,
    MULTI_MODEL_SERVER_ENV,
    PREDICTOR_CONTAINER,
    PROTOCOL_ENV,
    STORAGE_URI_ENV,
    TRANSFORMER_CONTAINER,
)
from modelplane.api.quantity import parse_quantity
from modelplane.api.scraping import PORT_ANNOTATION, scrape_path
from modelplane.api.service_account_credentials import CredentialsError
from modelplane.control.canaries import canary_predictor, canary_replicas
from modelplane.control.image_args import parse_args
from modelplane.control.revision_templates import (
    COMPONENTS,
    DEFAULT_GRPC_PORT,
    DEFAULT_HTTP_PORT,
    batcher_args,
    merge_containers,
    model_container,
    rendered_runtime_container,
    transformer_default_args,
)
from modelplane.kube.batcher import BATCHER_CONTAINER
from modelplane.kube.batcher import aggregate_metrics as aggregate_batcher_metrics
from modelplane.kube.credentials import AccountObjects, with_credentials
from modelplane.kube.front_sidecar import FRONT_SIDECARS, front_sidecars, serve_behind
from modelplane.kube.images import cluster_image
from modelplane.kube.meta import (
    COMPONENT_LABEL,
    INFERENCE_SERVICE_LABEL,
    component_name,
    namespace_of,
    propagated_annotations,
)
from modelplane.kube.model_agent import CONTAINER_NAME as AGENT_NAME
from modelplane.kube.model_agent import INIT_CONTAINER_NAME as AGENT_INIT_NAME
from modelplane.kube.model_agent import model_agent
from modelplane.kube.payload_logging import LOGGER_CONTAINER, aggregate_metrics, logger_args, logger_env
from modelplane.kube.settings import KubeSettings
from modelplane.kube.storage_initializer import CONTAINER_NAME as INITIALIZER_NAME
from modelplane.kube.storage_initializer import provisioning, provisioning_of_uris
from modelplane.storage.errors import InvalidURIError

AGENT_NAMES = (AGENT_NAME, AGENT_INIT_NAME)

# The fields of Kubernetes' PodSpec, which a component spec inlines.
POD_FIELDS = (
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "ephemeralContainers",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "imagePullSecrets",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "restartPolicy",
    "runtimeClassName",
    "schedulerName",
    "schedulingGates",
    "securityContext",
    "serviceAccount",
    "serviceAccountName",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
)
# Lists merged by their items' names (the runtime's first, then the component's).
_NAMED_LISTS = ("volumes", "imagePullSecrets", "initContainers")
READY_PATH = "/v2/health/ready"
ART_IMAGE = "kserve/art-explainer"


@dataclass(frozen=True)
class Canary:
    """A Standard-mode canary (`spec.canary[]`): its name, share of the traffic and fixed replicas."""

    name: str
    percent: int
    replicas: int


@dataclass(frozen=True)
class ComponentPod:
    """One component's pod: what a Deployment or a Knative Service runs."""

    component: str  # predictor, transformer or explainer
    name: str  # the name of its objects: iris-predictor, iris-v2-predictor...
    spec: dict  # the component's spec: replicas, scaling, timeout, labels...
    pod: dict  # the PodSpec
    labels: dict[str, str]
    annotations: dict[str, str]
    protocol: str | None
    canary: Canary | None = None
    pod_annotations: dict[str, str] = field(default_factory=dict)  # the pod template's alone

    @property
    def main_container(self) -> dict:
        return self.pod["containers"][0]

    @property
    def ports(self) -> list[dict]:
        """The ports its Service exposes: the main container's, or a collocated transformer's (which
        takes the requests in front of the predictor); with a `logger` or `batcher` container, the
        first of them goes to KServe's agent port instead (the front sidecar's), as KServe's goes to its
        agent's."""
        containers = self.pod["containers"]
        ports = [p for p in _serving_container(containers).get("ports") or [] if isinstance(p, dict)]
        if any(c.get("name") in FRONT_SIDECARS for c in containers):
            first = ports[0] if ports else {"name": self.name}
            ports = [{**first, "containerPort": AGENT_PORT, "protocol": "TCP"}, *ports[1:]]
        return ports


def _serving_container(containers: list[dict]) -> dict:
    """The container the pod's requests are for: a collocated transformer, else the main one."""
    return next((c for c in containers if c.get("name") == TRANSFORMER_CONTAINER), containers[0])


def scrape_annotations(annotations: dict[str, str], serving_port: int) -> dict[str, str]:
    """Where Prometheus' pod discovery scrapes a pod whose service asks for it: the model server's own
    port and path (the runtime's `prometheus.kserve.io/port` and `/path`, else its serving port and
    /metrics). KServe's pod webhook names the queue-proxy's port (9091), which holds Knative's metrics
    and not the model's, and leaves `prometheus.io/scrape` to the user."""
    path = scrape_path(annotations)
    if path is None:
        return {}
    port = annotations.get(PORT_ANNOTATION) or str(serving_port)
    return {"prometheus.io/scrape": "true", "prometheus.io/port": port, "prometheus.io/path": path}


def _check_one_port(containers: list[dict], path: str) -> None:
    """Knative serves one port per pod (its queue-proxy's): a revision whose containers declare more
    is refused by Knative's webhook, after KServe has passed it on."""
    declared = [
        f"{container.get('name')}:{port.get('containerPort')}"
        for container in containers
        for port in container.get("ports") or []
        if isinstance(port, dict)
    ]
    if len(declared) > 1:
        raise ComponentError(
            path,
            conditions.INVALID_PREDICTOR_SPEC,
            f"a Knative revision serves one port, and this pod's containers declare {len(declared)} "
            f"({', '.join(declared)}): keep the one its requests come to (h2c for gRPC), or use the "
            "Standard deployment mode",
        )


def _declare_the_served_port(containers: list[dict]) -> None:
    """Knative takes a pod of several containers only when one of them declares the port it serves
    (its webhook refuses the revision otherwise): where none does (a multi-model server next to its
    agent, which KServe's pod webhook adds after Knative's), the serving container declares where it
    listens. A lone container needs none: Knative's default is 8080."""
    if len(containers) < 2 or any(c.get("ports") for c in containers):
        return
    serving = _serving_container(containers)
    serving["ports"] = [{"containerPort": int(_server_port(serving)), "protocol": "TCP"}]


def _check_requests_within_limits(containers: list[dict], path: str) -> None:
    """The API server refuses a pod whose container requests more than its limit, which a component's
    limit alone makes when it is below the runtime's request it is merged with (as in KServe)."""
    for container in containers:
        resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for resource, limit in limits.items() if isinstance(limits, dict) else ():
            request = requests.get(resource) if isinstance(requests, dict) else None
            wanted, allowed = parse_quantity(request), parse_quantity(limit)
            if wanted is not None and allowed is not None and wanted > allowed:
                raise ComponentError(
                    path,
                    conditions.INVALID_PREDICTOR_SPEC,
                    f"the {container.get('name')} container would request {request} of {resource}, over "
                    f"its limit of {limit} (a pod the API server refuses): set requests.{resource} too",
                )


def _first_port(container: dict) -> int:
    """The container's first port (8080, KServe's, when it declares none)."""
    ports = [p for p in container.get("ports") or [] if isinstance(p, dict) and "containerPort" in p]
    return ports[0]["containerPort"] if ports else DEFAULT_HTTP_PORT


class ComponentError(Exception):
    """A component that cannot run as written: `path` is the field at fault, `reason` KServe's
    modelStatus reason (InvalidPredictorSpec, NoSupportingRuntime...)."""

    def __init__(self, path: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def component_pods(
    isvc: dict,
    namespaced_runtimes: Sequence[dict],
    cluster_runtimes: Sequence[dict],
    settings: KubeSettings,
    mode: str,
    accounts: AccountObjects | None = None,
) -> list[ComponentPod]:
    """The pods of an admitted InferenceService: predictor, transformer, explainer, then each canary.
    With `accounts`, the pods' ServiceAccount credentials are on the containers that fetch models."""
    spec = isvc.get("spec") or {}
    stable = spec.get("predictor") or {}
    builder = _Builder(isvc, namespaced_runtimes, cluster_runtimes, settings, mode, accounts)
    pods = []
    for component in COMPONENTS:
        if isinstance(spec.get(component), dict):
            pods.append(builder.pod(component, spec[component], f"spec.{component}"))
    for index, canary in enumerate(spec.get("canary") or []):
        overlay = canary.get("predictor") or {}
        percent = int(canary.get("trafficPercent") or 0)
        replicas = canary_replicas(stable, overlay, percent)
        predictor = canary_predictor(stable, overlay, replicas)
        plan = Canary(overlay.get("name", ""), percent, replicas)
        pods.append(builder.pod("predictor", predictor, f"spec.canary[{index}].predictor", plan))
    return pods


def predictor_host(isvc: dict) -> str:
    """`<isvc>-predictor.<namespace>`: where a transformer or explainer reaches the predictor."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    name = component_name(isvc["metadata"]["name"], "predictor", predictor.get("name"))
    return f"{name}.{namespace_of(isvc)}"


class _Builder:
    def __init__(
        self,
        isvc: dict,
        namespaced_runtimes: Sequence[dict],
        cluster_runtimes: Sequence[dict],
        settings: KubeSettings,
        mode: str,
        accounts: AccountObjects | None = None,
    ) -> None:
        self.isvc = isvc
        self.accounts = accounts
        self.namespaced_runtimes = namespaced_runtimes
        self.cluster_runtimes = cluster_runtimes
        self.settings = settings
        self.mode = mode
        self.name = isvc["metadata"]["name"]

    def pod(self, component: str, spec: dict, path: str, canary: Canary | None = None) -> ComponentPod:
        if component == "predictor" and isinstance(spec.get("model"), dict):
            parts = self._model_parts(spec, path)
        else:
            parts = self._custom_parts(component, spec, path)
        main = parts.main
        serves = components.runs_modelplane_serve(components.container_argv(main))
        extra_args = self._extra_args(component, spec, path, parts)
        logger = spec.get("logger") if isinstance(spec.get("logger"), dict) else None
        if logger is not None and serves:
            extra_args += logger_args(self.isvc, component, spec)
            for variable in logger_env(self.isvc, spec, self.settings):
                main["env"] = [e for e in main.get("env") or [] if e.get("name") != variable["name"]] + [
                    variable
                ]
        if extra_args:
            main["args"] = [*(main.get("args") or []), *extra_args]
        main["image"] = cluster_image(main, self.settings, parts.runtime_version)
        if serves and not main.get("ports") and self.mode != KNATIVE:
            main["ports"] = _serve_ports(parse_args(components.container_argv(main)))
        for container in parts.others:
            container["image"] = cluster_image(container, self.settings)
        containers = [main, *parts.others]
        serving = _serving_container(containers)
        serving_port = _first_port(serving)  # before a Knative pod's ports become a sidecar's
        chain = []
        if not serves:
            batches = isinstance(spec.get("batcher"), dict)
            chain = front_sidecars(
                self.isvc,
                component,
                spec,
                self.settings,
                logs=logger is not None,
                batches=batches,
                port=serving_port,
            )
        if chain and self.mode == KNATIVE:
            serve_behind(containers, serving, chain)
        containers += chain
        sidecars = {c["name"]: c for c in chain}
        if self.mode == KNATIVE:
            _check_one_port(containers, path)
        for container in containers:
            _set_env(container, "INFERENCE_SERVICE_NAME", self.name)
            _default_probe(container, self.mode, serves and container is main)
        for name, value in parts.env.items():
            _set_env(main, name, value)
        pod = _merged_pod_fields(parts.runtime_pod, {k: spec[k] for k in POD_FIELDS if k in spec})
        pod["containers"] = containers
        self._provision(pod, main, parts)
        if self.mode == KNATIVE:
            _declare_the_served_port(pod["containers"])
        _check_requests_within_limits([*(pod.get("initContainers") or []), *pod["containers"]], path)
        self._add_credentials(pod, parts, path)
        predictor_name = (spec.get("name") or None) if component == "predictor" else None
        annotations = {
            **_strings(parts.runtime_annotations),
            **propagated_annotations(parts.metadata.get("annotations")),
            **_strings(spec.get("annotations")),
        }
        scraping = scrape_annotations(annotations, serving_port)
        if scraping:
            # Each sidecar serves its metrics with those of the one behind it: the front one, the pod's.
            if BATCHER_CONTAINER in sidecars:
                scraping["prometheus.io/port"] = aggregate_batcher_metrics(
                    sidecars[BATCHER_CONTAINER], scraping, behind_logger=LOGGER_CONTAINER in sidecars
                )
            if LOGGER_CONTAINER in sidecars:
                scraping["prometheus.io/port"] = aggregate_metrics(sidecars[LOGGER_CONTAINER], scraping)
        return ComponentPod(
            component,
            component_name(self.name, component, predictor_name),
            spec,
            pod,
            self._labels(component, spec, parts),
            annotations,
            parts.protocol,
            canary,
            scraping,
        )

    def _extra_args(self, component: str, spec: dict, path: str, parts: _Parts) -> list[str]:
        """What the main container's arguments lack: KServe's transformer defaults, the batcher's
        flags, and for `modelplane serve` the address to listen on."""
        argv = components.container_argv(parts.main)
        extra: list[str] = []
        if component == "transformer" or (component == "explainer" and "art" not in spec):
            # KServe gives a custom explainer the transformer's defaults (`CustomExplainer.GetContainer`)
            extra += transformer_default_args(argv, spec, self.name, predictor_host(self.isvc))
        if isinstance(spec.get("batcher"), dict) and components.runs_modelplane_serve(argv):
            try:
                extra += batcher_args(argv, spec["batcher"], component, parts.runner)
            except RuntimeSelectionError as exc:
                raise ComponentError(f"{path}.batcher", exc.reason, str(exc)) from None
        given = parse_args(argv + extra).flags
        if components.runs_modelplane_serve(argv) and not any(flag.name == "host" for flag in given):
            extra.append("--host=0.0.0.0")  # its default, 127.0.0.1, is out of the Service's reach
        return extra

    def _labels(self, component: str, spec: dict, parts: _Parts) -> dict[str, str]:
        return {
            **_strings(parts.runtime_labels),
            **_strings(parts.metadata.get("labels")),
            **_strings(spec.get("labels")),
            INFERENCE_SERVICE_LABEL: self.name,
            COMPONENT_LABEL: component,
        }

    def _model_parts(self, spec: dict, path: str) -> _Parts:
        isvc = {**self.isvc, "spec": {**(self.isvc.get("spec") or {}), "predictor": spec}}
        try:
            isvc, selection, container = model_container(
                isvc, self.namespaced_runtimes, self.cluster_runtimes
            )
        except RuntimeSelectionError as exc:
            raise ComponentError(f"{path}.model", exc.reason, str(exc)) from None
        model = isvc["spec"]["predictor"]["model"]
        runtime_spec = selection.spec
        chosen = next(
            (c for c in runtime_spec.get("containers") or [] if c.get("name") == PREDICTOR_CONTAINER),
            (runtime_spec.get("containers") or [{}])[0],
        )
        others = [c for c in runtime_spec.get("containers") or [] if c is not chosen and isinstance(c, dict)]
        others = _merged_by_name(others, [c for c in spec.get("containers") or [] if isinstance(c, dict)])
        # KServe's controller fills the placeholders of the transformer-container (the runtime's merged
        # with the service's) besides the model's; other containers, the runtime's or the service's,
        # go in as written.
        try:
            others = [
                rendered_runtime_container(c, isvc["metadata"], selection.name)
                if c.get("name") == TRANSFORMER_CONTAINER
                else c
                for c in others
            ]
        except RuntimeSelectionError as exc:
            raise ComponentError(f"{path}.containers", exc.reason, str(exc)) from None
        storage = _storage(model.get("storageUri"), model.get("storage"))
        env = {}
        if model.get("protocolVersion"):
            env[PROTOCOL_ENV] = model["protocolVersion"]
        multi_model = components.is_multi_model_predictor(spec)
        if multi_model:  # its models are TrainedModels
            env[MULTI_MODEL_SERVER_ENV] = "true"
        return _Parts(
            main=container,
            others=others,
            metadata=isvc["metadata"],
            storage=storage,
            storage_path=f"{path}.model",
            protocol=model.get("protocolVersion"),
            env=env,
            runner=f"runtime {selection.name}",
            runtime_version=model.get("runtimeVersion"),
            runtime_pod={k: runtime_spec[k] for k in POD_FIELDS if k in runtime_spec},
            runtime_labels=runtime_spec.get("labels") or {},
            runtime_annotations=runtime_spec.get("annotations") or {},
            multi_model=multi_model,
            storage_uris=spec.get("storageUris") or [],
        )

    def _custom_parts(self, component: str, spec: dict, path: str) -> _Parts:
        found = components.implementation(component, spec)
        if found is None or found[0] not in (components.CUSTOM, "art"):
            what = found[0] if found else "nothing"
            message = f"the {component} runs {what}, which is not an implementation modelplane can run"
            raise ComponentError(path, conditions.INVALID_PREDICTOR_SPEC, message)
        kind, implementation = found
        if kind == "art":
            main = _art_container(implementation, spec, self.name, predictor_host(self.isvc))
            others: list[dict] = []
            storage = _storage(implementation.get("storageUri") or None, None)
            storage_path = f"{path}.art.storageUri"
        else:
            main = copy.deepcopy(implementation)
            others = [copy.deepcopy(c) for c in spec.get("containers") or [] if c is not implementation]
            storage = _storage(components.env_value(main, STORAGE_URI_ENV), None)
            storage_path = f"{path}.containers"
        return _Parts(
            main=main,
            others=others,
            metadata=self.isvc["metadata"],
            storage=storage,
            storage_path=storage_path,
            protocol=components.env_value(main, PROTOCOL_ENV),
            env={},
            runner="its container",
            runtime_version=None,
            runtime_pod={},
            runtime_labels={},
            runtime_annotations={},
            multi_model=component == "predictor" and components.is_multi_model_predictor(spec),
            storage_uris=spec.get("storageUris") or [],
        )

    def _provision(self, pod: dict, main: dict, parts: _Parts) -> None:
        annotations = parts.metadata.get("annotations") or {}
        if parts.storage is not None or parts.storage_uris:
            try:
                if parts.storage_uris:
                    provision = provisioning_of_uris(parts.storage_uris, annotations, self.settings)
                else:
                    assert parts.storage is not None
                    provision = provisioning(
                        parts.storage.get("storageUri"),
                        parts.storage.get("storage"),
                        annotations,
                        self.settings,
                    )
            except InvalidURIError as exc:
                raise ComponentError(parts.storage_path, conditions.MODEL_LOAD_FAILED, str(exc)) from None
            if provision.init_containers:
                pod["initContainers"] = [*(pod.get("initContainers") or []), *provision.init_containers]
            pod["volumes"] = [*(pod.get("volumes") or []), *provision.volumes]
            for reader in _model_readers(pod, main):
                mounts = [dict(mount) for mount in provision.model_mounts]
                reader["volumeMounts"] = [*(reader.get("volumeMounts") or []), *mounts]
            if not parts.storage_uris:
                _point_storage_uri_at_model_folder(main)
        elif parts.multi_model:
            agent = model_agent(self.isvc, _server_port(main), self.settings)
            pod["initContainers"] = [*(pod.get("initContainers") or []), agent.init_container]
            pod["containers"] = [*pod["containers"], agent.container]
            pod["volumes"] = [*(pod.get("volumes") or []), *agent.volumes]
            main["volumeMounts"] = [*(main.get("volumeMounts") or []), agent.model_mount]

    def _add_credentials(self, pod: dict, parts: _Parts, path: str) -> None:
        """The pod's ServiceAccount credentials on the containers that fetch models (its storage
        initializers, or its model agent), where no `storage` spec names them (KServe reads a spec's
        credentials from the storage-config Secret alone, with or without a key)."""
        if self.accounts is None or (parts.storage and parts.storage.get("storage")):
            return
        fetching = [c for c in pod.get("initContainers") or [] if c["name"].startswith(INITIALIZER_NAME)]
        fetching += [
            c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] in AGENT_NAMES
        ]
        if not fetching:
            return
        try:
            credentials = self.accounts.credentials(pod, parts.metadata.get("annotations") or {})
        except CredentialsError as exc:
            raise ComponentError(
                f"{path}.serviceAccountName", conditions.MODEL_LOAD_FAILED, str(exc)
            ) from None
        for container in fetching:
            with_credentials(container, pod, credentials)


@dataclass
class _Parts:
    main: dict
    others: list[dict]
    metadata: dict
    storage: dict | None
    storage_path: str
    protocol: str | None
    env: dict[str, str]
    runner: str
    runtime_version: str | None
    runtime_pod: dict
    runtime_labels: dict
    runtime_annotations: dict
    multi_model: bool
    storage_uris: list[dict]


def _art_container(art: dict, spec: dict, isvc_name: str, predictor: str) -> dict:
    """KServe's ART explainer container: its image at `runtimeVersion`, and its arguments."""
    own_args = [str(a) for a in art.get("args") or []]
    args = ["--model_name", isvc_name, "--http_port", str(DEFAULT_HTTP_PORT)]
    if "--predictor_host" not in own_args:
        args += ["--predictor_host", predictor]
    if "--workers" not in own_args and spec.get("containerConcurrency"):
        args += ["--workers", str(spec["containerConcurrency"])]
    if art.get("storageUri"):
        args += ["--storage_uri", "/mnt/models"]
    args += ["--adversary_type", str(art.get("type") or "SquareAttack")]
    for key, value in sorted((art.get("config") or {}).items()):
        args += [f"--{key}", str(value)]
    container = {
        k: copy.deepcopy(v)
        for k, v in art.items()
        if k not in ("type", "config", "storageUri", "runtimeVersion", "args")
    }
    container["name"] = PREDICTOR_CONTAINER
    container["image"] = art.get("image") or f"{ART_IMAGE}:{art.get('runtimeVersion') or 'latest'}"
    container["args"] = args + own_args
    return container


def _serve_ports(flags) -> list[dict]:
    http = flags.value("http_port") or str(DEFAULT_HTTP_PORT)
    grpc = flags.value("grpc_port") or str(DEFAULT_GRPC_PORT)
    ports = [{"name": "http", "containerPort": int(http), "protocol": "TCP"}]
    if grpc != "-1":
        ports.append({"name": "grpc", "containerPort": int(grpc), "protocol": "TCP"})
    return ports


def _server_port(main: dict) -> int | str:
    """Where a multi-model server takes REST requests, for its agent: its first declared port (as KServe
    has it), else `modelplane serve`'s `--http_port`, else 8080."""
    ports = [p for p in main.get("ports") or [] if isinstance(p, dict) and p.get("containerPort")]
    if ports:
        return ports[0]["containerPort"]
    argv = components.container_argv(main)
    if components.runs_modelplane_serve(argv):
        return parse_args(argv).value("http_port") or DEFAULT_HTTP_PORT
    return DEFAULT_HTTP_PORT


def _default_probe(container: dict, mode: str, serves: bool) -> None:
    if container.get("readinessProbe") or container.get("name") not in (
        PREDICTOR_CONTAINER,
        TRANSFORMER_CONTAINER,
    ):
        return
    if serves:
        http_get: dict = {"path": READY_PATH}
        if mode != KNATIVE:  # Knative probes the one port it serves
            http_get["port"] = _first_port(container)
        container["readinessProbe"] = {
            "httpGet": http_get,
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "failureThreshold": 3,
        }
    elif mode != KNATIVE:
        container["readinessProbe"] = {
            "tcpSocket": {"port": _first_port(container)},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "failureThreshold": 3,
        }


def _model_readers(pod: dict, main: dict) -> list[dict]:
    """The containers that see the model at its mount: the main one, and a collocated transformer."""
    transformers = [c for c in pod["containers"] if c is not main and c.get("name") == TRANSFORMER_CONTAINER]
    return [main, *transformers]


def _point_storage_uri_at_model_folder(container: dict) -> None:
    """A `STORAGE_URI` the container sets names its model where the storage initializer put it, as
    KServe's pod webhook rewrites it (an empty one stays empty)."""
    if not container.get("env"):
        return
    container["env"] = [
        {**variable, "value": DEFAULT_MOUNT_PATH}
        if isinstance(variable, dict) and variable.get("name") == STORAGE_URI_ENV and variable.get("value")
        else variable
        for variable in container.get("env") or []
    ]


def _set_env(container: dict, name: str, value: str) -> None:
    """Adds `name=value` unless the container sets `name` itself."""
    env = [e for e in container.get("env") or [] if isinstance(e, dict)]
    if not any(e.get("name") == name for e in env):
        env.append({"name": name, "value": value})
    container["env"] = env


def _merged_pod_fields(runtime: dict, component: dict) -> dict:
    pod = copy.deepcopy(runtime)
    for key, value in component.items():
        if key in _NAMED_LISTS and isinstance(pod.get(key), list) and isinstance(value, list):
            pod[key] = _merged_by_name(pod[key], value)
        elif key == "nodeSelector" and isinstance(pod.get(key), dict) and isinstance(value, dict):
            pod[key] = {**pod[key], **value}
        else:
            pod[key] = copy.deepcopy(value)
    return pod


def _merged_by_name(first: list[dict], second: list[dict]) -> list[dict]:
    """`second` laid over `first`: an item of the same name is merged (the second's fields win, as a
    container is merged with the runtime's), others are appended."""
    merged = {item.get("name"): copy.deepcopy(item) for item in first}
    for item in second:
        name = item.get("name")
        merged[name] = merge_containers(merged[name], item) if name in merged else copy.deepcopy(item)
    return list(merged.values())


def _storage(uri: str | None, storage: dict | None) -> dict | None:
    if not uri and not storage:
        return None
    return {"storageUri": uri, "storage": storage}


def _strings(mapping: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}
