"""Fields one machine cannot honor, found wherever a pod spec or a container can set them."""

from __future__ import annotations

from modelplane.api.builtin_runtimes import with_builtin_runtimes
from modelplane.local.api.field_dispositions import SCHEDULING_FIELDS
from modelplane.local.api.unhonored_fields import service_unhonored, unhonored_fields

ONE_MACHINE = "every replica runs on this machine"


def isvc(spec: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "a"},
        "spec": spec,
    }


def found(resource: dict) -> list[tuple[str, str]]:
    return [(field.path, field.why) for field in unhonored_fields(resource)]


def test_scheduling_fields_of_each_component_and_canary_are_not_acted_on():
    resource = isvc(
        {
            "predictor": {
                "nodeSelector": {"gpu": "a100"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "affinity": {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]
                    }
                },
                "sklearn": {"storageUri": "pvc://m"},
            },
            "transformer": {"schedulerName": "volcano", "containers": [{"name": "kserve-container"}]},
            "canary": [{"trafficPercent": 10, "predictor": {"name": "v2", "priorityClassName": "high"}}],
        }
    )
    assert found(resource) == [
        ("spec.predictor.nodeSelector", ONE_MACHINE),
        ("spec.predictor.tolerations", ONE_MACHINE),
        ("spec.predictor.affinity", ONE_MACHINE),
        ("spec.transformer.schedulerName", ONE_MACHINE),
        ("spec.canary[0].predictor.priorityClassName", ONE_MACHINE),
    ]


def test_empty_scheduling_fields_say_nothing_and_every_field_of_the_list_is_looked_at():
    assert found(isvc({"predictor": {"nodeSelector": {}, "tolerations": []}})) == []
    every = {name: "x" for name in SCHEDULING_FIELDS}
    assert len(found(isvc({"predictor": every}))) == len(SCHEDULING_FIELDS)


def test_resources_other_than_cpu_memory_and_nvidia_gpus_are_not_acted_on():
    resource = isvc(
        {
            "predictor": {
                "resources": {"limits": {"memory": "1Gi", "nvidia.com/gpu": 1}},
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1, "amd.com/gpu": 1},
                        "requests": {"ephemeral-storage": "1Gi"},
                    },
                },
            }
        }
    )
    assert [path for path, _ in found(resource)] == [
        "spec.predictor.resources.limits[nvidia.com/gpu]",  # a pod-level GPU Kubernetes has not either
        "spec.predictor.model.resources.limits[amd.com/gpu]",
        "spec.predictor.model.resources.requests[ephemeral-storage]",
    ]


def test_runtimes_and_graphs_are_looked_at_too():
    runtime = {
        "kind": "ServingRuntime",
        "metadata": {"name": "gpu-runtime"},
        "spec": {
            "nodeSelector": {"accelerator": "h100"},
            "containers": [{"name": "kserve-container", "resources": {"limits": {"hugepages-2Mi": "1Gi"}}}],
        },
    }
    assert [path for path, _ in found(runtime)] == [
        "spec.nodeSelector",
        "spec.containers[0].resources.limits[hugepages-2Mi]",
    ]
    graph = {"kind": "InferenceGraph", "spec": {"nodeName": "n1", "resources": {"limits": {"cpu": "1"}}}}
    assert [path for path, _ in found(graph)] == ["spec.nodeName"]
    assert found({"kind": "TrainedModel", "spec": {"model": {"memory": "1Gi"}}}) == []


def test_pool_settings_are_acted_on_by_a_multi_model_runtime_only():
    def runtime(multi_model: bool) -> dict:
        spec = {"multiModel": multi_model, "replicas": 3, "builtInAdapter": {"memBufferBytes": 1024}}
        return {"kind": "ServingRuntime", "metadata": {"name": "pool"}, "spec": spec}

    assert found(runtime(True)) == []
    why = "a ModelMesh pool's setting, and this runtime is not multiModel: each service runs its own replicas"
    assert found(runtime(False)) == [("spec.replicas", why), ("spec.builtInAdapter.memBufferBytes", why)]


def test_a_services_status_names_its_runtimes_fields_too():
    runtime = {
        "kind": "ServingRuntime",
        "metadata": {"name": "gpu-runtime"},
        "spec": {"tolerations": [{"operator": "Exists"}]},
    }
    resource = isvc({"predictor": {"nodeName": "n1", "model": {"modelFormat": {"name": "sklearn"}}}})
    used = {"kind": "ServingRuntime", "name": "gpu-runtime"}
    assert service_unhonored(resource, used, with_builtin_runtimes([runtime])) == (
        f"spec.predictor.nodeName ({ONE_MACHINE})",
        f"ServingRuntime gpu-runtime: spec.tolerations ({ONE_MACHINE})",
    )
    # A built-in runtime's fields are modelplane's own, not the user's: nothing to say.
    builtin = {"kind": "ClusterServingRuntime", "name": "kserve-sklearnserver"}
    assert service_unhonored(isvc({"predictor": {}}), builtin, with_builtin_runtimes([])) == ()


def test_fields_other_fields_leave_with_nothing_to_do_are_said():
    model = {"sklearn": {"storageUri": "pvc://m"}}
    requests = isvc({"predictor": {**model, "scaleMetric": "concurrency", "scaleMetricType": "AverageValue"}})
    assert found(requests) == [
        (
            "spec.predictor.scaleMetricType",
            "it types a cpu or memory target, and this component scales on its requests",
        )
    ]
    standard = {"serving.kserve.io/deploymentMode": "Standard"}
    on_cpu = isvc({"predictor": {**model, "scaleMetric": "cpu", "scaleMetricType": "Utilization"}})
    on_cpu["metadata"]["annotations"] = standard
    assert found(on_cpu) == []
    standard_canary = (
        "KServe's Standard mode does not split traffic by it (its canaries are spec.canary): a new revision "
        "takes all the traffic once it is ready"
    )
    for strategy in ({"type": "Recreate"}, {"rollingUpdate": {"maxSurge": 1}}, None):
        fields = {"deploymentStrategy": strategy} if strategy else {}
        percent = isvc({"predictor": {**model, **fields, "canaryTrafficPercent": 20}})
        percent["metadata"]["annotations"] = standard
        assert found(percent) == [("spec.predictor.canaryTrafficPercent", standard_canary)]
    assert found(isvc({"predictor": {**model, "canaryTrafficPercent": 20}})) == []  # Knative mode splits


def test_a_modelmesh_models_service_account_is_said_to_give_it_no_credentials():
    model = {"sklearn": {"storageUri": "s3://b/m"}, "serviceAccountName": "models"}
    mesh = isvc({"predictor": model})
    mesh["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "ModelMesh"}
    assert found(mesh) == [
        (
            "spec.predictor.serviceAccountName",
            "a ModelMesh model is fetched with the storage-config Secret, as ModelMesh Serving fetches it",
        )
    ]
    assert found(isvc({"predictor": model})) == []  # elsewhere its Secrets are the credentials


def test_a_service_accounts_fields_nothing_reads_are_said():
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "models"},
        "automountServiceAccountToken": True,
        "secrets": [{"name": "s3creds"}, {"name": "other", "namespace": "elsewhere"}],
    }
    assert found(account) == [
        ("automountServiceAccountToken", "no service account token is mounted"),
        ("secrets[1].namespace", "a ServiceAccount's Secret is read by its name, in the account's namespace"),
    ]
    assert found({**account, "automountServiceAccountToken": False, "secrets": [{"name": "s3creds"}]}) == []


def test_kserves_autoscaler_class_is_said_to_do_nothing_in_knative_mode():
    model = {"sklearn": {"storageUri": "pvc://m"}}
    knative = isvc({"predictor": model})
    knative["metadata"]["annotations"] = {"serving.kserve.io/autoscalerClass": "none"}
    assert found(knative) == [
        (
            "metadata.annotations[serving.kserve.io/autoscalerClass]",
            "KServe reads it in Standard mode only: in Knative mode Knative's autoscaler scales the "
            "component (autoscaling.knative.dev/class)",
        )
    ]
    standard = isvc({"predictor": model})
    standard["metadata"]["annotations"] = {
        "serving.kserve.io/autoscalerClass": "none",
        "serving.kserve.io/deploymentMode": "Standard",
    }
    assert found(standard) == []


def test_any_object_s_finalizers_are_said_to_hold_nothing_back():
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["example.com/x"]},
    }
    assert found(config_map) == [
        (
            "metadata.finalizers",
            "a delete removes the object at once, without waiting for its finalizers to be removed",
        )
    ]
    assert found({**config_map, "metadata": {"name": "c", "finalizers": []}}) == []


def test_storage_parameters_modelplane_does_not_read_are_said():
    storage = {
        "key": "minio",
        "path": "iris",
        "parameters": {"type": "s3", "bucket": "models", "endpint_url": "http://127.0.0.1:9000"},
    }
    resource = isvc({"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storage": storage}}})
    assert [path for path, _ in found(resource)] == ["spec.predictor.model.storage.parameters.endpint_url"]


def test_the_adapter_settings_not_acted_on_are_named_each_beside_mem_buffer_bytes():
    """Before, `spec.builtInAdapter` as a whole was said to be ignored, memBufferBytes included."""
    adapter = {"serverType": "mlserver", "memBufferBytes": 1024, "modelLoadingTimeoutMillis": 90000}
    spec = {"multiModel": True, "builtInAdapter": adapter}
    paths = [path for path, _ in found({"kind": "ServingRuntime", "metadata": {"name": "p"}, "spec": spec})]
    assert paths == ["spec.builtInAdapter.serverType"]  # memBufferBytes and the load timeout are acted on


def test_logger_metadata_headers_that_are_not_header_names_are_said_to_match_nothing():
    logger = {"url": "http://sink", "mode": "all", "metadataHeaders": ["x-team", "bad header!"]}
    resource = isvc({"predictor": {"model": {"modelFormat": {"name": "sklearn"}}, "logger": logger}})
    assert found(resource) == [
        (
            "spec.predictor.logger.metadataHeaders[1]",
            "'bad header!' is not a header name: no request carries it",
        )
    ]


def test_the_autoscaling_annotations_of_a_runtime_or_a_component_are_acted_on_and_others_warned():
    """KServe gives a revision its runtime's annotations under the service's, under the component's:
    the ones the autoscaler reads are acted on from all three."""
    tuning = {
        "autoscaling.knative.dev/target": "5",
        "autoscaling.knative.dev/window": "20s",
        "serving.knative.dev/progress-deadline": "5m",
    }
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {
            "annotations": {**tuning, "example.com/team": "blue"},
            "supportedModelFormats": [{"name": "sklearn"}],
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:latest"}],
        },
    }
    assert [path for path, _ in found(runtime)] == ["spec.annotations[example.com/team]"]
    component = isvc({"predictor": {"annotations": tuning, "sklearn": {"storageUri": "pvc://m"}}})
    assert found(component) == []


def test_a_metric_knatives_hpa_class_takes_for_a_custom_one_is_said_to_scale_on_cpu():
    hpa_class = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
    model = {"sklearn": {"storageUri": "pvc://m"}}
    rps = isvc(
        {"predictor": {**model, "scaleMetric": "rps"}, "transformer": {"containers": [{"image": "t"}]}}
    )
    rps["metadata"]["annotations"] = {**hpa_class, "autoscaling.knative.dev/metric": "concurrency"}
    assert [path for path, why in found(rps) if "custom metric" in why] == [
        "spec.predictor.scaleMetric",  # KServe writes it over the annotation
        "metadata.annotations[autoscaling.knative.dev/metric]",  # which the transformer inherits
    ]
    cpu = isvc({"predictor": {**model, "scaleMetric": "cpu"}})
    cpu["metadata"]["annotations"] = hpa_class
    assert found(cpu) == []
    kpa = isvc({"predictor": {**model, "scaleMetric": "rps"}})  # the default class scales on requests
    assert found(kpa) == []
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "g", "annotations": hpa_class},
        "spec": {
            "scaleMetric": "rps",
            "nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceName": "a"}]}},
        },
    }
    assert [path for path, why in found(graph) if "custom metric" in why] == ["spec.scaleMetric"]


def test_modelmesh_annotations_are_said_where_nothing_reads_them():
    annotations = {
        "serving.kserve.io/secretKey": "localMinIO",
        "serving.kserve.io/servingRuntime": "mm-sklearn",
        "serving.kserve.io/schemaPath": "schema.json",
    }
    mesh = isvc({"predictor": {"sklearn": {"storageUri": "s3://b/m"}}})
    mesh["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "ModelMesh", **annotations}
    # A ModelMesh model acts on the key, the runtime and the schema.
    assert found(mesh) == []
    standard = isvc({"predictor": {"sklearn": {"storageUri": "s3://b/m"}}})
    standard["metadata"]["annotations"] = annotations
    assert {why for _, why in found(standard)} == {
        "a ModelMesh Serving annotation, read only for a service of deploymentMode ModelMesh"
    }


def test_a_schema_path_is_said_where_no_modelmesh_model_reads_it():
    """storage.schemaPath is a ModelMesh model's schema file; KServe's storage initializer does not
    fetch it, and ModelMesh runs no canary."""
    model = {"modelFormat": {"name": "sklearn"}, "storage": {"key": "k", "path": "m", "schemaPath": "s.json"}}
    mesh = isvc({"predictor": {"model": model}})
    mesh["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "ModelMesh"}
    assert [path for path, _ in found(mesh) if "schemaPath" in path] == []
    standard = isvc({"predictor": {"model": model}, "canary": [{"predictor": {"model": model}}]})
    said = {path: why for path, why in found(standard) if "schemaPath" in path}
    assert set(said) == {
        "spec.predictor.model.storage.schemaPath",
        "spec.canary[0].predictor.model.storage.schemaPath",
    }
    assert all(why.startswith("only ModelMesh reads a model's schema file") for why in said.values())
