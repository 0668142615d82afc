"""Knative mode's Knative Services, against what KServe's ksvc reconciler writes: autoscaling
annotations, concurrency and timeouts, and the traffic split between the latest and the rolled-out
revision."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from modelplane.api.constants import KNATIVE
from modelplane.kube.knative import is_revision_of, traffic
from modelplane.kube.settings import KubeSettings

from .helpers import REPO, SAMPLES, named, render_file, render_text

KNATIVE_SETTINGS = KubeSettings(default_mode=KNATIVE)


def test_one_knative_service_per_component_labelled_as_kserve_does():
    rendering = render_file(REPO / "examples" / "transformer-predictor.yaml", KNATIVE_SETTINGS)
    assert [(o["apiVersion"], o["metadata"]["name"]) for o in rendering.objects] == [
        ("serving.knative.dev/v1", "iris-mm-predictor"),
        ("serving.knative.dev/v1", "iris-mm-transformer"),
    ]
    ksvc = rendering.objects[0]
    assert ksvc["metadata"]["labels"] == {
        "serving.kserve.io/inferenceservice": "iris-mm",
        "component": "predictor",
    }
    assert ksvc["spec"]["template"]["metadata"]["labels"] == ksvc["metadata"]["labels"]
    container = ksvc["spec"]["template"]["spec"]["containers"][0]
    assert "ports" not in container  # Knative serves one port, 8080
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready"}
    assert ksvc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_autoscaling_annotations_concurrency_and_timeouts():
    rendering = render_file(SAMPLES / "autoscaling-knative.yaml", KubeSettings())
    concurrency = named(rendering, "Service", "isvc-sklearn-scale-concurrency-predictor")["spec"]["template"]
    annotations = concurrency["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k.startswith("autoscaling.knative.dev/")} == {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": "2",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "3",
    }
    spec = concurrency["spec"]
    assert (spec["containerConcurrency"], spec["timeoutSeconds"], spec["responseStartTimeoutSeconds"]) == (
        4,
        30,
        30,
    )
    rps = named(rendering, "Service", "isvc-sklearn-scale-rps-predictor")["spec"]["template"]
    annotations = rps["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/metric"] == "rps"
    assert annotations["autoscaling.knative.dev/target"] == "5"
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"  # scale to zero
    assert "autoscaling.knative.dev/max-scale" not in annotations  # maxReplicas 0: no bound
    assert "containerConcurrency" not in rps["spec"] and "timeoutSeconds" not in rps["spec"]


def test_the_autoscaler_class_and_knative_annotations_pass_through():
    rendering = render_text(
        """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  annotations:
    autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
    autoscaling.knative.dev/initial-scale: "2"
    autoscaling.knative.dev/max-scale: "9"
    serving.knative.dev/rollout-duration: 120s
spec:
  predictor:
    scaleMetric: cpu
    scaleTarget: 60
    sklearn:
      storageUri: gs://models/iris
""",
        KNATIVE_SETTINGS,
    )
    ksvc = rendering.objects[0]
    annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"
    assert annotations["autoscaling.knative.dev/initial-scale"] == "2"
    assert annotations["autoscaling.knative.dev/metric"] == "cpu"
    assert "autoscaling.knative.dev/max-scale" not in annotations  # not copied: maxReplicas decides
    assert "serving.knative.dev/rollout-duration" not in annotations
    assert ksvc["metadata"]["annotations"] == {"serving.knative.dev/rollout-duration": "120s"}


def test_a_canary_splits_between_the_latest_and_the_rolled_out_revision_with_tags():
    ksvc = render_file(SAMPLES / "knative-canary.yaml", KubeSettings()).objects[0]
    assert ksvc["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 10, "tag": "latest"},
        {
            "revisionName": "isvc-tensorflow-canary-predictor-00001",
            "latestRevision": False,
            "percent": 90,
            "tag": "prev",
        },
    ]


def test_a_renamed_predictor_starts_its_knative_service_without_the_old_ones_revision():
    """`predictor.name` makes another Knative Service, `<isvc>-<name>-predictor`, and the old one goes
    with its revisions: the status's rolled-out revision, the old Knative Service's, is no `prev`."""
    text = (SAMPLES / "knative-canary.yaml").read_text()
    renamed = text.replace("    canaryTrafficPercent: 10\n", "    canaryTrafficPercent: 10\n    name: blue\n")
    (ksvc,) = render_text(renamed, KubeSettings()).objects
    assert ksvc["metadata"]["name"] == "isvc-tensorflow-canary-blue-predictor"
    assert ksvc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100, "tag": "latest"}]


@pytest.mark.parametrize(
    ("ksvc_name", "revision", "expected"),
    [
        ("iris-predictor", "iris-predictor-00001", True),
        ("iris-predictor", "iris-predictor-100000", True),
        ("iris-blue-predictor", "iris-predictor-00001", False),
        ("iris-predictor", "iris-blue-predictor-00001", False),
        ("iris-predictor", "iris-predictor-latest", False),
    ],
)
def test_which_revisions_are_a_knative_services(ksvc_name, revision, expected):
    assert is_revision_of(ksvc_name, revision) is expected


def test_a_long_knative_service_names_its_revisions_with_a_hash():
    """Knative's `kmeta.ChildName`: a name and suffix over 63 characters keep the name's first
    `31 - len(suffix)` characters and its md5."""
    name = "a" * 50 + "-predictor"  # 60 characters: `-00001` would make 66
    hashed = name[:25] + hashlib.md5(name.encode()).hexdigest() + "-00001"
    assert len(hashed) == 63
    assert is_revision_of(name, hashed)
    assert not is_revision_of(name, name + "-00001")


@pytest.mark.parametrize(
    ("rolled_out", "percent", "tag_routing", "expected"),
    [
        (None, 10, False, [{"latestRevision": True, "percent": 100}]),  # first rollout: no canary yet
        ("r-1", None, False, [{"latestRevision": True, "percent": 100}]),  # promoted
        ("r-1", 100, True, [{"latestRevision": True, "percent": 100, "tag": "latest"}]),
        (
            "r-1",
            0,
            False,  # pinned back: the prev tag is always set
            [
                {"latestRevision": True, "percent": 0},
                {"revisionName": "r-1", "latestRevision": False, "percent": 100, "tag": "prev"},
            ],
        ),
    ],
)
def test_traffic(rolled_out, percent, tag_routing, expected):
    assert traffic(rolled_out, percent, tag_routing) == expected


@pytest.mark.parametrize("kind", ["InferenceService", "InferenceGraph"])
def test_an_initial_scale_that_is_not_an_integer_is_left_out_and_said(kind):
    """KServe drops it; Knative's webhook would refuse the Knative Service with it."""
    spec = (
        {"predictor": {"sklearn": {"storageUri": "gs://models/iris"}}}
        if kind == "InferenceService"
        else {"nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceUrl": "http://a/v1"}]}}}
    )
    text = yaml.safe_dump(
        {
            "apiVersion": "serving.kserve.io/v1beta1"
            if kind == "InferenceService"
            else "serving.kserve.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "iris", "annotations": {"autoscaling.knative.dev/initial-scale": "two"}},
            "spec": spec,
        }
    )
    rendering = render_text(text, KNATIVE_SETTINGS)
    annotations = rendering.objects[0]["spec"]["template"]["metadata"]["annotations"]
    assert "autoscaling.knative.dev/initial-scale" not in annotations
    assert [n.path for n in rendering.notes] == ["metadata.annotations.autoscaling.knative.dev/initial-scale"]


CUSTOM_TWO_PORTS = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: custom-two}
spec:
  predictor:
    containers:
      - name: kserve-container
        image: example/custom:1
        ports:
          - {name: http1, containerPort: 8080, protocol: TCP}
          - {name: h2c, containerPort: 8081, protocol: TCP}
"""


def test_a_pod_declaring_two_ports_is_refused_in_knative_mode_only():
    """Knative's webhook refuses a revision with more than one port; KServe passes it on."""
    from modelplane.kube.render import RenderError

    with pytest.raises(RenderError) as refused:
        render_text(CUSTOM_TWO_PORTS, KNATIVE_SETTINGS)
    assert refused.value.reason == "InvalidPredictorSpec" and refused.value.path == "spec.predictor"
    assert "declare 2 (kserve-container:8080, kserve-container:8081)" in str(refused.value)
    standard = render_text(CUSTOM_TWO_PORTS)
    assert named(standard, "Deployment", "custom-two-predictor")
