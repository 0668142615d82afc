"""The resource kinds modelplane serves: their group, version, names and scope (KServe's, and
Kubernetes' Event, Secret, ConfigMap and ServiceAccount)."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "serving.kserve.io"


@dataclass(frozen=True)
class Kind:
    kind: str
    version: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    group: str = GROUP
    categories: tuple[str, ...] = ()  # groups of kinds a word names together, as `all` in `get all`
    # A DELETE of one object answers a `Status` naming it, not the object (Kubernetes' registries of
    # Event, Secret and ConfigMap; custom resources and ServiceAccounts answer the object).
    deletes_answer_status: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version  # the core group: `v1`

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`InferenceService.serving.kserve.io`, as Kubernetes names a kind in messages (`Event` for core)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_generation(self) -> bool:
        """Whether its objects carry `metadata.generation`: every custom resource does; Kubernetes' own
        kinds served here (Event, Secret, ConfigMap, ServiceAccount) have no spec and none."""
        return bool(self.group)

    @property
    def has_status_subresource(self) -> bool:
        """Whether `.../status` is served for its objects: for every custom resource here (as for
        KServe's), not for Kubernetes' own kinds served here, which have no status."""
        return bool(self.group)

    def names(self) -> tuple[str, ...]:
        """Every name a user may type for this kind (as in `get isvc`)."""
        return (self.kind.lower(), self.plural, self.singular, *self.short_names)


# `all` (kubectl's `get all`) names the kinds that serve: the services, graphs and models a user runs.
SERVING = ("all",)
INFERENCE_SERVICE = Kind(
    "InferenceService",
    "v1beta1",
    "inferenceservices",
    "inferenceservice",
    ("isvc",),
    True,
    categories=SERVING,
)
SERVING_RUNTIME = Kind("ServingRuntime", "v1alpha1", "servingruntimes", "servingruntime", (), True)
CLUSTER_SERVING_RUNTIME = Kind(
    "ClusterServingRuntime", "v1alpha1", "clusterservingruntimes", "clusterservingruntime", (), False
)
INFERENCE_GRAPH = Kind(
    "InferenceGraph", "v1alpha1", "inferencegraphs", "inferencegraph", ("ig",), True, categories=SERVING
)
TRAINED_MODEL = Kind(
    "TrainedModel", "v1alpha1", "trainedmodels", "trainedmodel", ("tm",), True, categories=SERVING
)
# Kubernetes' Event (core group, `v1`): what the platform tells about a resource, next to its status.
EVENT = Kind("Event", "v1", "events", "event", ("ev",), True, group="", deletes_answer_status=True)
# Kubernetes' Secret (core group): the storage-config secret a model's `storage.key` resolves against.
SECRET = Kind("Secret", "v1", "secrets", "secret", (), True, group="", deletes_answer_status=True)
# Kubernetes' ConfigMap (core group): values a container's `env` and `envFrom` read.
CONFIG_MAP = Kind(
    "ConfigMap", "v1", "configmaps", "configmap", ("cm",), True, group="", deletes_answer_status=True
)
# Kubernetes' ServiceAccount (core group): the Secrets it lists give a component's storage credentials.
SERVICE_ACCOUNT = Kind("ServiceAccount", "v1", "serviceaccounts", "serviceaccount", ("sa",), True, group="")

KINDS: tuple[Kind, ...] = (
    INFERENCE_SERVICE,
    SERVING_RUNTIME,
    CLUSTER_SERVING_RUNTIME,
    INFERENCE_GRAPH,
    TRAINED_MODEL,
    EVENT,
    SECRET,
    CONFIG_MAP,
    SERVICE_ACCOUNT,
)

_BY_KIND = {k.kind: k for k in KINDS}
_BY_NAME = {name: k for k in KINDS for name in k.names()}


def kind_named(name: str) -> Kind | None:
    """The kind a user means by `name`: its kind, plural, singular or short name, any case."""
    return _BY_NAME.get(name.lower())


def kinds_in_category(word: str) -> tuple[Kind, ...]:
    """The kinds a category names (`all`), in the order they are served; none for any other word."""
    return tuple(k for k in KINDS if word.lower() in k.categories)


def wrong_version_hint(resource: dict) -> str:
    """For a kind modelplane serves in another version than the resource names: where it is served."""
    kind = _BY_KIND.get(resource.get("kind"))
    if kind is None or resource.get("apiVersion") == kind.api_version:
        return ""
    return f'{kind.kind} is served as "{kind.api_version}"'


def kind_of(resource: dict) -> Kind | None:
    """The kind of a resource, matched on both `kind` and `apiVersion`; None if modelplane does not serve it."""
    kind = _BY_KIND.get(resource.get("kind"))
    if kind is None or resource.get("apiVersion") != kind.api_version:
        return None
    return kind
