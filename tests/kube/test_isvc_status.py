"""The URLs the operator writes in an InferenceService's status, against KServe's raw reconcilers."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from modelplane.api import load_text, with_builtin_runtimes
from modelplane.api.conditions import LOADED
from modelplane.api.constants import STANDARD
from modelplane.control import ServiceState
from modelplane.control.observed import ComponentState, RevisionState
from modelplane.control.traffic import TrafficTarget
from modelplane.kube.operator.isvc_status import cluster_status
from modelplane.kube.render import isvc_objects
from modelplane.kube.settings import KubeSettings

from .helpers import admitted

CLUSTER_LOCAL = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: models
  labels: {networking.kserve.io/visibility: cluster-local}
spec:
  predictor:
    sklearn:
      storageUri: s3://models/iris
"""


def test_a_cluster_local_service_has_its_external_url_and_its_in_cluster_address():
    """KServe's HTTPRoute and Ingress reconcilers write `createRawURL` (the external host) whatever the
    visibility, and `PropagateRawStatus` each component's external host: a cluster-local service only
    has no route to it."""
    (isvc,) = [d.resource for d in load_text(CLUSTER_LOCAL)]
    revision = RevisionState("iris-predictor", LOADED, ready_replicas=1)
    predictor = ComponentState(revision, revision, (TrafficTarget(revision.name, 100, True),))
    state = ServiceState({"predictor": predictor}, routed=True, running={"predictor": (revision,)})
    status = cluster_status(isvc, state, STANDARD, KubeSettings(), now="2024-01-01T00:00:00Z")
    assert status["url"] == "http://iris-models.example.com"
    assert status["address"] == {"url": "http://iris-predictor.models.svc.cluster.local"}
    assert status["components"]["predictor"]["url"] == "http://iris-predictor-models.example.com"
    assert status["components"]["predictor"]["address"] == {
        "url": "http://iris-predictor.models.svc.cluster.local"
    }


NAMED = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: models
  annotations: {serving.kserve.io/deploymentMode: RawDeployment}
spec:
  predictor:
    name: blue
    sklearn:
      storageUri: s3://models/iris
  transformer:
    containers: [{image: example/transformer}]
"""


def _routed_hosts(objects: list[dict]) -> dict[str, set[str]]:
    """Host -> the Services its routes send requests to (HTTPRoutes or an Ingress)."""
    routed: dict[str, set[str]] = {}
    for obj in objects:
        if obj["kind"] == "HTTPRoute":
            services = {ref["name"] for rule in obj["spec"]["rules"] for ref in rule["backendRefs"]}
            for hostname in obj["spec"]["hostnames"]:
                routed.setdefault(hostname, set()).update(services)
        elif obj["kind"] == "Ingress":
            for rule in obj["spec"]["rules"]:
                service = rule["http"]["paths"][0]["backend"]["service"]["name"]
                routed.setdefault(rule["host"], set()).add(service)
    return routed


@pytest.mark.parametrize("gateway_api", [True, False], ids=["httproute", "ingress"])
def test_every_host_the_status_names_for_a_named_predictor_is_routed_to_its_service(gateway_api):
    """KServe's status names the predictor's host after its Service, `<isvc>-<name>-predictor`; its
    HTTPRoute serves only `<isvc>-predictor-...`. Here every host the status names is routed, to the
    Services the status's addresses name."""
    settings = KubeSettings(gateway_api=gateway_api)
    (isvc,) = admitted([d.resource for d in load_text(NAMED)], settings)
    objects = isvc_objects(isvc, [], with_builtin_runtimes([]), settings)
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert services == {"iris-blue-predictor", "iris-transformer"}
    states = {}
    for component, obj in (("predictor", "iris-blue-predictor"), ("transformer", "iris-transformer")):
        revision = RevisionState(obj, LOADED, ready_replicas=1)
        states[component] = ComponentState(revision, revision, (TrafficTarget(revision.name, 100, True),))
    state = ServiceState(states, routed=True, running={c: (s.latest,) for c, s in states.items()})
    status = cluster_status(isvc, state, STANDARD, settings, now="2024-01-01T00:00:00Z")
    predictor = status["components"]["predictor"]
    assert predictor["url"] == "http://iris-blue-predictor-models.example.com"
    assert predictor["address"] == {"url": "http://iris-blue-predictor.models.svc.cluster.local"}
    routed = _routed_hosts(objects)
    named = [status["url"], *(c["url"] for c in status["components"].values())]
    for url in named:
        assert urlsplit(url).hostname in routed, f"{url} is not routed: {sorted(routed)}"
    assert routed["iris-blue-predictor-models.example.com"] == {"iris-blue-predictor"}
    assert routed["iris-models.example.com"] == {"iris-transformer"}
    for component in status["components"].values():
        assert urlsplit(component["address"]["url"]).hostname.split(".")[0] in services
