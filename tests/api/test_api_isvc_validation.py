"""Each InferenceService validation rule, with KServe's message and a field path."""

from __future__ import annotations

import pytest

from modelplane.api import FieldError, ValidationError, admit

from .helpers import fields, isvc, messages, model_predictor, rejection, sklearn_predictor

MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER = "serving.kserve.io/autoscalerClass"
STANDARD_HPA = {MODE: "Standard", AUTOSCALER: "hpa"}
STANDARD_KEDA = {MODE: "Standard", AUTOSCALER: "keda"}

PREDICTOR_ONE_OF = (
    "exactly one of [Name, SKLearn, XGBoost, Tensorflow, PyTorch, Triton, ONNX, HuggingFace, PMML, LightGBM, "
    "Paddle, Model, StorageUris, StorageContainerName, WorkerSpec, PodSpec] must be specified in PredictorSpec"
)


@pytest.mark.parametrize("name", ["Abc-123", "4abc-3", "-abc-3", "abc-3-", "abc.123"])
def test_name_format(name):
    error = rejection(isvc(name=name)).errors[0]
    assert error == FieldError(
        "metadata.name",
        f'the InferenceService "{name}" is invalid: a InferenceService name must consist of lower case '
        "alphanumeric characters or '-', and must start with alphabetical character. "
        '(e.g. "my-name" or "abc-123", regex used for validation is \'[a-z]([-a-z0-9]*[a-z0-9])?\')',
    )


def test_autoscaler_class():
    error = rejection(isvc(annotations={AUTOSCALER: "kpa"})).errors[0]
    assert error.path == "metadata.annotations[serving.kserve.io/autoscalerClass]"
    assert error.message == "[kpa] is not a supported autoscaler class type"


@pytest.mark.parametrize("autoscaler", ["hpa", "keda", "external", "none"])
def test_allowed_autoscaler_classes(autoscaler):
    admit(isvc(annotations={MODE: "Standard", AUTOSCALER: autoscaler}))


def test_unsupported_deployment_mode():
    assert messages(isvc(annotations={MODE: "Mesh"})) == [
        'Unsupported value: "Mesh": supported values: "Standard", "Knative", "ModelMesh"'
    ]


def test_the_modelmesh_mode_is_admitted():
    admitted = admit(isvc(annotations={MODE: "ModelMesh"}))
    assert admitted["metadata"]["annotations"][MODE] == "ModelMesh"


def test_a_modelmesh_service_cannot_become_standard():
    old = _stored(isvc(annotations={MODE: "ModelMesh"}), "ModelMesh")
    error = rejection(isvc(annotations={MODE: "Standard"}), old=old).errors[0]
    assert error.message == "update rejected: deploymentMode cannot be changed from 'ModelMesh' to 'Standard'"


def test_blocked_env_var_in_a_custom_container():
    predictor = {
        "containers": [
            {"name": "kserve-container", "image": "x", "env": [{"name": "PYTHONPATH", "value": "/x"}]}
        ]
    }
    error = rejection(isvc(predictor)).errors[0]
    assert error.path == "spec.predictor.containers[0].env[0]"
    assert error.message == (
        'the InferenceService "my-model" is invalid: setting PYTHONPATH in container "kserve-container" '
        "is not allowed for security reasons"
    )


def test_blocked_env_var_in_a_framework_container():
    predictor = {"sklearn": {"storageUri": "file:///m", "env": [{"name": "PYTHONPATH", "value": "/x"}]}}
    error = rejection(isvc(predictor)).errors[0]
    assert error.path == "spec.predictor.sklearn.env[0]"
    assert 'setting PYTHONPATH in container "" is not allowed' in error.message


def test_blocked_env_var_in_a_transformer():
    transformer = {"containers": [{"image": "t", "env": [{"name": "PYTHONPATH", "value": "/x"}]}]}
    assert fields(isvc(transformer=transformer)) == ["spec.transformer.containers[0].env[0]"]


def test_transformer_container_with_storage_uri():
    predictor = {
        **sklearn_predictor(),
        "containers": [
            {"name": "transformer-container", "image": "t", "env": [{"name": "STORAGE_URI", "value": "x"}]}
        ],
    }
    assert messages(isvc(predictor)) == ["storage uri should not be specified in transformer container"]


def test_collocated_transformer_container_is_accepted():
    predictor = {**sklearn_predictor(), "containers": [{"name": "transformer-container", "image": "t"}]}
    admitted = admit(isvc(predictor))
    assert admitted["spec"]["predictor"]["containers"][0]["name"] == "transformer-container"


@pytest.mark.parametrize("implementation", ["sklearn", "model"])
def test_name_not_allowed_in_standard_predictor(implementation):
    if implementation == "model":
        predictor = model_predictor(name="custom")
    else:
        predictor = {"sklearn": {"storageUri": "file:///m", "name": "custom"}}
    error = rejection(isvc(predictor)).errors[0]
    # The error points at the field as written, though defaulting moved the shorthand into `model`.
    assert error == FieldError(
        f"spec.predictor.{implementation}.name", "the 'name' field is not allowed in standard predictor"
    )


def test_storage_uri_and_storage_uris_together():
    predictor = {**sklearn_predictor(), "storageUris": [{"uri": "file:///a", "mountPath": "/mnt/a"}]}
    assert messages(isvc(predictor)) == ["Setting both StorageURI and StorageURIs is not supported."]


@pytest.mark.parametrize(
    ("storage_uris", "message"),
    [
        ([{"uri": "s3://b/a", "mountPath": "/"}], "storage path cannot be empty"),
        ([{"uri": "s3://b/a", "mountPath": "relative"}], None),
        (
            [{"uri": "s3://b/a", "mountPath": "/mnt/../etc"}],
            "storage path cannot contain '..' for security reasons: /mnt/../etc",
        ),
        (
            [{"uri": "s3://b/a", "mountPath": "/a/x"}, {"uri": "s3://b/b", "mountPath": "/b/y"}],
            "storage paths must have a common parent directory. Current paths: [/a/x /b/y] have no common parent "
            "beyond root",
        ),
        (
            [{"uri": "pvc://c/a", "mountPath": "/mnt/p"}, {"uri": "pvc://c/b", "mountPath": "/mnt/p"}],
            "PVC storage paths must be unique",
        ),
    ],
)
def test_storage_uris_rules(storage_uris, message):
    predictor = {**model_predictor(), "storageUris": storage_uris}
    del predictor["model"]["storageUri"]
    error = rejection(isvc(predictor)).errors[0]
    if message is None:
        # The CRD's pattern catches a relative mount path first.
        assert error.path == "spec.predictor.storageUris[0].mountPath"
        assert error.message == "Invalid value: \"relative\": should match '^/.*'"
    else:
        assert error == FieldError("spec.predictor.storageUris", message)


def test_empty_storage_uri_is_caught_by_the_schema():
    predictor = {
        "model": {"modelFormat": {"name": "sklearn"}},
        "storageUris": [{"uri": "", "mountPath": "/mnt/a"}],
    }
    error = rejection(isvc(predictor)).errors[0]
    assert error == FieldError(
        "spec.predictor.storageUris[0].uri", 'Invalid value: "": should be at least 1 chars long'
    )


def test_storage_uris_with_a_common_parent_are_accepted():
    predictor = {
        **model_predictor(),
        "storageUris": [{"uri": "s3://b/a", "mountPath": "/mnt/models/a"}, {"uri": "s3://b/b"}],
    }
    del predictor["model"]["storageUri"]
    admitted = admit(isvc(predictor))
    assert admitted["spec"]["predictor"]["storageUris"][1]["mountPath"] == "/mnt/models"


def test_confidential_needs_a_storage_uri():
    predictor = {"model": {"modelFormat": {"name": "sklearn"}, "confidential": {"enabled": True}}}
    assert messages(isvc(predictor)) == ["confidential model serving requires storageUri to be set"]


def test_confidential_resource_id_format():
    predictor = model_predictor(confidential={"enabled": True, "resourceId": "kbs://bad"})
    error = rejection(isvc(predictor)).errors[0]
    assert error == FieldError(
        "spec.predictor.model.confidential.resourceId",
        'Invalid value: "kbs://bad": must be in the format kbs:///<repo>/<type>/<tag>',
    )


def test_predictor_needs_an_implementation():
    error = rejection(isvc({"minReplicas": 1})).errors[0]
    assert error == FieldError("spec.predictor", PREDICTOR_ONE_OF)


def test_a_missing_predictor_is_required():
    resource = isvc()
    del resource["spec"]["predictor"]
    assert rejection(resource).errors == [FieldError("spec.predictor", "Required value")]
    del resource["spec"]
    assert rejection(resource).errors == [FieldError("spec.predictor", PREDICTOR_ONE_OF)]


def test_namespace_must_be_a_dns_label():
    resource = isvc()
    resource["metadata"]["namespace"] = "Team_A"
    assert fields(resource) == ["metadata.namespace"]


def test_predictor_with_two_implementations():
    predictor = {**sklearn_predictor(), "xgboost": {"storageUri": "file:///x"}}
    assert messages(isvc(predictor)) == [PREDICTOR_ONE_OF]


def test_transformer_needs_containers():
    error = rejection(isvc(transformer={"minReplicas": 1})).errors[0]
    assert error == FieldError(
        "spec.transformer",
        "exactly one of [PodSpec, ComponentExtensionSpec] must be specified in TransformerSpec",
    )


def test_explainer_with_art_and_containers():
    explainer = {"art": {"type": "SquareAttack"}, "containers": [{"name": "e", "image": "e"}]}
    assert messages(isvc(explainer=explainer)) == [
        "exactly one of [ART, PodSpec, ComponentExtensionSpec] must be specified in ExplainerSpec"
    ]


def test_custom_protocol_env():
    predictor = {
        "containers": [
            {"name": "kserve-container", "image": "x", "env": [{"name": "PROTOCOL", "value": "v3"}]}
        ]
    }
    error = rejection(isvc(predictor)).errors[0]
    assert error == FieldError(
        "spec.predictor.containers[0].env", "invalid protocol v3. Must be one of [v1, v2]"
    )


def test_art_storage_spec_needs_a_supported_uri():
    explainer = {"art": {"type": "SquareAttack", "storageUri": "gs://b/m", "storage": {"key": "k"}}}
    error = rejection(isvc(explainer=explainer)).errors[0]
    assert error.path == "spec.explainer.art.storageUri"
    assert error.message == (
        "storageUri, must be one of: [s3://, hdfs://, webhdfs://] or match https://{}.blob.core.windows.net/{}/{} "
        "or be an absolute or relative local path. StorageUri [gs://b/m] is not supported"
    )


@pytest.mark.parametrize(
    ("extension", "path", "message"),
    [
        ({"containerConcurrency": -1}, "containerConcurrency", "parallelism cannot be less than 0"),
        (
            {"containerConcurrency": 5000},
            "containerConcurrency",
            "containerConcurrency must be at most 1000 (Knative's limit), not 5000",
        ),
        ({"minReplicas": -1}, "minReplicas", "'MinReplicas' cannot be less than 0"),
        (
            {"canaryTrafficPercent": 150},
            "canaryTrafficPercent",
            "canaryTrafficPercent must be between 0 and 100, got 150",
        ),
        (
            {"canaryTrafficPercent": -5},
            "canaryTrafficPercent",
            "canaryTrafficPercent must be between 0 and 100, got -5",
        ),
        ({"maxReplicas": -1}, "maxReplicas", "'MaxReplicas' cannot be less than 0"),
        ({"timeout": -5}, "timeout", "timeout must be 0 or more seconds, not -5"),
        (
            {"minReplicas": 3, "maxReplicas": 2},
            "minReplicas",
            "'MinReplicas' cannot be greater than MaxReplicas",
        ),
        ({"logger": {"url": "http://x"}}, "logger.mode", "invalid logger type"),
        (
            {"logger": {"mode": "all", "storage": {"path": "/p"}}},
            "logger.storage",
            "invalid logger storage configuration",
        ),
    ],
)
def test_component_extension_rules(extension, path, message):
    error = rejection(isvc(sklearn_predictor(**extension))).errors[0]
    assert error == FieldError(f"spec.predictor.{path}", message)


def test_both_negative_replica_bounds_are_reported():
    errors = rejection(isvc(sklearn_predictor(minReplicas=-1, maxReplicas=-2))).errors
    assert errors == [
        FieldError("spec.predictor.minReplicas", "'MinReplicas' cannot be less than 0"),
        FieldError("spec.predictor.maxReplicas", "'MaxReplicas' cannot be less than 0"),
    ]


def test_extension_rules_apply_to_transformers_too():
    transformer = {"containers": [{"image": "t"}], "minReplicas": 5, "maxReplicas": 1}
    assert fields(isvc(transformer=transformer)) == ["spec.transformer.minReplicas"]


def test_min_replicas_default_counts_against_max():
    admit(isvc(sklearn_predictor(maxReplicas=1)))
    admit(isvc(sklearn_predictor(minReplicas=0, maxReplicas=0)))
    assert messages(isvc(sklearn_predictor(minReplicas=2, maxReplicas=1))) == [
        "'MinReplicas' cannot be greater than MaxReplicas"
    ]


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        (
            {"scaleMetric": "cpu"},
            "[cpu] is not a supported metric by Knative's default autoscaler (concurrency, rps); cpu needs the "
            'serving.kserve.io/deploymentMode: "Standard" mode or the autoscaling.knative.dev/class: '
            '"hpa.autoscaling.knative.dev" annotation',
        ),
        ({"scaleMetric": "rps", "scaleTarget": 0}, "the target for rps should be greater than 1"),
        (
            {"deploymentStrategy": {"type": "Recreate"}},
            "customizing deploymentStrategy is only supported for raw deployment mode",
        ),
    ],
)
def test_knative_autoscaling_rules(extension, message):
    assert messages(isvc(sklearn_predictor(**extension))) == [message]


def test_knative_accepts_concurrency_and_rps():
    admit(isvc(sklearn_predictor(scaleMetric="concurrency", scaleTarget=2)))
    admit(isvc(sklearn_predictor(scaleMetric="rps", scaleTarget=5)))


def test_knative_hpa_class_uses_hpa_rules():
    annotations = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}
    admit(isvc(sklearn_predictor(scaleMetric="cpu", scaleTarget=50), annotations=annotations))
    assert messages(isvc(sklearn_predictor(scaleMetric="rps"), annotations=annotations)) == [
        "[rps] is not a supported metric"
    ]


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ({"scaleMetric": "concurrency"}, "[concurrency] is not a supported metric"),
        (
            {"scaleMetric": "cpu", "scaleTarget": 0},
            "the target utilization percentage should be a [1-100] integer",
        ),
        (
            {"scaleMetric": "cpu", "scaleTarget": 101},
            "the target utilization percentage should be a [1-100] integer",
        ),
        (
            {"scaleMetric": "memory", "scaleTarget": 101},
            "the target utilization percentage should be a [1-100] integer",
        ),
        ({"scaleMetric": "memory", "scaleTarget": 0}, "the target memory should be greater than 1 MiB"),
        (
            {
                "autoScaling": {
                    "metrics": [{"type": "External", "external": {"metric": {"query": "q"}, "target": {}}}]
                }
            },
            "invalid HPA metric source type with value [External],valid metric source types are Resource",
        ),
        (
            {"autoScaling": {"metrics": [{"type": "Resource"}]}},
            "metricSpec.Resource is not set for resource metric source type",
        ),
    ],
)
def test_standard_hpa_rules(extension, message):
    assert messages(isvc(sklearn_predictor(**extension), annotations=STANDARD_HPA)) == [message]


def test_standard_mode_without_a_class_annotation_checks_nothing():
    admit(isvc(sklearn_predictor(scaleMetric="concurrency"), annotations={MODE: "Standard"}))


def _keda(metric: dict) -> dict:
    return isvc(sklearn_predictor(autoScaling={"metrics": [metric]}), annotations=STANDARD_KEDA)


def _resource(name: str, target: dict) -> dict:
    return {"type": "Resource", "resource": {"name": name, "target": target}}


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            _resource("cpu", {"type": "AverageValue", "averageValue": "1"}),
            "the cpu target value type should be Utilization",
        ),
        (
            _resource("memory", {"type": "Value", "value": "1"}),
            "the memory target value type should be AverageValue or Utilization",
        ),
        (
            _resource("memory", {"type": "AverageValue", "averageValue": "512Ki"}),
            "the memory target value should be greater than 1 MiB",
        ),
        (_resource("cpu", {"type": "Utilization"}), "the AverageUtilization type should be set"),
        (
            _resource("cpu", {"type": "Utilization", "averageUtilization": 150}),
            "the target utilization percentage should be a [1-100] integer",
        ),
        ({"type": "External"}, "metricSpec.External is not set for external metric source type"),
        (
            {"type": "External", "external": {"metric": {"backend": "prometheus"}, "target": {"value": "1"}}},
            "the query should not be empty",
        ),
        (
            {"type": "External", "external": {"metric": {"query": "q"}, "target": {"type": "Value"}}},
            "the target threshold value should not be empty",
        ),
        ({"type": "PodMetric"}, "metricSpec.PodMetric is not set for pod metric source type"),
    ],
)
def test_standard_keda_rules(metric, message):
    assert messages(_keda(metric)) == [message]


def test_keda_rejects_scale_metric():
    resource = isvc(sklearn_predictor(scaleMetric="cpu"), annotations=STANDARD_KEDA)
    assert messages(resource) == ["ScaleMetric is not supported for KEDA"]


def test_keda_accepts_valid_metrics():
    admit(_keda(_resource("memory", {"type": "AverageValue", "averageValue": "2Gi"})))
    admit(
        _keda(
            {
                "type": "External",
                "external": {"metric": {"query": "q"}, "target": {"type": "Value", "value": "50"}},
            }
        )
    )


def _canary_isvc(*canaries: dict, annotations: dict | None = None, **predictor_fields) -> dict:
    annotations = annotations if annotations is not None else {MODE: "Standard", AUTOSCALER: "none"}
    return isvc(model_predictor(**predictor_fields), annotations=annotations, canary=list(canaries))


def _canary(name: str | None = "v2", percent: int = 20, **fields) -> dict:
    predictor = {**model_predictor(), **fields}
    if name is not None:
        predictor["name"] = name
    return {"trafficPercent": percent, "predictor": predictor}


@pytest.mark.parametrize(
    ("resource", "path", "message"),
    [
        (
            _canary_isvc(_canary(), annotations={}),
            "spec.canary",
            "canary is only supported in Standard deployment mode",
        ),
        (
            _canary_isvc(_canary(None)),
            "spec.canary[0].predictor.name",
            "canary[0] predictor.name is required",
        ),
        (
            _canary_isvc(_canary(), _canary()),
            "spec.canary[1].predictor.name",
            'canary predictor.name "v2" is duplicated',
        ),
        (
            _canary_isvc(_canary(), _canary("v3", 90)),
            "spec.canary",
            "sum of canary trafficPercent values (110) must be <= 100",
        ),
        (
            _canary_isvc(_canary(maxReplicas=3)),
            "spec.canary[0].predictor.maxReplicas",
            'canary "v2" must not set maxReplicas (canary uses fixed replicas)',
        ),
        (
            _canary_isvc(_canary(scaleTarget=3)),
            "spec.canary[0].predictor.scaleTarget",
            'canary "v2" must not set scaleTarget (canary uses fixed replicas)',
        ),
        (
            _canary_isvc(_canary(minReplicas=2)),
            "spec.canary[0].predictor.minReplicas",
            'canary "v2" minReplicas (2) must not exceed stable predictor minReplicas (1)',
        ),
        (
            _canary_isvc(_canary(minReplicas=-1)),
            "spec.canary[0].predictor.minReplicas",
            "canary \"v2\" predictor: 'MinReplicas' cannot be less than 0",
        ),
        (
            _canary_isvc(_canary(workerSpec={"containers": [{"name": "w", "image": "w"}]})),
            "spec.canary[0].predictor.workerSpec",
            'canary "v2" must not set workerSpec (multi-node is not yet supported for canary)',
        ),
    ],
)
def test_canary_rules(resource, path, message):
    assert rejection(resource).errors[0] == FieldError(path, message)


def test_canary_name_must_differ_from_stable_name():
    resource = _canary_isvc(_canary("v1"))
    resource["spec"]["predictor"]["name"] = "v1"
    assert messages(resource) == ['canary predictor.name "v1" conflicts with stable predictor name']


def test_canary_traffic_percent_range_is_in_the_schema():
    error = rejection(_canary_isvc(_canary(percent=101))).errors[0]
    assert error.path == "spec.canary[0].trafficPercent"
    assert error.message == "Invalid value: 101: should be less than or equal to 100"


def test_canary_needs_a_stable_model():
    resource = isvc({"containers": [{"image": "p"}]}, annotations={MODE: "Standard"}, canary=[_canary()])
    assert messages(resource) == [
        "canary requires a stable predictor with a model (multi-model serving is not supported with canary)"
    ]


def test_a_dark_launch_canary_is_accepted():
    admit(_canary_isvc(_canary(percent=0), minReplicas=4))


def _stored(resource: dict, deployment_mode: str) -> dict:
    stored = admit(resource)
    stored["status"] = {"deploymentMode": deployment_mode}
    return stored


def test_deployment_mode_cannot_change_on_update():
    old = _stored(isvc(annotations={MODE: "Standard"}), "Standard")
    error = rejection(isvc(annotations={MODE: "Knative"}), old=old).errors[0]
    assert error.message == "update rejected: deploymentMode cannot be changed from 'Standard' to 'Knative'"


def test_legacy_status_deployment_mode_is_normalised_on_update():
    old = _stored(isvc(annotations={MODE: "Standard"}), "RawDeployment")
    admit(isvc(annotations={MODE: "RawDeployment"}), old=old)


def test_deployment_mode_may_be_set_before_the_status_records_one():
    old = admit(isvc())
    admit(isvc(annotations={MODE: "Standard"}), old=old)


def test_predictor_name_change_needs_a_model_change():
    old = admit(isvc(model_predictor()))
    renamed = isvc({**model_predictor(), "name": "v2"})
    assert messages(renamed, old=old) == ["predictor.name change requires a model change (e.g. storageUri)"]
    moved = isvc({**model_predictor(storageUri="file:///models/v2"), "name": "v2"})
    moved["spec"]["predictor"]["model"]["storageUri"] = "file:///models/v2"
    admit(moved, old=old)


def test_multi_node_rules():
    predictor = {
        **model_predictor("huggingface", storageUri="s3://b/m"),
        "workerSpec": {
            "containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
            "tensorParallelSize": 0,
        },
    }
    found = messages(isvc(predictor, name="mn"))
    prefix = 'the InferenceService "mn" is invalid: '
    assert found == [
        f"{prefix}setting multiple containers in workerSpec is not allowed",
        f"{prefix}Multinode only supports 'pvc' and 'oci' Storage Protocol(s3)",
        f"{prefix}Multinode only supports 'none' autoscaler()",
        f"{prefix}WorkerSpec.TensorParallelSize cannot be less than 1(0)",
    ]


def test_every_broken_rule_is_reported():
    resource = isvc(sklearn_predictor(minReplicas=-1), name="Bad", annotations={AUTOSCALER: "kpa"})
    assert fields(resource) == [
        "metadata.name",
        "metadata.annotations[serving.kserve.io/autoscalerClass]",
        "spec.predictor.minReplicas",
    ]


def test_validation_error_renders_for_a_client():
    error = rejection(isvc(sklearn_predictor(minReplicas=-1)))
    assert isinstance(error, ValidationError)
    assert str(error) == "spec.predictor.minReplicas: 'MinReplicas' cannot be less than 0"
    assert error.to_dict() == {
        "error": "spec.predictor.minReplicas: 'MinReplicas' cannot be less than 0",
        "details": [
            {"field": "spec.predictor.minReplicas", "message": "'MinReplicas' cannot be less than 0"}
        ],
    }


def test_multi_node_model_rules():
    predictor = {
        "model": {
            "modelFormat": {"name": "huggingface"},
            "env": [{"name": "PIPELINE_PARALLEL_SIZE", "value": "2"}],
        },
        "workerSpec": {
            "containers": [{"name": "w", "image": "w", "env": [{"name": "PYTHONPATH", "value": "/x"}]}]
        },
    }
    resource = isvc(predictor, name="mn", annotations={AUTOSCALER: "none"})
    prefix = 'the InferenceService "mn" is invalid: '
    assert rejection(resource).errors == [
        FieldError(
            "spec.predictor.workerSpec.containers[0].env[0]",
            f'{prefix}setting PYTHONPATH in container "w" is not allowed for security reasons',
        ),
        FieldError(
            "spec.predictor.model.env",
            f"{prefix}setting PIPELINE_PARALLEL_SIZE in environment variables is not allowed",
        ),
        FieldError(
            "spec.predictor.model.storageUri", f"{prefix}StorageURI must be set for multinode enabled"
        ),
    ]


def test_canary_shorthands_keep_their_own_checks():
    canary = {"trafficPercent": 10, "predictor": {"name": "v2", "onnx": {"storageUri": "s3://b/model.pt"}}}
    resource = _canary_isvc(canary)
    assert rejection(resource).errors == [
        FieldError(
            "spec.canary[0].predictor.onnx.storageUri",
            "canary \"v2\" predictor: expected storageUri file extension: '.onnx' but got '.pt'",
        )
    ]


@pytest.mark.parametrize(
    ("batcher", "path", "message"),
    [
        ({"maxBatchSize": 0}, "maxBatchSize", "maxBatchSize must be at least 1, got 0"),
        ({"maxLatency": -5}, "maxLatency", "maxLatency must be at least 1 (milliseconds), got -5"),
        ({"timeout": 0}, "timeout", "timeout must be at least 1 (seconds), got 0"),
    ],
)
def test_batcher_numbers_must_be_positive(batcher, path, message):
    error = rejection(isvc(sklearn_predictor(batcher=batcher))).errors[0]
    assert error == FieldError(f"spec.predictor.batcher.{path}", message)


def test_a_batcher_with_positive_numbers_or_none_is_admitted():
    admit(isvc(sklearn_predictor(batcher={"maxBatchSize": 1, "maxLatency": 1, "timeout": 1})))
    admit(isvc(sklearn_predictor(batcher={})))


SERVE = {
    "name": "kserve-container",
    "image": "x",
    "command": ["modelplane", "serve"],
    "args": ["--model-class", "m.py:M"],
}


@pytest.mark.parametrize(
    "container",
    [
        SERVE,
        {**SERVE, "command": ["python3", "-m", "modelplane", "serve"], "args": []},
        {"name": "kserve-container", "image": "x", "args": ["/usr/bin/modelplane", "serve"]},
    ],
)
def test_a_custom_container_running_modelplane_serve_may_have_a_batcher(container):
    admit(isvc({"containers": [container], "batcher": {"maxBatchSize": 4}}))
    admit(isvc(transformer={"containers": [container], "batcher": {}}))


def test_a_custom_container_that_does_not_run_modelplane_serve_may_have_a_batcher():
    # The platform starts `modelplane batcher` in front of it, as KServe starts its agent sidecar.
    custom = {"containers": [{"image": "x", "command": ["python", "/mnt/models/model.py"]}], "batcher": {}}
    admit(isvc(custom))
    admit(isvc(transformer=custom))
    admit(isvc(explainer=custom))
    too_small = {**custom, "batcher": {"maxBatchSize": 0}}
    assert fields(isvc(too_small)) == ["spec.predictor.batcher.maxBatchSize"]


def test_a_canary_batcher_is_checked_too():
    resource = _canary_isvc(_canary(batcher={"maxLatency": 0}))
    assert rejection(resource).errors[0] == FieldError(
        "spec.canary[0].predictor.batcher.maxLatency",
        'canary "v2" predictor: maxLatency must be at least 1 (milliseconds), got 0',
    )


@pytest.mark.parametrize("implementation", ["sklearn", "model"])
def test_storage_uri_and_storage_path_together_are_refused(implementation):
    storage = {"storageUri": "s3://models/iris", "storage": {"key": "localMinIO", "path": "sklearn/iris"}}
    if implementation == "model":
        predictor = model_predictor(**storage)
    else:
        predictor = {"sklearn": storage}
    error = rejection(isvc(predictor)).errors[0]
    assert error.path == f"spec.predictor.{implementation}.storage.path"
    assert error.message.startswith("must provide only one of storageUri and storage.path")


def test_storage_uri_with_a_storage_key_is_admitted():
    admit(isvc(model_predictor(storageUri="s3://models/iris", storage={"key": "localMinIO"})))
