"""KServe's own samples that ask for something through an annotation or a label KServe reads: what one
machine cannot do is said, as the fields that ask for the same are."""

from __future__ import annotations

import yaml

from modelplane.local.api.unhonored_fields import unhonored_fields

# Trimmed from KServe's docs/samples/accelerators/tensorflow-gpu.yaml: KServe's pod webhook makes the
# annotation a `cloud.google.com/gke-accelerator` node selector of the GPU pods.
TENSORFLOW_GPU = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: tensorflow-gpu
  annotations:
    serving.kserve.io/gke-accelerator: nvidia-tesla-t4
spec:
  predictor:
    tensorflow:
      storageUri: gs://kfserving-examples/models/tensorflow/flowers
      resources:
        limits:
          nvidia.com/gpu: 1
"""

# Trimmed from KServe's docs/samples/v1beta1/advanced/cluster_local.yaml: the service is to be reached
# from inside the cluster only.
CLUSTER_LOCAL = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris-local
  labels:
    networking.knative.dev/visibility: cluster-local
spec:
  predictor:
    sklearn:
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
"""


def paths(text: str) -> dict[str, str]:
    return {field.path: field.why for field in unhonored_fields(yaml.safe_load(text))}


def test_gke_accelerator_annotation_is_a_node_selector_one_machine_has_no_use_for():
    found = paths(TENSORFLOW_GPU)
    assert found["metadata.annotations[serving.kserve.io/gke-accelerator]"].startswith(
        "every replica runs on this machine"
    )


def test_cluster_local_visibility_is_said_not_to_be_acted_on():
    found = paths(CLUSTER_LOCAL)
    assert "metadata.labels[networking.knative.dev/visibility]" in found
    kserve_label = CLUSTER_LOCAL.replace(
        "networking.knative.dev/visibility", "networking.kserve.io/visibility"
    )
    assert "metadata.labels[networking.kserve.io/visibility]" in paths(kserve_label)


def test_visibility_other_than_cluster_local_and_plain_labels_say_nothing():
    public = CLUSTER_LOCAL.replace("cluster-local", "external")
    assert paths(public) == {}
    assert paths(CLUSTER_LOCAL.replace("networking.knative.dev/visibility", "team")) == {}


# Trimmed from KServe's docs/samples/v1beta1/tensorflow/tensorflow.yaml: KServe's queue-proxy extension
# serves the pod's metrics (its own and the model container's) on one port.
METRIC_AGGREGATION = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: flower-sample
  annotations:
    serving.kserve.io/enable-metric-aggregation: "true"
    serving.kserve.io/enable-prometheus-scraping: "true"
spec:
  predictor:
    tensorflow:
      storageUri: gs://kfserving-examples/models/tensorflow/flowers
"""


def test_metric_aggregation_is_said_to_be_the_platform_s_metrics():
    found = paths(METRIC_AGGREGATION)
    assert list(found) == ["metadata.annotations[serving.kserve.io/enable-metric-aggregation]"]
    assert (
        "enable-prometheus-scraping"
        in found["metadata.annotations[serving.kserve.io/enable-metric-aggregation]"]
    )
    assert paths(METRIC_AGGREGATION.replace('aggregation: "true"', 'aggregation: "false"')) == {}


def annotated(annotations: dict[str, str]) -> str:
    lines = "".join(f"    {key}: {value!r}\n" for key, value in annotations.items())
    return TENSORFLOW_GPU.replace("    serving.kserve.io/gke-accelerator: nvidia-tesla-t4\n", lines)


def test_annotations_the_platform_reads_say_nothing():
    read = {
        "serving.kserve.io/deploymentMode": "Knative",
        "serving.kserve.io/enable-tag-routing": "true",
        "serving.kserve.io/stop": "false",
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "serving.kserve.io/storageSecretName": "storage-config",
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/metric": "rps",
        "autoscaling.knative.dev/window": "20s",
        "autoscaling.knative.dev/scale-down-delay": "30s",
        "autoscaling.knative.dev/initial-scale": "2",
        "team.example.com/owner": "search",  # not KServe's or Knative's: theirs
    }
    assert paths(annotated(read)) == {}


def test_annotations_kserve_or_knative_act_on_and_the_platform_does_not_are_said_with_why():
    found = paths(
        annotated(
            {
                "autoscaling.knative.dev/min-scale": "2",
                "autoscaling.knative.dev/maxScale": "3",
                "serving.knative.dev/rollout-duration": "60s",
                "serving.kserve.io/disable-auto-update": "true",
                "features.knative.dev/http-full-duplex": "Enabled",
                "internal.serving.kserve.io/logger": "true",
            }
        )
    )
    why = {path.split("[", 1)[1].rstrip("]"): reason for path, reason in found.items()}
    assert "minReplicas" in why["autoscaling.knative.dev/min-scale"]
    assert "maxReplicas" in why["autoscaling.knative.dev/maxScale"]
    assert "no gradual rollout" in why["serving.knative.dev/rollout-duration"]
    assert "new revision" in why["serving.kserve.io/disable-auto-update"]
    assert "no Knative here" in why["features.knative.dev/http-full-duplex"]
    assert "pod webhook" in why["internal.serving.kserve.io/logger"]


def test_a_misspelt_annotation_is_said_with_the_key_it_may_mean():
    found = paths(
        annotated({"serving.kserve.io/deploymentmode": "Knative", "autoscaling.knative.dev/targets": "5"})
    )
    assert found == {
        "metadata.annotations[serving.kserve.io/deploymentmode]": (
            "modelplane up does not read this annotation: did you mean serving.kserve.io/deploymentMode?"
        ),
        "metadata.annotations[autoscaling.knative.dev/targets]": (
            "modelplane up does not read this annotation: did you mean autoscaling.knative.dev/target?"
        ),
    }
    assert paths(annotated({"serving.kserve.io/something-else": "x"})) == {
        "metadata.annotations[serving.kserve.io/something-else]": "modelplane up does not read this annotation"
    }


def test_an_initial_scale_kserve_drops_is_said_wherever_it_is_set():
    """KServe reads `initial-scale` with Go's strconv.Atoi and leaves out of the revision a value that is
    not an integer, or 0 while Knative's allow-zero-initial-scale is false: the revision starts at 1."""
    for value, why in [
        ("three", "not an integer"),
        ("1_0", "not an integer"),  # Python's int() reads 10; Go's Atoi does not
        ("0", "0 needs Knative's allow-zero-initial-scale"),
    ]:
        resource = yaml.safe_load(annotated({"autoscaling.knative.dev/initial-scale": value}))
        resource["spec"]["predictor"]["annotations"] = {"autoscaling.knative.dev/initial-scale": value}
        found = {field.path: field.why for field in unhonored_fields(resource)}
        for path in (
            "metadata.annotations[autoscaling.knative.dev/initial-scale]",
            "spec.predictor.annotations[autoscaling.knative.dev/initial-scale]",
        ):
            assert found[path].startswith(why), (value, found)
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {
            "annotations": {"autoscaling.knative.dev/initial-scale": "two"},
            "supportedModelFormats": [{"name": "sklearn"}],
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:latest"}],
        },
    }
    [field] = unhonored_fields(runtime)
    assert field.path == "spec.annotations[autoscaling.knative.dev/initial-scale]"
