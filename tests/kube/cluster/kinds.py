"""The kinds the test API server serves: (group, version, kind, plural, namespaced).

Any other path is a 404, as for a resource whose CRD is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiKind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = [
    ApiKind("", "v1", "Pod", "pods"),
    ApiKind("", "v1", "Service", "services"),
    ApiKind("", "v1", "ConfigMap", "configmaps"),
    ApiKind("", "v1", "Secret", "secrets"),
    ApiKind("", "v1", "ServiceAccount", "serviceaccounts"),
    ApiKind("", "v1", "Event", "events"),
    ApiKind("", "v1", "Namespace", "namespaces", namespaced=False),
    ApiKind("apps", "v1", "Deployment", "deployments"),
    ApiKind("apps", "v1", "ReplicaSet", "replicasets"),
    ApiKind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ApiKind("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ApiKind("coordination.k8s.io", "v1", "Lease", "leases"),
    ApiKind("events.k8s.io", "v1", "Event", "events"),
    ApiKind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
    ),
    ApiKind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    ApiKind("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects"),
    ApiKind("serving.knative.dev", "v1", "Service", "services"),
    ApiKind("serving.knative.dev", "v1", "Revision", "revisions"),
    ApiKind("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices"),
    ApiKind("serving.kserve.io", "v1alpha1", "InferenceGraph", "inferencegraphs"),
    ApiKind("serving.kserve.io", "v1alpha1", "ServingRuntime", "servingruntimes"),
    ApiKind("serving.kserve.io", "v1alpha1", "ClusterServingRuntime", "clusterservingruntimes", False),
    ApiKind("serving.kserve.io", "v1alpha1", "TrainedModel", "trainedmodels"),
]


def find_kind(group: str, version: str, plural: str) -> ApiKind | None:
    return next(
        (k for k in KINDS if (k.group, k.version, k.plural) == (group, version, plural)),
        None,
    )
