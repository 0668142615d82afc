"""Two operators on one cluster: only the holder of the Lease reconciles, and the other takes over when
the holder dies; the admission webhook refuses what `modelplane up` refuses, with its message."""

from __future__ import annotations

import signal

import pytest
from lightkube import ApiError
from lightkube.generic_resource import create_global_resource

from modelplane.api.errors import ValidationError
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.kube.operator.resources import DEPLOYMENTS, INFERENCE_SERVICES, LEASES

from .operator_env import REAL_CLUSTER, KubeCluster, Operator, wait_for, webhook_certificates
from .test_operator import get, iris

WEBHOOKS = create_global_resource(
    "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations"
)


@pytest.fixture
def cluster(tmp_path):
    found = KubeCluster(tmp_path)
    yield found
    found.close()


def holder(cluster: KubeCluster) -> str | None:
    lease = get(cluster, LEASES, "modelplane-operator")
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def test_one_operator_leads_and_the_other_takes_over_when_it_dies(cluster):
    first, second = Operator(cluster, "first"), Operator(cluster, "second")
    try:
        leader_name = wait_for(lambda: holder(cluster), message="a leader")
        leader, standby = (first, second) if leader_name == "first" else (second, first)
        cluster.client.create(INFERENCE_SERVICES(iris("before")))
        wait_for(lambda: get(cluster, DEPLOYMENTS, "before-predictor"), message="the leader's reconcile")
        assert "waiting to lead" in standby.log() and "leading" not in standby.log().replace(
            "waiting to lead", ""
        )
        leader.process.send_signal(signal.SIGKILL)  # no release: the Lease has to expire
        leader.process.wait()
        wait_for(
            lambda: holder(cluster) == standby.identity, timeout=30, message="the standby taking the Lease"
        )
        lease = get(cluster, LEASES, "modelplane-operator")
        assert lease["spec"]["leaseTransitions"] >= 1
        cluster.client.create(INFERENCE_SERVICES(iris("after")))
        wait_for(lambda: get(cluster, DEPLOYMENTS, "after-predictor"), message="the new leader's reconcile")
    finally:
        first.stop()
        second.stop()


def test_a_leader_that_stops_cleanly_hands_over_at_once(cluster):
    first = Operator(cluster, "first")
    wait_for(lambda: holder(cluster) == "first")
    second = Operator(cluster, "second")
    try:
        assert first.stop() == 0
        assert holder(cluster) in ("", "second")  # released before it exited, not left to expire
        wait_for(lambda: holder(cluster) == "second", timeout=30)
    finally:
        second.stop()


def _register_webhook(cluster: KubeCluster, url: str, ca_bundle: str) -> None:
    rule = {
        "apiGroups": ["serving.kserve.io"],
        "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"],
        "resources": [
            "inferenceservices",
            "inferencegraphs",
            "trainedmodels",
            "servingruntimes",
            "clusterservingruntimes",
        ],
    }
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "modelplane"},
        "webhooks": [{
            "name": "validation.serving.kserve.io", "rules": [rule], "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "clientConfig": {"url": url, "caBundle": ca_bundle},
        }],
    }  # fmt: skip
    cluster.client.create(WEBHOOKS(configuration))


@pytest.mark.skipif(REAL_CLUSTER, reason="registers a webhook at 127.0.0.1")
def test_the_webhook_refuses_with_the_message_of_modelplane_up(cluster, tmp_path):
    ca_bundle = webhook_certificates(tmp_path / "certs")
    operator = Operator(cluster, "solo", certs=tmp_path / "certs")
    try:
        _register_webhook(cluster, operator.webhook_url, ca_bundle)
        bad = iris("bad")
        bad["spec"]["predictor"]["minReplicas"] = 5
        bad["spec"]["predictor"]["maxReplicas"] = 2
        with pytest.raises(ValidationError) as expected:
            admit_with_platform_checks(bad)  # what `modelplane up` (and `modelplane render`) runs
        with pytest.raises(ApiError) as refused:
            cluster.client.create(INFERENCE_SERVICES(bad))
        message = refusal_message(bad, expected.value)
        assert (
            refused.value.status.message
            == f'admission webhook "validation.serving.kserve.io" denied the request: {message}'
        )
        assert get(cluster, INFERENCE_SERVICES, "bad") is None
        cluster.client.create(INFERENCE_SERVICES(iris("good")))  # a valid one passes
        wait_for(lambda: get(cluster, DEPLOYMENTS, "good-predictor"))
    finally:
        operator.stop()
