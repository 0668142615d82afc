"""The URLs the operator writes in an InferenceService's status, against KServe's raw reconcilers."""

from __future__ import annotations

from modelplane.api import load_text
from modelplane.api.conditions import LOADED
from modelplane.api.constants import STANDARD
from modelplane.control import ServiceState
from modelplane.control.observed import ComponentState, RevisionState
from modelplane.control.traffic import TrafficTarget
from modelplane.kube.operator.isvc_status import cluster_status
from modelplane.kube.settings import KubeSettings

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
