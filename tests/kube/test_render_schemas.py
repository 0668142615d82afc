"""Every example, API sample and KServe scenario, rendered in both modes with either way in, gives only
objects the cluster takes: core kinds valid against the Kubernetes API's schemas, Knative Services,
HTTPRoutes and ScaledObjects against their CRDs, Knative Services against Knative's webhook too."""

from __future__ import annotations

import pytest

from modelplane.api.constants import KNATIVE, STANDARD
from modelplane.kube.settings import KubeSettings

from .helpers import SOURCES, render_file
from .schemas import problems

SETTINGS = {
    "standard-gateway": KubeSettings(default_mode=STANDARD),
    "standard-ingress": KubeSettings(default_mode=STANDARD, gateway_api=False, ingress_class="nginx"),
    "knative": KubeSettings(default_mode=KNATIVE),
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("kserve_runtimes", [False, True], ids=["builtin-runtimes", "kserve-runtimes"])
def test_rendered_objects_are_valid(source, settings, kserve_runtimes):
    rendering = render_file(source, settings, kserve_runtimes=kserve_runtimes)
    found = [problem for obj in rendering.objects for problem in problems(obj)]
    assert not found, "\n".join(found)


def test_every_kind_is_rendered_somewhere():
    """The matrix above exercises every kind of object the operator makes."""
    kinds = set()
    for settings in SETTINGS.values():
        for source in SOURCES:
            kinds |= {o["kind"] for o in render_file(source, settings, kserve_runtimes=True).objects}
    assert kinds == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "HTTPRoute",
        "Ingress",
        "ConfigMap",
    }


def test_the_checks_catch_a_bad_object():
    """A field no schema knows, a wrong type and a bad name are each refused."""
    rendering = render_file(SOURCES[0], KubeSettings())
    deployment = next(o for o in rendering.objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert problems(deployment)
    knative = render_file(SOURCES[0], KubeSettings(default_mode=KNATIVE)).objects[0]
    knative["spec"]["template"]["spec"]["containerConcurrency"] = "four"
    assert problems(knative)
    # What Knative's webhook refuses though its CRD keeps it: a port name but h2c or http1.
    knative = render_file(SOURCES[0], KubeSettings(default_mode=KNATIVE)).objects[0]
    knative["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "grpc", "containerPort": 8081}]
    assert any("port name 'grpc' is not allowed" in p for p in problems(knative))
    route = next(o for o in rendering.objects if o["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"][0]["weigth"] = 1
    assert problems(route)
    service = next(o for o in rendering.objects if o["kind"] == "Service")
    service["metadata"]["name"] = "1-not-a-dns-1035-label"
    assert problems(service)
    deployment["spec"]["template"]["metadata"]["labels"]["app"] = "isvc." + "a" * 59
    assert any("longer than 63" in p for p in problems(deployment))
