"""KServe's stock images as local commands: which image is which server, and how its args translate."""

from __future__ import annotations

import pytest

from modelplane.control.images import ImageNotServed, image_repository, local_command, stock_server
from modelplane.runtimes import RUNTIMES


def nothing_installed(_program: str) -> bool:
    return False


def everything_installed(_program: str) -> bool:
    return True


def run(
    image: str,
    args: list[str] | None = None,
    *,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    model_format: str | None = None,
    installed=nothing_installed,
):
    container = {"name": "kserve-container", "image": image, "args": args or []}
    if command:
        container["command"] = command
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return local_command(container, model_format, "iris", installed=installed)


@pytest.fixture
def with_runtimes(monkeypatch):
    """Runtimes other parts of modelplane add (pytorch, tensorflow, huggingface), as if they were there."""

    def add(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(RUNTIMES, name, (f"modelplane.runtimes.{name}", "Model", name))

    return add


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("kserve/sklearnserver", "kserve/sklearnserver"),
        ("docker.io/kserve/xgbserver:v0.13", "kserve/xgbserver"),
        ("kserve-sklearnserver:replace", "kserve-sklearnserver"),
        ("nvcr.io/nvidia/tritonserver:23.05-py3", "nvidia/tritonserver"),
        ("localhost:5000/seldonio/mlserver:1.7.1", "seldonio/mlserver"),
        ("kserve/lgbserver@sha256:" + "a" * 64, "kserve/lgbserver"),
        ("Kserve/PMMLServer:latest", "kserve/pmmlserver"),
    ],
)
def test_the_repository_is_the_image_without_registry_tag_or_digest(image, repository):
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    ("image", "title"),
    [
        ("kserve/sklearnserver", "KServe's sklearnserver"),
        ("kserve-sklearnserver:replace", "KServe's sklearnserver"),
        ("docker.io/kserve/xgbserver:v0.13", "KServe's xgbserver"),
        ("kserve/lgbserver:v0.15.0", "KServe's lgbserver"),
        ("kserve/pmmlserver", "KServe's pmmlserver"),
        ("kserve/huggingfaceserver:v0.15.0-gpu", "KServe's huggingfaceserver"),
        ("huggingfaceserver:replace", "KServe's huggingfaceserver"),
        ("seldonio/mlserver:1.7.1", "MLServer"),
        ("mlserver:replace", "MLServer"),
        ("nvcr.io/nvidia/tritonserver:23.05-py3", "NVIDIA Triton"),
        ("kserve-tritonserver:replace", "NVIDIA Triton"),
        ("pytorch/torchserve-kfs:0.9.0", "TorchServe"),
        ("kserve-torchserve:replace", "TorchServe"),
        ("tensorflow/serving:2.6.2", "TensorFlow Serving"),
    ],
)
def test_stock_images_are_known_whatever_the_registry_and_tag(image, title):
    assert stock_server(image).title == title


@pytest.mark.parametrize(
    "image", ["example/sklearnserver-fork", "serving:1", "modelplane:latest", "python:3.11", ""]
)
def test_other_images_are_not(image):
    assert stock_server(image) is None


# ---- KServe's Python servers ----


def test_kserves_sklearnserver_args_become_modelplane_serve_flags():
    local = run(
        "kserve-sklearnserver:replace", ["--model_name=iris", "--model_dir=/mnt/models", "--http_port=8080"]
    )
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=sklearn",
        "--http-port=8080",
        "--grpc-port=8081",
    ]
    assert (local.http_port, local.grpc_port, local.dropped) == (8080, 8081, ())
    assert local.server == "modelplane serve --runtime=sklearn"


def test_xgbserver_keeps_its_threads_and_the_spaced_spelling_of_flags():
    local = run("kserve/xgbserver", ["--model_name", "iris", "--nthread", "2", "--workers=3"])
    assert local.command[2:] == [
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=xgboost",
        "--http-port=8080",
        "--grpc-port=8081",
        "--nthread=2",
        "--workers=3",
    ]


def test_ports_grpc_and_message_limits_are_translated():
    local = run(
        "kserve/lgbserver",
        [
            "--http_port=9000",
            "--grpc_port=9001",
            "--grpc_max_send_message_length=100",
            "--grpc_max_receive_message_length=200",
            "--predictor_protocol=grpc-v2",
            "--predictor_request_timeout_seconds=30",
            "--predictor_request_retries=2",
            "--enable_predictor_health_check",
        ],
    )
    assert (local.http_port, local.grpc_port) == (9000, 9001)
    assert local.command[-8:] == [
        "--http-port=9000",
        "--grpc-port=9001",
        "--grpc_max_send_message_length=100",
        "--grpc_max_receive_message_length=200",
        "--predictor-protocol=grpc-v2",
        "--predictor-request-timeout-seconds=30",
        "--predictor-request-retries=2",
        "--enable_predictor_health_check",
    ]
    no_grpc = run("kserve/lgbserver", ["--enable_grpc", "false"])
    assert "--grpc-port=-1" in no_grpc.command


def test_what_has_no_local_meaning_is_dropped_and_said():
    local = run(
        "kserve/sklearnserver",
        ["stray", "--enable_docs_url=true", "--max_threads=8", "--made_up", "--http_port=http"],
    )
    assert local.dropped == (
        "stray (not a flag of KServe's model server)",
        "--enable_docs_url=true (modelplane serve has no Swagger UI at /docs)",
        "--max_threads=8 (modelplane serve's gRPC server has no thread pool to size)",
        "--made_up (modelplane serve has no such setting)",
        "--http_port=http (not a port number)",
    )
    assert not any("docs" in part or "threads" in part for part in local.command)


def test_a_setting_modelplane_already_has_is_not_a_warning():
    assert run("kserve/sklearnserver", ["--enable_docs_url=false", "--enable_grpc=true"]).dropped == ()


def test_predictiveserver_serves_its_framework():
    assert "--runtime=lightgbm" in run("kserve/predictiveserver", ["--framework=lightgbm"]).command
    assert "--runtime=xgboost" in run("kserve/predictiveserver", model_format="xgboost").command


def test_a_server_with_no_local_runtime_is_not_served():
    with pytest.raises(ImageNotServed) as refused:
        run("kserve/autogluonserver", ["--model_name=iris", "--model_dir=/mnt/models"])
    assert str(refused.value).startswith("image kserve/autogluonserver (KServe's ")
    assert "modelplane has no autogluon runtime" in str(refused.value)


def test_pmmlserver_runs_the_pmml_runtime():
    local = run(
        "kserve-pmmlserver:replace", ["--model_name=iris", "--model_dir=/mnt/models", "--http_port=8080"]
    )
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=pmml",
        "--http-port=8080",
        "--grpc-port=8081",
    ]
    assert local.dropped == ()


def test_paddleserver_runs_the_paddle_runtime():
    local = run(
        "kserve-paddleserver:replace",
        ["--model_name=ocr", "--model_dir=/mnt/models", "--http_port=8080", "--nthread=2"],
    )
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=ocr",
        "--runtime=paddle",
        "--http-port=8080",
        "--grpc-port=8081",
        "--nthread=2",
    ]
    assert local.dropped == ()
    assert "--runtime=paddle" in run("docker.io/kserve/paddleserver:v0.15.0", ["--model_name=ocr"]).command


def test_huggingfaceserver_runs_the_huggingface_runtime_once_there_is_one(with_runtimes):
    if "huggingface" not in RUNTIMES:
        with pytest.raises(ImageNotServed, match="no huggingface runtime"):
            run("huggingfaceserver:replace", ["--model_name=iris"])
    with_runtimes("huggingface")
    local = run("huggingfaceserver:replace", ["--model_name=iris", "--task=fill_mask"])
    assert "--runtime=huggingface" in local.command
    assert "--task=fill_mask" in local.command
    assert local.dropped == ()


def test_huggingfaceserver_flags_pass_on_to_the_huggingface_runtime(with_runtimes):
    with_runtimes("huggingface")
    args = [
        "--model_name=chat",
        "--model_id",
        "org/model",
        "--backend=huggingface",
        "--max-model-len=512",
        "--trust_remote_code",
        "--return_probabilities=false",
        "--disable_lower_case=maybe",
        "--gpu_memory_utilization=0.9",
    ]
    local = run("kserve/huggingfaceserver:v0.15.0", args)
    assert local.command[local.command.index("--runtime=huggingface") + 3 :] == [
        "--model_id=org/model",
        "--backend=huggingface",
        "--max_model_len=512",
        "--trust_remote_code",
        "--gpu_memory_utilization=0.9",
    ]
    assert local.dropped == ("--disable_lower_case=maybe (not a boolean)",)


# ---- containers that run their own command, and images nothing knows ----


def test_a_container_with_a_command_runs_it_whatever_its_image():
    assert run("example/doubler", ["--verbose"], command=["python", "model.py"]) is None
    assert run("kserve/sklearnserver", command=["python", "my_server.py"]) is None


def test_an_unknown_image_whose_args_name_a_program_runs_them():
    assert run("example/anything", ["python", "-m", "server"]) is None
    assert run("example/anything", ["some-server", "--port=8080"], installed=everything_installed) is None


def test_an_unknown_image_with_nothing_to_run_here_is_not_served():
    with pytest.raises(ImageNotServed) as refused:
        run("example/custom-model:v1", ["--model_name=iris"])
    assert str(refused.value) == (
        "image example/custom-model:v1 is not one modelplane knows, and its container has no command to "
        "run in its place"
    )
    with pytest.raises(ImageNotServed, match="some-server is not installed here"):
        run("example/anything", ["some-server", "--port=8080"])


def test_a_stock_servers_own_program_as_the_command_is_translated_too(with_runtimes):
    python_m = run("kserve/sklearnserver", ["--model_name=iris"], command=["python", "-m", "sklearnserver"])
    assert python_m.command[:2] == ["modelplane", "serve"]
    assert "--model-name=iris" in python_m.command
    with_runtimes("tensorflow")
    local = run(
        "tensorflow/serving:2.6.2",
        ["--model_name=iris", "--port=9000", "--rest_api_port=8080", "--model_base_path=/mnt/models"],
        command=["/usr/bin/tensorflow_model_server"],
    )
    assert local.command[:2] == ["modelplane", "serve"]


# ---- MLServer ----

MLSERVER_ENV = {
    "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_xgboost.XGBoostModel",
    "MLSERVER_HTTP_PORT": "8080",
    "MLSERVER_GRPC_PORT": "9000",
    "MLSERVER_MODEL_NAME": "iris",
    "MLSERVER_MODEL_URI": "/mnt/models",
}


def test_mlserver_without_mlserver_installed_is_modelplane_serve_of_its_model_class():
    local = run("seldonio/mlserver:1.7.1", env={**MLSERVER_ENV, "MLSERVER_PARALLEL_WORKERS": "4"})
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=xgboost",
        "--http-port=8080",
        "--grpc-port=9000",
        "--v2-outputs=mlserver",
    ]
    assert (local.http_port, local.grpc_port) == (8080, 9000)
    assert local.note == "mlserver is not installed here"
    assert local.dropped == (
        "MLSERVER_PARALLEL_WORKERS=4 (an MLServer setting modelplane serve does not have)",
    )


def test_mlservers_adaptive_batching_is_modelplane_serves_batcher():
    env = {**MLSERVER_ENV, "MLSERVER_MODEL_MAX_BATCH_SIZE": "8", "MLSERVER_MODEL_MAX_BATCH_TIME": "0.05"}
    local = run("seldonio/mlserver:1.7.1", env=env)
    assert local.command[-3:] == ["--max-batch-size=8", "--max-latency=50", "--batch-counts=requests"]
    assert local.dropped == ()
    env = {**MLSERVER_ENV, "MLSERVER_MODEL_MAX_BATCH_SIZE": "8"}
    local = run("seldonio/mlserver:1.7.1", env=env)
    assert not any(part.startswith("--max-batch-size") for part in local.command)
    assert local.dropped == (
        "MLSERVER_MODEL_MAX_BATCH_SIZE=8 (batching is off unless the size is above 1 and the time above 0)",
    )


def test_mlserver_runs_the_formats_model_class_while_the_label_is_not_filled_in():
    env = {**MLSERVER_ENV, "MLSERVER_MODEL_IMPLEMENTATION": "{{.Labels.modelClass}}"}
    assert "--runtime=lightgbm" in run("mlserver:replace", env=env, model_format="lightgbm").command


def test_mlservers_mlflow_runtime_is_modelplane_serves():
    env = {**MLSERVER_ENV, "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_mlflow.MLflowRuntime"}
    assert "--runtime=mlflow" in run("mlserver:replace", env=env).command


def test_an_mlserver_model_class_modelplane_has_no_runtime_for_is_not_served():
    env = {**MLSERVER_ENV, "MLSERVER_MODEL_IMPLEMENTATION": "my_models.Custom"}
    with pytest.raises(ImageNotServed, match="runs the MLServer runtime my_models.Custom"):
        run("mlserver:replace", env=env)


def test_mlserver_installed_here_is_the_one_that_runs():
    local = run("seldonio/mlserver:1.7.1", env=MLSERVER_ENV, installed=everything_installed)
    assert local.command == ["mlserver", "start", "/mnt/models"]
    assert local.port_env == {"MLSERVER_HTTP_PORT": "http", "MLSERVER_GRPC_PORT": "grpc"}
    assert (local.http_port, local.grpc_port) == (8080, 9000)
    assert local.env["MLSERVER_METRICS_ENDPOINT"] == ""


# ---- Triton ----

TRITON_ARGS = [
    "tritonserver",
    "--model-store=/mnt/models",
    "--grpc-port=9000",
    "--http-port=8080",
    "--allow-grpc=true",
    "--allow-http=true",
]


def test_triton_without_tritonserver_serves_the_formats_modelplane_has():
    local = run("kserve-tritonserver:replace", TRITON_ARGS, model_format="onnx")
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=onnx",
        "--http-port=8080",
        "--grpc-port=9000",
    ]
    assert local.dropped == ()
    assert local.note == "tritonserver is not installed here"
    assert "--runtime" not in " ".join(
        run("kserve-tritonserver:replace", TRITON_ARGS, model_format="triton").command
    )


def test_triton_only_formats_are_not_served_without_tritonserver():
    with pytest.raises(ImageNotServed) as refused:
        run("nvcr.io/nvidia/tritonserver:23.05-py3", TRITON_ARGS, model_format="tensorrt")
    assert str(refused.value) == (
        "image nvcr.io/nvidia/tritonserver:23.05-py3 (NVIDIA Triton) serves tensorrt models, which only Triton "
        "serves; tritonserver is not installed here"
    )


def test_tritonserver_installed_here_runs_with_its_args_and_no_metrics_port():
    local = run(
        "kserve-tritonserver:replace", TRITON_ARGS, model_format="tensorrt", installed=everything_installed
    )
    assert local.command == [*TRITON_ARGS, "--allow-metrics=false"]
    assert (local.http_port, local.grpc_port) == (8080, 9000)


# ---- TorchServe and TensorFlow Serving ----


def test_torchserve_serves_its_model_store_with_the_pytorch_runtime(with_runtimes):
    args = [
        "torchserve",
        "--start",
        "--model-store=/mnt/models/model-store",
        "--ts-config=/mnt/models/config/config.properties",
    ]
    if "pytorch" not in RUNTIMES:
        with pytest.raises(ImageNotServed, match="no pytorch runtime"):
            run("kserve-torchserve:replace", args)
    with_runtimes("pytorch")
    local = run("pytorch/torchserve-kfs:0.9.0", args)
    assert local.command == [
        "modelplane",
        "serve",
        "--model-dir=/mnt/models",
        "--runtime=pytorch",
        "--http-port=8080",
        "--grpc-port=8081",
    ]
    assert local.dropped == ()
    assert run("kserve-torchserve:replace", ["torchserve", "--ncs"]).dropped == (
        "--ncs (a TorchServe setting modelplane serve does not have)",
    )


def test_tensorflow_serving_is_its_server_if_installed_else_the_tensorflow_runtime(with_runtimes):
    args = ["--model_name=iris", "--port=9000", "--rest_api_port=8080", "--model_base_path=/mnt/models"]
    own = run("tensorflow/serving:2.6.2", args, installed=everything_installed)
    assert own.command == ["tensorflow_model_server", *args]
    assert (own.http_port, own.grpc_port) == (8080, 9000)
    with_runtimes("tensorflow")
    local = run("tensorflow/serving:2.6.2", [*args, "--rest_api_timeout_in_ms=60000"])
    assert local.command[2:] == [
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=tensorflow",
        "--http-port=8080",
        "--grpc-port=9000",
    ]
    assert local.dropped == (
        "--rest_api_timeout_in_ms=60000 (a TensorFlow Serving setting modelplane serve does not have)",
    )


def test_the_art_explainer_image_runs_the_art_runtime():
    local = run(
        "docker.io/kserve/art-explainer:v0.15.0",
        ["--model_name", "digits", "--http_port", "8080", "--predictor_host", "digits-predictor.default"]
        + [
            "--storage_uri",
            "/mnt/models",
            "--adversary_type",
            "SquareAttack",
            "--nb_classes",
            "10",
            "--eps",
            "0.1",
            # KServe's model-server flags, which its ART explainer reads too
            "--predictor_request_timeout_seconds",
            "30",
            "--grpc_port",
            "9000",
        ],
    )
    assert local.command == [
        "modelplane",
        "serve",
        "--model-name=digits",
        "--runtime=art",
        "--http-port=8080",
        "--grpc-port=9000",
        "--predictor-host=digits-predictor.default",
        "--adversary-type=SquareAttack",
        "--nb-classes=10",
        "--predictor-request-timeout-seconds=30",
    ]
    assert local.dropped == (
        "--storage_uri /mnt/models (the ART explainer reads no model folder)",
        "--eps 0.1 (KServe's ART explainer does not read it)",
    )


def test_tls_to_the_predictor_is_dropped_with_the_reason():
    local = run(
        "kserve/sklearnserver", ["--predictor_host=iris-predictor.default", "--predictor_use_ssl=true"]
    )
    assert local.dropped == (
        "--predictor_use_ssl=true (the predictor is reached through the gateway on a plain loopback port)",
    )
