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
