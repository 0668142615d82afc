"""Runtime selection, checked against KServe's default runtimes (the reference's worked selections) and
against modelplane's own."""

from __future__ import annotations

import pytest

from modelplane.api import (
    RuntimeSelectionError,
    admit,
    apply_runtime,
    builtin_cluster_runtimes,
    load_path,
    select_runtime,
    supporting_runtimes,
)

from .helpers import KSERVE_RUNTIMES, isvc, model_predictor

KSERVE = [doc.resource for doc in load_path(KSERVE_RUNTIMES)]


def admitted(predictor: dict) -> dict:
    return admit(isvc(predictor))


def chosen(predictor: dict, namespaced=(), cluster=KSERVE) -> tuple[str, str]:
    selection = select_runtime(admitted(predictor), list(namespaced), list(cluster))
    return selection.kind, selection.name


def runtime(
    name: str, *formats: dict, protocols=("v1", "v2"), kind="ServingRuntime", created=None, **spec
) -> dict:
    metadata: dict = {"name": name}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "supportedModelFormats": list(formats),
            "protocolVersions": list(protocols),
            "containers": [{"name": "kserve-container", "image": "x"}],
            **spec,
        },
    }


def fmt(name="sklearn", version="1", priority=None, auto_select=True) -> dict:
    entry = {"name": name, "version": version, "autoSelect": auto_select}
    if priority is not None:
        entry["priority"] = priority
    return entry


@pytest.mark.parametrize(
    ("predictor", "expected"),
    [
        ({"sklearn": {"storageUri": "s3://m"}}, "kserve-sklearnserver"),
        ({"sklearn": {"storageUri": "s3://m", "protocolVersion": "v2"}}, "kserve-mlserver"),
        ({"xgboost": {"storageUri": "s3://m"}}, "kserve-xgbserver"),
        ({"xgboost": {"storageUri": "s3://m", "protocolVersion": "v2"}}, "kserve-mlserver"),
        ({"lightgbm": {"storageUri": "s3://m"}}, "kserve-lgbserver"),
        ({"lightgbm": {"storageUri": "s3://m", "protocolVersion": "v2"}}, "kserve-mlserver"),
        ({"tensorflow": {"storageUri": "s3://m", "protocolVersion": "v2"}}, "kserve-tritonserver"),
        ({"pytorch": {"storageUri": "s3://m"}}, "kserve-torchserve"),
        ({"onnx": {"storageUri": "s3://m/model.onnx"}}, "kserve-tritonserver"),
        ({"huggingface": {"storageUri": "s3://m"}}, "kserve-huggingfaceserver"),
        (model_predictor("mlflow", protocolVersion="v2"), "kserve-mlserver"),
        (model_predictor("pmml"), "kserve-pmmlserver"),
    ],
)
def test_kserve_worked_selections(predictor, expected):
    assert chosen(predictor) == ("ClusterServingRuntime", expected)


def test_modelplane_runtimes_serve_each_built_in_format():
    builtin = builtin_cluster_runtimes()
    assert chosen({"sklearn": {"storageUri": "/m"}}, cluster=builtin)[1] == "kserve-sklearnserver"
    assert (
        chosen({"sklearn": {"storageUri": "/m", "protocolVersion": "v2"}}, cluster=builtin)[1]
        == "kserve-sklearnserver"
    )
    assert chosen({"xgboost": {"storageUri": "/m"}}, cluster=builtin)[1] == "kserve-xgbserver"
    assert chosen({"lightgbm": {"storageUri": "/m"}}, cluster=builtin)[1] == "kserve-lgbserver"
    assert chosen({"onnx": {"storageUri": "/m/model.onnx"}}, cluster=builtin)[1] == "modelplane-onnxserver"
    for mlflow in (model_predictor("mlflow"), model_predictor("mlflow", protocolVersion="v2")):
        assert chosen(mlflow, cluster=builtin)[1] == "modelplane-mlflowserver"


@pytest.mark.parametrize(
    "predictor",
    [
        {"tensorflow": {"storageUri": "/m"}},
        {"tensorflow": {"storageUri": "/m", "protocolVersion": "v2"}},
        {"tensorflow": {"storageUri": "/m", "protocolVersion": "grpc-v2"}},
        {"tensorflow": {"storageUri": "/m", "protocolVersion": "grpc-v1"}},  # TF Serving's gRPC API
        model_predictor("tensorflow"),
        model_predictor(modelFormat={"name": "tensorflow", "version": "1"}),
        model_predictor(modelFormat={"name": "tensorflow", "version": "2"}, protocolVersion="v2"),
    ],
)
def test_tensorflow_is_served_by_the_built_in_runtime_where_kserve_sends_v2_to_triton(predictor):
    assert chosen(predictor, cluster=builtin_cluster_runtimes()) == (
        "ClusterServingRuntime",
        "modelplane-tensorflowserver",
    )


def test_tensorflow_speaks_v1_unless_told_otherwise():
    resource = admitted({"tensorflow": {"storageUri": "/m"}})
    selection = select_runtime(resource, [], builtin_cluster_runtimes())
    assert apply_runtime(resource, selection)["spec"]["predictor"]["model"]["protocolVersion"] == "v1"


def test_no_runtime_for_an_unknown_format():
    with pytest.raises(RuntimeSelectionError) as caught:
        chosen(model_predictor("caffe"))
    assert caught.value.reason == "NoSupportingRuntime"
    assert caught.value.message == "No runtime found to support specified framework/version"
    assert str(caught.value) == "no runtime found to support predictor with model type: {caffe}"


def test_versions_match_exactly():
    with pytest.raises(RuntimeSelectionError):
        chosen(model_predictor(modelFormat={"name": "sklearn", "version": "1.3"}))
    assert (
        chosen(model_predictor(modelFormat={"name": "sklearn", "version": "1"}))[1] == "kserve-sklearnserver"
    )


def test_a_v2_only_runtime_needs_an_explicit_v2():
    mlserver_only = [r for r in KSERVE if r["metadata"]["name"] == "kserve-mlserver"]
    with pytest.raises(RuntimeSelectionError):
        chosen(model_predictor("mlflow"), cluster=mlserver_only)


def test_a_runtime_without_protocols_accepts_any():
    any_protocol = runtime("vllm", fmt("vLLM"), protocols=(), kind="ClusterServingRuntime")
    assert (
        chosen(model_predictor("vLLM", modelFormat={"name": "vLLM", "version": "1"}), cluster=[any_protocol])[
            1
        ]
        == "vllm"
    )


def test_a_namespaced_runtime_beats_any_cluster_runtime():
    mine = runtime("mine", fmt())  # no priority at all
    assert chosen({"sklearn": {"storageUri": "/m"}}, namespaced=[mine]) == ("ServingRuntime", "mine")


def test_higher_priority_wins_within_a_scope():
    low, high = runtime("a-low", fmt(priority=1)), runtime("b-high", fmt(priority=5))
    assert chosen({"sklearn": {"storageUri": "/m"}}, namespaced=[low, high])[1] == "b-high"


def test_a_runtime_with_a_priority_beats_one_without():
    none, some = runtime("a-none", fmt()), runtime("b-some", fmt(priority=1))
    assert chosen({"sklearn": {"storageUri": "/m"}}, namespaced=[none, some])[1] == "b-some"


def test_ties_go_to_the_lowest_protocol_then_the_newest_then_the_name():
    v2 = runtime("a-v2", fmt(priority=1), protocols=("v2", "grpc-v2"))
    v1_old = runtime("b-old", fmt(priority=1), created="2024-01-01T00:00:00Z")
    v1_new = runtime("c-new", fmt(priority=1), created="2025-01-01T00:00:00Z")
    v1_new_too = runtime("d-new", fmt(priority=1), created="2025-01-01T00:00:00Z")
    order = supporting_runtimes(
        admitted(model_predictor(protocolVersion="v2"))["spec"]["predictor"]["model"],
        [v2, v1_old, v1_new_too, v1_new],
        [],
    )
    assert [s.name for s in order] == ["c-new", "d-new", "b-old", "a-v2"]


def test_priority_comes_from_the_first_format_with_that_name():
    rt = runtime("rt", fmt(version="0"), fmt(version="1", priority=9))
    other = runtime("other", fmt(priority=1))
    assert chosen(model_predictor(), namespaced=[rt, other])[1] == "other"


@pytest.mark.parametrize(
    "excluded",
    [
        runtime("off", fmt(priority=9), disabled=True),
        runtime("multi", fmt(priority=9), multiModel=True),
        runtime("workers", fmt(priority=9), workerSpec={"containers": [{"name": "w", "image": "w"}]}),
        runtime("manual", fmt(priority=9, auto_select=False)),
        runtime("v2only", fmt(priority=9), protocols=("v2",)),
    ],
)
def test_runtimes_that_cannot_auto_serve_are_skipped(excluded):
    fallback = runtime("fallback", fmt(priority=1))
    assert chosen(model_predictor(), namespaced=[excluded, fallback])[1] == "fallback"


def test_multi_node_predictors_only_get_multi_node_runtimes():
    workers = runtime("workers", fmt("huggingface"), workerSpec={"containers": [{"name": "w", "image": "w"}]})
    plain = runtime("plain", fmt("huggingface", priority=5))
    predictor = {
        **model_predictor(
            "huggingface", storageUri="pvc://c/m", modelFormat={"name": "huggingface", "version": "1"}
        ),
        "workerSpec": {},
    }
    resource = admit(isvc(predictor, annotations={"serving.kserve.io/autoscalerClass": "none"}))
    assert select_runtime(resource, [workers, plain], []).name == "workers"


def test_explicit_runtime_prefers_the_namespace():
    predictor = model_predictor(runtime="kserve-sklearnserver")
    mine = runtime("kserve-sklearnserver", fmt())
    assert chosen(predictor, namespaced=[mine]) == ("ServingRuntime", "kserve-sklearnserver")
    assert chosen(predictor) == ("ClusterServingRuntime", "kserve-sklearnserver")


def test_explicit_runtime_counts_formats_without_auto_select():
    predictor = model_predictor("pytorch", runtime="kserve-tritonserver", protocolVersion="v2")
    assert chosen(predictor)[1] == "kserve-tritonserver"


@pytest.mark.parametrize(
    ("predictor", "namespaced", "reason", "message", "text"),
    [
        (
            model_predictor(runtime="missing"),
            [],
            "RuntimeNotRecognized",
            "Waiting for runtime to become available",
            "No ServingRuntimes or ClusterServingRuntimes with the name: missing",
        ),
        (
            model_predictor(runtime="off"),
            [runtime("off", fmt(), disabled=True)],
            "RuntimeDisabled",
            "Specified runtime is disabled",
            "specified runtime off is disabled",
        ),
        (
            model_predictor(runtime="kserve-mlserver", protocolVersion="v1"),
            [],
            "NoSupportingRuntime",
            "Specified runtime does not support specified protocol version",
            "specified runtime kserve-mlserver does not support specified protocol version",
        ),
        (
            model_predictor("onnx", runtime="kserve-sklearnserver"),
            [],
            "NoSupportingRuntime",
            "Specified runtime does not support specified framework/version",
            "specified runtime kserve-sklearnserver does not support specified framework/version",
        ),
    ],
)
def test_explicit_runtime_failures(predictor, namespaced, reason, message, text):
    with pytest.raises(RuntimeSelectionError) as caught:
        chosen(predictor, namespaced=namespaced)
    assert (caught.value.reason, caught.value.message, str(caught.value)) == (reason, message, text)


def test_apply_runtime_names_it_and_sets_the_lowest_protocol():
    resource = admitted({"sklearn": {"storageUri": "/m"}})
    selection = select_runtime(resource, [], builtin_cluster_runtimes())
    model = apply_runtime(resource, selection)["spec"]["predictor"]["model"]
    assert model["runtime"] == "kserve-sklearnserver"
    assert model["protocolVersion"] == "v1"
    assert "runtime" not in resource["spec"]["predictor"]["model"]


def test_apply_runtime_sets_mlserver_defaults():
    resource = admitted({"xgboost": {"storageUri": "s3://m", "protocolVersion": "v2"}})
    updated = apply_runtime(resource, select_runtime(resource, [], KSERVE))
    model = updated["spec"]["predictor"]["model"]
    assert model["env"] == [
        {"name": "MLSERVER_MODEL_NAME", "value": "my-model"},
        {"name": "MLSERVER_MODEL_URI", "value": "/mnt/models"},
    ]
    assert updated["metadata"]["labels"]["modelClass"] == "mlserver_xgboost.XGBoostModel"


def test_apply_runtime_sets_mlserver_defaults_without_storage():
    resource = admitted({"model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2"}})
    updated = apply_runtime(resource, select_runtime(resource, [], KSERVE))
    assert updated["spec"]["predictor"]["model"]["env"] == [
        {"name": "MLSERVER_LOAD_MODELS_AT_STARTUP", "value": "false"}
    ]
    assert updated["metadata"]["labels"]["modelClass"] == "mlserver_sklearn.SKLearnModel"


def test_apply_runtime_sets_torchserve_defaults():
    resource = admitted({"pytorch": {"storageUri": "s3://m"}})
    updated = apply_runtime(resource, select_runtime(resource, [], KSERVE))
    model = updated["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v1"
    assert model["env"] == [{"name": "PROTOCOL_VERSION", "value": "v1"}]
    assert updated["metadata"]["labels"]["serviceEnvelope"] == "kserve"


def test_apply_runtime_sets_triton_defaults():
    resource = admitted({"model": {"modelFormat": {"name": "onnx"}, "protocolVersion": "v2"}})
    updated = apply_runtime(resource, select_runtime(resource, [], KSERVE))
    assert updated["spec"]["predictor"]["model"]["args"] == ["--model-control-mode=explicit"]
