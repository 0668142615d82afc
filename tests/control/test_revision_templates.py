"""What each component runs: runtime containers merged with the spec, custom containers, transformers."""

from __future__ import annotations

import pytest

from modelplane.api import RuntimeSelectionError, admit, builtin_cluster_runtimes
from modelplane.control import latest_revisions, revision_name, revision_templates


def isvc(spec: dict, name: str = "iris") -> dict:
    return admit(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        },
        old=None,
    )


def templates(spec: dict, runtimes: list[dict] | None = None) -> dict[str, dict]:
    return revision_templates(isvc(spec), runtimes or [], builtin_cluster_runtimes())


def test_an_sklearn_shorthand_runs_modelplane_serve_from_the_builtin_runtime():
    predictor = templates({"predictor": {"sklearn": {"storageUri": "pvc://models/iris"}}})["predictor"]
    assert predictor["command"] == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=sklearn",
        "--http-port=8080",
        "--grpc-port=8081",
    ]
    assert predictor["storage"] == {"storageUri": "pvc://models/iris", "storage": None}
    assert predictor["runtime"] == {"kind": "ClusterServingRuntime", "name": "kserve-sklearnserver"}
    assert predictor["protocol"] == "v1"
    assert predictor["env"]["PROTOCOL"] == "v1"
    assert predictor["env"]["INFERENCE_SERVICE_NAME"] == "iris"


def test_model_args_come_after_the_runtime_args_and_model_env_wins_by_name():
    spec = {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "pvc://m",
                "args": ["--predict-proba"],
                "env": [{"name": "PROTOCOL", "value": "v2"}, {"name": "EXTRA", "value": "1"}],
                "containerConcurrency": 4,
            },
            "containerConcurrency": 4,
            "timeout": 30,
            "minReplicas": 2,
        }
    }
    predictor = templates(spec)["predictor"]
    assert predictor["command"][-1] == "--predict-proba"
    assert predictor["env"]["PROTOCOL"] == "v2"
    assert predictor["env"]["EXTRA"] == "1"
    assert (predictor["containerConcurrency"], predictor["timeout"], predictor["minReplicas"]) == (4, 30, 2)


def test_volume_mounts_merge_by_mount_path_and_volumes_by_name_with_the_runtimes():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mounted", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True, "priority": 9}],
            "volumes": [{"name": "shared", "emptyDir": {}}, {"name": "config", "configMap": {"name": "a"}}],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "example/server",
                    "command": ["serve"],
                    "volumeMounts": [
                        {"name": "shared", "mountPath": "/shared"},
                        {"name": "config", "mountPath": "/etc/config"},
                    ],
                }
            ],
        },
    }
    model = {
        "modelFormat": {"name": "sklearn"},
        "runtime": "mounted",
        "storageUri": "pvc://m",
        "volumeMounts": [
            {"name": "mine", "mountPath": "/etc/config"},
            {"name": "cache", "mountPath": "/cache"},
        ],
    }
    volumes = [{"name": "mine", "configMap": {"name": "b"}}, {"name": "cache", "emptyDir": {}}]
    found = templates({"predictor": {"model": model, "volumes": volumes}}, [runtime])["predictor"]["volumes"]
    assert found["mounts"] == [
        {"name": "shared", "mountPath": "/shared"},
        {"name": "mine", "mountPath": "/etc/config"},
        {"name": "cache", "mountPath": "/cache"},
    ]
    assert sorted(found["sources"]) == ["cache", "config", "mine", "shared"]
    assert "volumes" not in templates({"predictor": {"sklearn": {"storageUri": "pvc://m"}}})["predictor"]


def test_model_resources_merge_into_the_runtimes_by_name_and_pod_resources_are_kept():
    spec = {
        "predictor": {
            "resources": {"limits": {"memory": "1Gi"}},
            "sklearn": {
                "storageUri": "pvc://m",
                "resources": {"limits": {"cpu": "3", "nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}},
            },
        }
    }
    predictor = templates(spec)["predictor"]
    # The runtime asks for cpu 1 and memory 2Gi; the model's amounts win by name, as a strategic merge.
    assert predictor["resources"] == {
        "limits": {"cpu": "3", "memory": "2Gi", "nvidia.com/gpu": 1},
        "requests": {"cpu": "500m", "memory": "2Gi"},
    }
    assert predictor["podResources"] == {"limits": {"memory": "1Gi"}}


def test_a_custom_container_gets_kserves_default_resources():
    spec = {"predictor": {"containers": [{"name": "kserve-container", "image": "x", "command": ["serve"]}]}}
    resources = templates(spec)["predictor"]["resources"]
    assert resources == {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}


def test_a_custom_predictor_runs_its_command_and_args_with_its_storage_uri():
    container = {
        "name": "kserve-container",
        "image": "example/doubler",
        "command": ["python", "/mnt/models/model.py"],
        "args": ["--verbose"],
        "env": [{"name": "STORAGE_URI", "value": "pvc://code"}, {"name": "PROTOCOL", "value": "v2"}],
        "ports": [{"containerPort": 9000}],
    }
    predictor = templates({"predictor": {"containers": [container]}})["predictor"]
    assert predictor["command"] == ["python", "/mnt/models/model.py", "--verbose"]
    assert predictor["storage"] == {"storageUri": "pvc://code", "storage": None}
    assert predictor["protocol"] == "v2"
    assert predictor["ports"]["http"] == 9000
    assert predictor["runtime"] is None


def test_probes_are_kept_with_their_named_ports_as_numbers_and_a_bare_readiness_path_as_before():
    container = {
        "name": "kserve-container",
        "image": "example/server",
        "command": ["serve"],
        "ports": [{"containerPort": 9000, "name": "http1"}],
        "livenessProbe": {"httpGet": {"path": "/live", "port": "http1"}, "periodSeconds": 5},
        "startupProbe": {"tcpSocket": {"port": "9000"}},
        "readinessProbe": {"httpGet": {"path": "/ready"}},
    }
    predictor = templates({"predictor": {"containers": [container]}})["predictor"]
    assert predictor["livenessProbe"] == {"httpGet": {"path": "/live", "port": 9000}, "periodSeconds": 5}
    assert predictor["startupProbe"] == {"tcpSocket": {"port": 9000}}
    assert predictor["readinessPath"] == "/ready" and "readinessProbe" not in predictor
    container["readinessProbe"] = {"httpGet": {"path": "/ready"}, "failureThreshold": 1}
    predictor = templates({"predictor": {"containers": [container]}})["predictor"]
    assert predictor["readinessProbe"] == container["readinessProbe"]


def test_lifecycle_hooks_and_the_grace_period_are_kept_and_only_when_set():
    container = {
        "name": "kserve-container",
        "image": "example/server",
        "command": ["serve"],
        "ports": [{"containerPort": 9000, "name": "http1"}],
        "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": "http1"}}, "stopSignal": "SIGINT"},
    }
    spec = {"predictor": {"containers": [container], "terminationGracePeriodSeconds": 90}}
    predictor = templates(spec)["predictor"]
    assert predictor["lifecycle"] == {
        "preStop": {"httpGet": {"path": "/drain", "port": 9000}},
        "stopSignal": "SIGINT",
    }
    assert predictor["terminationGracePeriodSeconds"] == 90
    plain = templates({"predictor": {"sklearn": {"storageUri": "pvc://models/iris"}}})["predictor"]
    assert "lifecycle" not in plain and "terminationGracePeriodSeconds" not in plain


def test_a_runtime_s_grace_period_applies_where_the_predictor_sets_none():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "slow-stop", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True, "priority": 9}],
            "terminationGracePeriodSeconds": 120,
            "containers": [{"name": "kserve-container", "image": "example/server", "command": ["serve"]}],
        },
    }
    model = {"modelFormat": {"name": "sklearn"}, "runtime": "slow-stop", "storageUri": "pvc://m"}
    assert (
        templates({"predictor": {"model": model}}, [runtime])["predictor"]["terminationGracePeriodSeconds"]
        == 120
    )
    own = {"predictor": {"model": model, "terminationGracePeriodSeconds": 5}}
    assert templates(own, [runtime])["predictor"]["terminationGracePeriodSeconds"] == 5


def test_where_storage_credentials_come_from_is_kept_only_when_said():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "with-account", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True, "priority": 9}],
            "serviceAccountName": "runtime-account",
            "containers": [{"name": "kserve-container", "image": "example/server", "command": ["serve"]}],
        },
    }
    model = {"modelFormat": {"name": "sklearn"}, "runtime": "with-account", "storageUri": "s3://b/m"}
    assert "credentials" not in templates({"predictor": {"sklearn": {"storageUri": "s3://b/m"}}})["predictor"]
    by_runtime = templates({"predictor": {"model": model}}, [runtime])["predictor"]
    assert by_runtime["credentials"] == {"serviceAccountName": "runtime-account"}
    own = {"predictor": {"model": model, "serviceAccountName": "mine"}}
    assert templates(own, [runtime])["predictor"]["credentials"] == {"serviceAccountName": "mine"}
    deprecated = {"predictor": {"serviceAccount": "old", "sklearn": {"storageUri": "s3://b/m"}}}
    assert templates(deprecated)["predictor"]["credentials"] == {"serviceAccountName": "old"}
    annotated = isvc({"predictor": {"sklearn": {"storageUri": "s3://b/m"}}})
    annotated["metadata"]["annotations"] = {"serving.kserve.io/storageSecretName": "s3creds"}
    found = revision_templates(annotated, [], builtin_cluster_runtimes())["predictor"]["credentials"]
    assert found == {"storageSecretName": "s3creds"}


def test_the_environment_s_sources_and_the_pod_s_facts_are_kept_only_when_used():
    env = [
        {"name": "A", "value": "a"},
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "B", "value": "$(A)-b"},
    ]
    container = {"name": "kserve-container", "image": "example/server", "command": ["serve"], "env": env}
    spec = {
        "predictor": {"containers": [container], "serviceAccountName": "reader", "labels": {"team": "ml"}}
    }
    predictor = templates(spec)["predictor"]
    assert predictor["envSpec"]["env"] == env and predictor["envSpec"]["envFrom"] == []
    pod = predictor["envSpec"]["pod"]
    assert pod["namespace"] == "default" and pod["serviceAccountName"] == "reader"
    assert pod["labels"] == {
        "team": "ml",
        "serving.kserve.io/inferenceservice": "iris",
        "component": "predictor",
        "app": "isvc.iris-predictor",
    }
    container["env"] = [{"name": "A", "value": "a"}]
    assert "envSpec" not in templates({"predictor": {"containers": [container]}})["predictor"]


def test_a_runtimes_pod_labels_annotations_and_account_reach_the_downward_api_under_the_services():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "labelled", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True, "priority": 9}],
            "labels": {"runtime": "labelled", "team": "platform"},
            "annotations": {"example.com/from": "runtime"},
            "serviceAccountName": "runtime-account",
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "example/server",
                    "command": ["serve"],
                    "env": [
                        {
                            "name": "RUNTIME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['runtime']"}},
                        }
                    ],
                }
            ],
        },
    }
    model = {"modelFormat": {"name": "sklearn"}, "runtime": "labelled", "storageUri": "pvc://m"}
    pod = templates({"predictor": {"model": model, "labels": {"team": "ml"}}}, [runtime])["predictor"][
        "envSpec"
    ]["pod"]
    assert pod["labels"]["runtime"] == "labelled" and pod["labels"]["team"] == "ml"
    assert pod["annotations"]["example.com/from"] == "runtime"
    assert pod["serviceAccountName"] == "runtime-account"
    own = {"predictor": {"model": model, "serviceAccount": "mine"}}
    assert templates(own, [runtime])["predictor"]["envSpec"]["pod"]["serviceAccountName"] == "mine"


def test_storage_uris_are_kept_with_their_mount_paths_and_the_predictor_is_not_multi_model():
    model = {"modelFormat": {"name": "sklearn"}}
    uris = [{"uri": "s3://b/base"}, {"uri": "s3://b/lora", "mountPath": "/mnt/models/lora"}]
    predictor = templates({"predictor": {"model": model, "storageUris": uris}})["predictor"]
    assert predictor["storageUris"] == [
        {"uri": "s3://b/base", "mountPath": "/mnt/models"},
        {"uri": "s3://b/lora", "mountPath": "/mnt/models/lora"},
    ]
    assert predictor["storage"] is None and "MULTI_MODEL_SERVER" not in predictor["env"]


def test_a_transformer_gets_kserves_default_args_unless_it_sets_them():
    spec = {
        "predictor": {"sklearn": {"storageUri": "pvc://m"}},
        "transformer": {
            "containers": [{"name": "kserve-container", "image": "t", "command": ["t", "--http_port=9000"]}]
        },
    }
    transformer = templates(spec)["transformer"]
    assert transformer["command"] == [
        "t",
        "--http_port=9000",
        "--model_name",
        "iris",
        "--predictor_host",
        "iris-predictor.default",
        "--grpc_port",
        "8081",
    ]


def test_a_transformer_listens_for_grpc_on_its_declared_grpc_port_unless_it_sets_one():
    transformer = {"name": "kserve-container", "image": "t", "command": ["t"]}
    spec = {"predictor": {"sklearn": {"storageUri": "pvc://m"}}, "transformer": {"containers": [transformer]}}
    transformer["ports"] = [{"containerPort": 8080, "name": "http1"}, {"containerPort": 9000, "name": "grpc"}]
    assert templates(spec)["transformer"]["command"][-2:] == ["--grpc_port", "9000"]
    transformer["command"] = ["t", "--grpc-port=7000"]
    assert "--grpc_port" not in templates(spec)["transformer"]["command"]


def test_a_batcher_becomes_the_flags_of_modelplane_serve():
    batcher = {"maxBatchSize": 8, "maxLatency": 50, "timeout": 30}
    found = templates(
        {
            "predictor": {"sklearn": {"storageUri": "pvc://m"}, "batcher": batcher},
            "transformer": {
                "containers": [
                    {"name": "c", "image": "t", "command": ["modelplane", "serve", "--model-class", "t.py:T"]}
                ],
                "batcher": {},
            },
        }
    )
    assert found["predictor"]["command"][-4:] == [
        "--enable-batcher",
        "--max-batch-size=8",
        "--max-latency=50",
        "--batch-timeout=30",
    ]
    # Unset fields keep modelplane serve's defaults, which are KServe's.
    assert found["transformer"]["command"][-1] == "--enable-batcher"
    without = templates({"predictor": {"sklearn": {"storageUri": "pvc://m"}}})["predictor"]
    assert "--enable-batcher" not in without["command"]


def test_a_batcher_in_front_of_another_program_is_the_templates_own():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mine", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "x", "command": ["serve-it", "{{.Name}}"]}],
        },
    }
    spec = {"predictor": {"sklearn": {"storageUri": "pvc://m"}, "batcher": {"maxBatchSize": 4}}}
    predictor = templates(spec, [runtime])["predictor"]
    # The platform starts `modelplane batcher` in front of it (replicas/batcher_sidecar.py).
    assert predictor["command"] == ["serve-it", "iris"]
    assert predictor["batcher"] == {"maxBatchSize": 4}
    custom = {"containers": [{"name": "c", "image": "x", "command": ["python", "model.py"]}]}
    found = templates({"predictor": {**custom, "batcher": {"maxLatency": 20, "timeout": None}}})
    assert found["predictor"]["batcher"] == {"maxLatency": 20}
    assert "batcher" not in templates({"predictor": custom})["predictor"]


def test_a_batcher_sidecar_in_a_scraped_service_serves_the_metrics_at_its_scrape_path():
    custom = {"containers": [{"name": "c", "image": "x", "command": ["python", "model.py"]}]}
    service = isvc({"predictor": {**custom, "batcher": {"maxBatchSize": 4}}})
    annotations = service["metadata"]["annotations"] = {
        "serving.kserve.io/enable-prometheus-scraping": "true"
    }
    found = revision_templates(service, [], builtin_cluster_runtimes())["predictor"]
    assert found["batcher"] == {"maxBatchSize": 4, "metricsPath": "/metrics"}
    annotations["prometheus.kserve.io/path"] = "stats/prometheus"
    found = revision_templates(service, [], builtin_cluster_runtimes())["predictor"]
    assert found["batcher"] == {"maxBatchSize": 4, "metricsPath": "/stats/prometheus"}


def test_a_batcher_sidecar_reads_the_runtimes_metrics_path_unless_the_service_sets_its_own():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "own", "namespace": "default"},
        "spec": {
            "annotations": {"prometheus.kserve.io/path": "/stats"},
            "supportedModelFormats": [{"name": "own", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "x", "command": ["serve-it"]}],
        },
    }
    model = {"model": {"modelFormat": {"name": "own"}}, "batcher": {"maxBatchSize": 4}}
    service = isvc({"predictor": model})
    annotations = service["metadata"]["annotations"] = {
        "serving.kserve.io/enable-prometheus-scraping": "true"
    }
    found = revision_templates(service, [runtime], builtin_cluster_runtimes())["predictor"]
    assert found["batcher"]["metricsPath"] == "/stats"
    annotations["prometheus.kserve.io/path"] = "/own"
    found = revision_templates(service, [runtime], builtin_cluster_runtimes())["predictor"]
    assert found["batcher"]["metricsPath"] == "/own"


def test_an_unknown_runtime_is_runtime_not_recognized():
    spec = {
        "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "runtime": "nope", "storageUri": "x"}}
    }
    with pytest.raises(RuntimeSelectionError) as error:
        templates(spec)
    assert error.value.reason == "RuntimeNotRecognized"


def test_a_format_no_runtime_serves_is_no_supporting_runtime():
    with pytest.raises(RuntimeSelectionError) as error:
        templates({"predictor": {"model": {"modelFormat": {"name": "autogluon"}, "storageUri": "gs://x/y"}}})
    assert error.value.reason == "NoSupportingRuntime"


def test_a_namespaced_runtime_is_preferred_and_rendered_with_the_service_metadata():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mine", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "x", "command": ["serve-it", "{{.Name}}"]}],
        },
    }
    predictor = templates({"predictor": {"sklearn": {"storageUri": "pvc://m"}}}, [runtime])["predictor"]
    assert predictor["command"] == ["serve-it", "iris"]
    assert predictor["runtime"] == {"kind": "ServingRuntime", "name": "mine"}


def test_same_template_keeps_the_revision_a_changed_one_gets_the_next_number():
    first = templates({"predictor": {"sklearn": {"storageUri": "pvc://a"}}})
    latest, created = latest_revisions("iris", [], first)
    assert [r.name for r in created] == ["iris-predictor-00001"]
    again, created_again = latest_revisions("iris", created, first)
    assert again["predictor"] is latest["predictor"] and created_again == []
    changed = templates({"predictor": {"sklearn": {"storageUri": "pvc://b"}}})
    newer, created_newer = latest_revisions("iris", created, changed)
    assert newer["predictor"].name == revision_name("iris", "predictor", 2) == "iris-predictor-00002"
    assert created_newer == [newer["predictor"]]


def test_an_art_explainer_runs_kserves_art_container_as_modelplane_serve():
    spec = {
        "predictor": {"sklearn": {"storageUri": "pvc://models/digits"}},
        "explainer": {
            "containerConcurrency": 2,
            "art": {
                "type": "SquareAttack",
                "config": {"nb_classes": "10", "max_iter": "50"},
                "args": ["--x=1"],
            },
        },
    }
    explainer = templates(spec)["explainer"]
    assert explainer["command"] == [
        "modelplane",
        "serve",
        "--model-name=iris",
        "--runtime=art",
        "--http-port=8080",
        "--grpc-port=8081",
        "--predictor-host=iris-predictor.default",
        "--workers=2",
        "--adversary-type=SquareAttack",
        "--max-iter=50",
        "--nb-classes=10",
    ]
    assert explainer["image"] == {
        "image": "kserve/art-explainer:latest",
        "runs": "modelplane serve --runtime=art",
        "dropped": ["--x=1 (KServe's ART explainer does not read it)"],
    }
    assert explainer["storage"] is None and explainer["protocol"] == "v1"


def test_a_custom_explainer_gets_kserves_default_args_unless_it_sets_them():
    spec = {
        "predictor": {"sklearn": {"storageUri": "pvc://models/iris"}},
        "explainer": {
            "containers": [{"name": "kserve-container", "image": "x", "command": ["python", "e.py"]}]
        },
    }
    assert templates(spec)["explainer"]["command"] == [
        "python",
        "e.py",
        "--model_name",
        "iris",
        "--predictor_host",
        "iris-predictor.default",
        "--http_port",
        "8080",
        "--grpc_port",
        "8081",
    ]


@pytest.mark.parametrize("autoscaler", ["none", "external"])
def test_kserves_autoscaler_class_keeps_a_fixed_count_in_standard_mode_only(autoscaler):
    from modelplane.control.autoscaling_settings import revision_scaling

    def scaling(mode: str):
        service = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m/iris"}, "minReplicas": 0}})
        service["metadata"]["annotations"] = {
            "serving.kserve.io/deploymentMode": mode,
            "serving.kserve.io/autoscalerClass": autoscaler,
        }
        template = revision_templates(service, [], builtin_cluster_runtimes())["predictor"]
        return revision_scaling(template)

    assert scaling("Standard") is None
    # KServe reads the class only in its Standard-mode reconciler: Knative's KPA scales the revision.
    assert scaling("Knative").min_replicas == 0


def test_a_revision_not_run_by_knative_says_its_mode_and_only_then():
    spec = {"predictor": {"containers": [{"name": "kserve-container", "image": "x", "command": ["./serve"]}]}}
    assert "deploymentMode" not in templates(spec)["predictor"]
    standard = isvc(spec)
    standard["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    template = revision_templates(standard, [], builtin_cluster_runtimes())["predictor"]
    assert template["deploymentMode"] == "Standard"


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([{"containerPort": 8081, "name": "h2c", "protocol": "TCP"}], {"http": 8080, "grpc": 8081}),
        (
            [{"containerPort": 9000, "name": "grpc-port"}, {"containerPort": 7000}],
            {"http": 7000, "grpc": 9000},
        ),
        ([{"containerPort": 7000, "name": "http1"}], {"http": 7000, "grpc": 8081}),
        ([], {"http": 8080, "grpc": 8081}),
    ],
)
def test_a_containers_ports_are_told_apart_by_name(ports, expected):
    container = {"name": "kserve-container", "image": "x", "command": ["./serve"], "ports": ports}
    assert templates({"predictor": {"containers": [container]}})["predictor"]["ports"] == expected


def test_the_models_own_args_and_env_are_rendered_with_the_service_metadata_as_the_runtimes_are():
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mine", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "x", "command": ["serve-it", "{{.Name}}"]}],
        },
    }
    model = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": "pvc://m",
        "args": ["--served-name={{.Name}}-{{.Namespace}}"],
        "env": [{"name": "TEAM", "value": "{{.Labels.team}}"}],
    }
    service = isvc({"predictor": {"model": model}})
    service["metadata"]["labels"] = {"team": "blue"}
    predictor = revision_templates(service, [runtime], builtin_cluster_runtimes())["predictor"]
    assert predictor["command"] == ["serve-it", "iris", "--served-name=iris-default"]
    assert predictor["env"]["TEAM"] == "blue"


def test_a_components_own_autoscaling_annotations_tune_its_autoscaler_over_the_services():
    from modelplane.control.autoscaling_settings import revision_scaling

    service = isvc({"predictor": {"sklearn": {"storageUri": "pvc://m/iris"}}})
    service["metadata"]["annotations"] = {"autoscaling.knative.dev/target": "5"}
    service["spec"]["predictor"]["annotations"] = {
        "autoscaling.knative.dev/target": "3",
        "serving.knative.dev/progress-deadline": "90s",
    }
    template = revision_templates(service, [], builtin_cluster_runtimes())["predictor"]
    assert template["scalingAnnotations"] == {"autoscaling.knative.dev/target": "3"}
    assert revision_scaling(template).target == 3
    assert template["progressDeadline"] == 90


def annotated_runtime(annotations: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "tuned", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True, "priority": 9}],
            "annotations": annotations,
            "containers": [{"name": "kserve-container", "image": "example/server", "command": ["serve"]}],
        },
    }


def test_a_runtimes_autoscaling_annotations_tune_its_predictor_under_the_services_and_its_own():
    """KServe gives a predictor's revision its runtime's annotations under the service's, under the
    component's own."""
    from modelplane.control.autoscaling_settings import revision_scaling

    runtime = annotated_runtime(
        {
            "autoscaling.knative.dev/window": "20s",
            "autoscaling.knative.dev/target": "7",
            "autoscaling.knative.dev/initial-scale": "2",
            "serving.knative.dev/progress-deadline": "2m",
        }
    )
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m/iris"}
    service = isvc({"predictor": {"model": model, "annotations": {"autoscaling.knative.dev/target": "3"}}})
    service["metadata"]["annotations"] = {"autoscaling.knative.dev/window": "30s"}
    template = revision_templates(service, [runtime], builtin_cluster_runtimes())["predictor"]
    assert template["scalingAnnotations"] == {
        "autoscaling.knative.dev/initial-scale": "2",
        "autoscaling.knative.dev/target": "3",
        "autoscaling.knative.dev/window": "30s",
    }
    settings = revision_scaling(template)
    assert (settings.initial_scale, settings.target, settings.stable_window) == (2, 3, 30)
    assert template["progressDeadline"] == 120


def test_a_runtimes_hpa_class_scales_its_predictor_on_cpu_in_knative_mode():
    runtime = annotated_runtime(
        {
            "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
            "autoscaling.knative.dev/target": "50",
        }
    )
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m/iris"}
    template = templates({"predictor": {"model": model}}, [runtime])["predictor"]
    assert template["hpa"]["class"] == "hpa.autoscaling.knative.dev"
    assert template["hpa"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 50,
    }


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        (
            {"autoscaling.knative.dev/window": "2s"},
            "runtime tuned: autoscaling.knative.dev/window must be between 6s and 1h, not 2s"
            " (in the runtime's spec.annotations)",
        ),
        (
            {"autoscaling.knative.dev/metric": "cpu"},
            "runtime tuned: invalid value: cpu: autoscaling.knative.dev/metric",
        ),
        ({"autoscaling.knative.dev/target": "abc"}, "autoscaling.knative.dev/target must be a number"),
        ({"serving.knative.dev/progress-deadline": "soon"}, "serving.knative.dev/progress-deadline must be"),
    ],
)
def test_a_runtime_value_the_autoscaler_would_refuse_makes_the_predictor_invalid(annotations, message):
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m/iris"}
    with pytest.raises(RuntimeSelectionError) as refused:
        templates({"predictor": {"model": model}}, [annotated_runtime(annotations)])
    assert refused.value.reason == "InvalidPredictorSpec"
    assert message in str(refused.value)
    # The service's own value reaches the revision instead: the runtime's is not judged.
    key, _ = next(iter(annotations.items()))
    fine = {"autoscaling.knative.dev/metric": "rps", "serving.knative.dev/progress-deadline": "5m"}
    fine = {key: fine.get(key, "20s" if key.endswith("window") else "5")}
    service = isvc({"predictor": {"model": model, "annotations": fine}})
    revision_templates(service, [annotated_runtime(annotations)], builtin_cluster_runtimes())


def own_runtime(container: dict, **spec) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "mine", "namespace": "default"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [container],
            **spec,
        },
    }


def test_a_runtime_without_a_kserve_container_is_refused_with_kserves_words():
    runtime = own_runtime({"name": "server", "image": "x", "command": ["serve-it"]})
    with pytest.raises(RuntimeSelectionError) as error:
        templates({"predictor": {"sklearn": {"storageUri": "pvc://m"}}}, [runtime])
    assert error.value.reason == "InvalidPredictorSpec"
    assert error.value.message == "failed to find kserve-container in ServingRuntime containers"
    assert "'server'" in str(error.value)


def test_a_multi_model_runtimes_server_may_have_any_name():
    from modelplane.control.mesh_pool_template import pool_template
    from modelplane.control.modelmesh import PoolSpec

    runtime = own_runtime({"name": "server", "image": "x", "command": ["serve-it"]}, multiModel=True)
    pool = PoolSpec(
        namespace="default",
        kind="ServingRuntime",
        runtime="mine",
        replicas=1,
        memory=2**30,
        capacity=2**29,
        formats=("sklearn",),
    )
    assert pool_template(pool, [runtime], [])["command"][0] == "serve-it"


def test_a_placeholder_kserve_cannot_render_is_its_invalid_predictor_spec():
    runtime = own_runtime(
        {"name": "kserve-container", "image": "x", "command": ["serve-it", '{{index .Labels "a/b"}}']}
    )
    with pytest.raises(RuntimeSelectionError) as error:
        templates({"predictor": {"sklearn": {"storageUri": "pvc://m"}}}, [runtime])
    assert error.value.reason == "InvalidPredictorSpec"
    assert error.value.message == (
        "failed to replace placeholders in serving runtime mine Container kserve-container"
    )
    assert "backquotes" in str(error.value)


def test_a_missing_label_renders_as_nothing_in_the_runtime_and_the_models_own_fields():
    runtime = own_runtime(
        {"name": "kserve-container", "image": "x", "command": ["serve-it", "--class={{.Labels.modelClass}}"]}
    )
    model = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": "pvc://m",
        "env": [{"name": "TEAM", "value": "{{.Annotations.team}}"}],
    }
    predictor = templates({"predictor": {"model": model}}, [runtime])["predictor"]
    assert predictor["command"] == ["serve-it", "--class="]
    assert predictor["env"]["TEAM"] == ""
