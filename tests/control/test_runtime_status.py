"""A runtime's status says whether its image runs here, and how; KServe's stock runtime files apply unchanged."""

from __future__ import annotations

import pytest

from modelplane.api import RuntimeSelectionError, admit, builtin_cluster_runtimes, load_path
from modelplane.control import revision_templates
from modelplane.control.runtime_status import serving_runtime_status
from tests.api.helpers import KSERVE_RUNTIMES

STOCK = {doc.resource["metadata"]["name"]: doc.resource for doc in load_path(KSERVE_RUNTIMES)}
NOW = "2026-01-01T00:00:00Z"
LOCAL_PROGRAMS = ("modelplane", "mlserver", "tritonserver", "tensorflow_model_server")


def conditions(runtime: dict, **kwargs) -> dict[str, dict]:
    status = serving_runtime_status(runtime, now=NOW, **kwargs)
    return {c["type"]: c for c in status["conditions"]}


def stock_isvc(model_format: str, runtime: str, **model) -> dict:
    return admit(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": model_format},
                        "runtime": runtime,
                        "storageUri": "pvc://m",
                        **model,
                    }
                }
            },
        }
    )


def test_kserve_s_paddleserver_runs_the_paddle_runtime():
    ready = conditions(STOCK["kserve-paddleserver"])["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "StockImage")
    assert ready["message"] == (
        "image kserve-paddleserver:replace (KServe's paddleserver): paddle: modelplane serve --runtime=paddle"
    )


def test_a_stock_image_modelplane_serves_is_ready_and_says_what_runs():
    found = conditions(STOCK["kserve-sklearnserver"])
    assert found["Ready"]["status"] == "True"
    assert found["Ready"]["reason"] == "StockImage"
    assert found["Ready"]["message"] == (
        "image kserve-sklearnserver:replace (KServe's sklearnserver): sklearn: modelplane serve --runtime=sklearn"
    )
    assert found["ArgumentsTranslated"]["status"] == "True"


def test_an_image_with_no_local_server_is_not_ready_and_names_the_image():
    found = conditions(STOCK["kserve-autogluonserver"])
    assert found["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "ImageNotServed",
        "message": "image kserve-autogluonserver:replace (KServe's autogluonserver) serves autogluon models, and "
        "modelplane has no autogluon runtime",
        "lastTransitionTime": NOW,
    }
    assert "ArgumentsTranslated" not in found


def test_a_server_of_several_formats_lists_those_served_and_those_not():
    message = conditions(STOCK["kserve-tritonserver"], installed=lambda _p: False)["Ready"]["message"]
    assert message.startswith("image kserve-tritonserver:replace (NVIDIA Triton): ")
    assert "onnx: modelplane serve --runtime=onnx" in message
    assert "tensorflow: modelplane serve --runtime=tensorflow" in message
    assert "not served: tensorrt: only Triton serves them" in message
    assert message.endswith("(tritonserver is not installed here)")


def test_dropped_arguments_are_in_the_status():
    runtime = STOCK["kserve-sklearnserver"]
    container = runtime["spec"]["containers"][0]
    changed = {
        **runtime,
        "spec": {
            **runtime["spec"],
            "containers": [{**container, "args": [*container["args"], "--enable_docs_url=true"]}],
        },
    }
    found = conditions(changed)
    assert found["Ready"]["status"] == "True"
    assert found["ArgumentsTranslated"] == {
        "type": "ArgumentsTranslated",
        "status": "False",
        "reason": "ArgumentsDropped",
        "message": "--enable_docs_url=true (modelplane serve has no Swagger UI at /docs)",
        "lastTransitionTime": NOW,
    }


def test_a_runtime_with_its_own_command_runs_it():
    found = conditions(builtin_cluster_runtimes()[0])
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("True", "OwnCommand")
    assert found["Ready"]["message"].startswith("runs its container's command: modelplane serve ")


def test_a_condition_that_stays_keeps_its_transition_time():
    first = serving_runtime_status(STOCK["kserve-autogluonserver"], now=NOW)
    again = serving_runtime_status(
        STOCK["kserve-autogluonserver"], now="2026-02-02T00:00:00Z", previous=first
    )
    assert again == first


@pytest.mark.parametrize("name", sorted(STOCK))
def test_every_stock_runtime_file_runs_a_local_server_or_says_why_not(name):
    """No stock runtime becomes a replica that runs its first argument as a program."""
    runtime = STOCK[name]
    for model_format in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}:
        try:
            template = revision_templates(stock_isvc(model_format, name), [], [runtime])["predictor"]
        except RuntimeSelectionError as error:
            assert error.reason == "ImageNotServed"
            assert runtime["spec"]["containers"][0]["image"] in error.message
            continue
        assert template["command"][0] in LOCAL_PROGRAMS
        assert template["image"]["image"] == runtime["spec"]["containers"][0]["image"]


def test_the_stock_sklearnserver_template_is_modelplane_serve():
    template = revision_templates(
        stock_isvc("sklearn", "kserve-sklearnserver"), [], [STOCK["kserve-sklearnserver"]]
    )
    predictor = template["predictor"]
    assert predictor["command"] == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=sklearn",
        "--http-port=8080",
        "--grpc-port=8081",
    ]
    assert predictor["ports"] == {"http": 8080, "grpc": 8081}
    assert predictor["image"] == {
        "image": "kserve-sklearnserver:replace",
        "runs": "modelplane serve --runtime=sklearn",
    }


def test_the_services_own_args_are_translated_with_the_runtimes():
    isvc = stock_isvc("xgboost", "kserve-xgbserver", args=["--nthread=4", "--enable_docs_url=true"])
    predictor = revision_templates(isvc, [], [STOCK["kserve-xgbserver"]])["predictor"]
    assert predictor["command"][-2:] == ["--nthread=1", "--nthread=4"]  # later flags win, as in KServe
    assert predictor["image"]["dropped"] == [
        "--enable_docs_url=true (modelplane serve has no Swagger UI at /docs)"
    ]


def test_mlserver_gets_its_model_class_and_ports_from_the_runtime_env():
    isvc = stock_isvc("lightgbm", "kserve-mlserver", protocolVersion="v2")
    predictor = revision_templates(isvc, [], [STOCK["kserve-mlserver"]])["predictor"]
    if predictor["command"][0] == "mlserver":  # installed on this machine
        assert predictor["portEnv"] == {"MLSERVER_HTTP_PORT": "http", "MLSERVER_GRPC_PORT": "grpc"}
    else:
        assert "--runtime=lightgbm" in predictor["command"]
        assert "--model-name=iris" in predictor["command"]
    assert predictor["ports"] == {"http": 8080, "grpc": 9000}
