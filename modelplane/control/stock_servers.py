"""The model servers of KServe's stock images, as local commands.

Each function here takes what a stock container says (its args and env, the model format it is asked
to serve) and returns the command that serves the same thing on this machine: the server itself
when it is installed here (`mlserver`, `tritonserver`, `tensorflow_model_server`), otherwise
`modelplane serve` with the server's settings translated into its flags. What has no local meaning
is dropped and said (`LocalCommand.dropped`); what cannot be served at all raises ImageNotServed.

Ports stay those of the container (8080, 8081 or what the args say): the platform gives each replica
ports of its own and rewrites them, as it does `/mnt/models`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from modelplane.control.image_args import Flag, ParsedArgs, is_placeholder, parse_args
from modelplane.runtimes import RUNTIMES
from modelplane.runtimes.huggingface import options as huggingface_options

HTTP_PORT, GRPC_PORT = 8080, 8081  # where KServe's model server listens in its container
MODEL_MOUNT = "/mnt/models"


class ImageNotServed(Exception):
    """A container whose image modelplane cannot run on this machine (the message says why; `short`
    says it in a few words, for a list of formats)."""

    def __init__(self, message: str, short: str | None = None) -> None:
        super().__init__(message)
        self.short = short or message


@dataclass(frozen=True)
class StockRequest:
    """What a stock container asks of its server."""

    args: tuple[str, ...]
    env: dict[str, str]
    model_format: str | None  # the InferenceService's modelFormat, if known
    service_name: str | None
    installed: Callable[[str], bool]  # whether a program is on this machine's PATH


@dataclass(frozen=True)
class LocalCommand:
    """What runs instead of the image. `port_env` names the environment variables that carry the
    replica's `http` or `grpc` port."""

    command: list[str]
    http_port: int
    grpc_port: int
    server: str  # what runs, in words
    note: str = ""  # why it is not the image's own server
    env: dict[str, str] = field(default_factory=dict)
    port_env: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


@dataclass
class _Serve:
    """A `modelplane serve` command line, built up from a stock server's settings."""

    runtime: str | None
    model_dir: str | None = MODEL_MOUNT  # None: a server with no model folder (an explainer)
    model_name: str | None = None
    http_port: int = HTTP_PORT
    grpc_port: int = GRPC_PORT
    grpc: bool = True
    options: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def drop(self, text: str, why: str) -> None:
        self.dropped.append(f"{text} ({why})")

    def set_port(self, flag: Flag, which: str) -> None:
        port = _port(flag.value)
        if port is None:
            self.drop(flag.text, "not a port number")
        else:
            setattr(self, f"{which}_port", port)

    def option(self, flag: Flag, option: str, *, integer: bool = False) -> None:
        if flag.value is None or (integer and not flag.value.isdigit()):
            self.drop(flag.text, "needs a value" if flag.value is None else "not a whole number")
        else:
            self.options.append(f"{option}={flag.value}")

    def pass_on(self, flag: Flag, *, switch: bool) -> None:
        """A flag modelplane serve takes under the same name, as it is (a switch given a value is
        given or not, as that value says)."""
        if not switch:
            self.option(flag, f"--{flag.name}")
        elif flag.truth() is None:
            self.drop(flag.text, "not a boolean")
        elif flag.truth():
            self.options.append(f"--{flag.name}")

    def local(self, note: str = "") -> LocalCommand:
        command = ["modelplane", "serve"]
        if self.model_dir is not None:
            command.append(f"--model-dir={self.model_dir}")
        if self.model_name:
            command.append(f"--model-name={self.model_name}")
        if self.runtime:
            command.append(f"--runtime={self.runtime}")
        command += [f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port if self.grpc else -1}"]
        command += self.options
        runs = f"modelplane serve --runtime={self.runtime}" if self.runtime else "modelplane serve"
        return LocalCommand(command, self.http_port, self.grpc_port, runs, note, dropped=tuple(self.dropped))


def served_runtime(model_format: str, server: str, note: str = "") -> str:
    """The `modelplane serve` runtime for a model format, or ImageNotServed. `note` says why the
    server's own program does not serve it."""
    runtime = model_format.lower()
    if runtime not in RUNTIMES:
        short = f"modelplane has no {model_format} runtime"
        raise ImageNotServed(
            f"{server} serves {model_format} models, and {short} (it has {', '.join(RUNTIMES)})"
            + (f"; {note}" if note else ""),
            short,
        )
    return runtime


# ---- KServe's Python model servers (sklearnserver, xgbserver, ...: `python -m <server> --flags`) ----

# KServe model-server flags that modelplane serve has under its own spelling.
_SERVE_OPTIONS = {
    "workers": ("--workers", True),
    "nthread": ("--nthread", True),
    "predictor_host": ("--predictor-host", False),
    "explainer_host": ("--explainer-host", False),
    "predictor_request_timeout_seconds": ("--predictor-request-timeout-seconds", True),
    "predictor_request_retries": ("--predictor-request-retries", True),
}
# The flags of a runtime's own server that modelplane serve takes as they are: (value flags, switches).
_RUNTIME_FLAGS = {"huggingface": (huggingface_options.VALUE_FLAGS, huggingface_options.SWITCHES)}
# KServe model-server flags with no counterpart, and why.
_NO_COUNTERPART = {
    "max_threads": "modelplane serve's gRPC server has no thread pool to size",
    "max_asyncio_workers": "modelplane serve has no asyncio executor to size",
    "enable_latency_logging": "modelplane serve logs no per-request latency line; see /metrics",
    "configure_logging": "modelplane serve's logging is set with MODELPLANE_LOGLEVEL",
    "log_config_file": "modelplane serve's logging is set with MODELPLANE_LOGLEVEL",
    "access_log_format": "modelplane serve writes no access log",
    "predictor_use_ssl": "the predictor is reached through the gateway on a plain loopback port",
}


def kserve_python_server(request: StockRequest, server: str, runtime: str | None) -> LocalCommand:
    """KServe's Python servers share one set of flags (`kserve.model_server.parser`); `runtime` is the
    format the image serves (None: predictiveserver's `--framework`, or the model's format)."""
    parsed = parse_args(list(request.args))
    if runtime is None:
        framework = parsed.value("framework")
        runtime = framework if framework and not is_placeholder(framework) else request.model_format
        if not runtime:
            raise ImageNotServed(f"{server} is not told which framework to serve (--framework)")
    serve = _Serve(served_runtime(runtime, server))
    for word in parsed.words:
        serve.drop(word, "not a flag of KServe's model server")
    values, switches = _RUNTIME_FLAGS.get(serve.runtime, ((), ()))
    for flag in parsed.without("framework"):
        if flag.name == "model_name":
            serve.model_name = flag.value
        elif flag.name == "model_dir":
            serve.model_dir = flag.value or MODEL_MOUNT
        elif flag.name in ("http_port", "grpc_port"):
            serve.set_port(flag, flag.name.removesuffix("_port"))
        elif flag.name in _SERVE_OPTIONS:
            serve.option(flag, *_SERVE_OPTIONS[flag.name][:1], integer=_SERVE_OPTIONS[flag.name][1])
        elif flag.name == "enable_grpc":
            _enable_grpc(serve, flag)
        elif flag.name == "enable_predictor_health_check":
            serve.pass_on(flag, switch=True)
        elif flag.name in ("predictor_protocol", "protocol"):
            if flag.value in ("v1", "v2", "grpc-v2"):
                serve.options.append(f"--predictor-protocol={flag.value}")
            else:
                serve.drop(flag.text, "modelplane serve reaches its predictor over v1, v2 or grpc-v2")
        elif flag.name in ("grpc_max_send_message_length", "grpc_max_receive_message_length"):
            if flag.value and flag.value.isdigit():
                serve.options.append(f"--{flag.name}={flag.value}")
            else:
                serve.drop(flag.text, "not a whole number")
        elif flag.name in values or flag.name in switches:
            serve.pass_on(flag, switch=flag.name in switches)
        elif flag.name == "enable_docs_url":
            if flag.truth() is not False:
                serve.drop(flag.text, "modelplane serve has no Swagger UI at /docs")
        else:
            serve.drop(flag.text, _NO_COUNTERPART.get(flag.name, "modelplane serve has no such setting"))
    return serve.local()


# ---- KServe's ART explainer (`python -m artserver`: the model server's flags and its own) ----

# What KServe's ARTModel reads of its config (`spec.explainer.art.config` become `--<key> <value>`).
_ART_OPTIONS = {
    "adversary_type": ("--adversary-type", False),
    "nb_classes": ("--nb-classes", True),
    "max_iter": ("--max-iter", True),
}


def art_explainer(request: StockRequest, server: str) -> LocalCommand:
    """The ART explainer: `modelplane serve --runtime art` with its settings. It queries its predictor
    and has no model of its own; a `--storage_uri` (a model folder, which KServe's explainer does not
    read either) is dropped."""
    parsed = parse_args(list(request.args))
    serve = _Serve("art", model_dir=None)
    for word in parsed.words:
        serve.drop(word, "not a flag of KServe's ART explainer")
    for flag in parsed.flags:
        if flag.name == "model_name":
            serve.model_name = flag.value
        elif flag.name in ("http_port", "grpc_port"):
            serve.set_port(flag, flag.name.removesuffix("_port"))
        elif flag.name in _ART_OPTIONS:
            serve.option(flag, _ART_OPTIONS[flag.name][0], integer=_ART_OPTIONS[flag.name][1])
        elif flag.name in (
            "predictor_host",
            "workers",
            "predictor_request_timeout_seconds",
            "predictor_request_retries",
        ):
            serve.option(flag, *_SERVE_OPTIONS[flag.name][:1], integer=_SERVE_OPTIONS[flag.name][1])
        elif flag.name == "storage_uri":
            serve.drop(flag.text, "the ART explainer reads no model folder")
        else:
            serve.drop(flag.text, "KServe's ART explainer does not read it")
    return serve.local()


def _enable_grpc(serve: _Serve, flag: Flag) -> None:
    truth = flag.truth()
    if truth is None:
        serve.drop(flag.text, "not a boolean")
    elif truth is False:
        serve.grpc = False


# ---- MLServer ----

_MLSERVER_FORMATS = {
    "mlserver_sklearn.SKLearnModel": "sklearn",
    "mlserver_xgboost.XGBoostModel": "xgboost",
    "mlserver_lightgbm.LightGBMModel": "lightgbm",
    "mlserver_mlflow.MLflowRuntime": "mlflow",
}
# What modelplane serve does itself for the settings KServe gives MLServer.
_MLSERVER_ENV_ACTED_ON = (
    "MLSERVER_MODEL_NAME",
    "MLSERVER_MODEL_URI",
    "MLSERVER_MODEL_IMPLEMENTATION",
    "MLSERVER_HTTP_PORT",
    "MLSERVER_GRPC_PORT",
    "MLSERVER_LOAD_MODELS_AT_STARTUP",  # a multi-model predictor starts empty here too
)


_MLSERVER_BATCHING = ("MLSERVER_MODEL_MAX_BATCH_SIZE", "MLSERVER_MODEL_MAX_BATCH_TIME")


def _mlserver_batching(serve: _Serve, env: dict[str, str]) -> None:
    """MLServer's adaptive batching (on when the size is above 1 and the time, in seconds, above 0) as
    modelplane serve's batcher."""
    given = {name: env[name] for name in _MLSERVER_BATCHING if name in env}
    if not given:
        return
    try:
        size = int(env.get("MLSERVER_MODEL_MAX_BATCH_SIZE", "0"))
        seconds = float(env.get("MLSERVER_MODEL_MAX_BATCH_TIME", "0"))
    except ValueError:
        size, seconds = 0, -1.0
    if size > 1 and 0 < seconds < float("inf"):
        # MLServer's max_batch_size counts requests, where the batcher's counts rows by default.
        serve.options += [
            f"--max-batch-size={size}",
            f"--max-latency={seconds * 1000:g}",
            "--batch-counts=requests",
        ]
        return
    why = "not numbers" if seconds < 0 else "batching is off unless the size is above 1 and the time above 0"
    for name, value in given.items():
        serve.drop(f"{name}={value}", why)


def mlserver(request: StockRequest, server: str) -> LocalCommand:
    env = request.env
    http_port = _port(env.get("MLSERVER_HTTP_PORT")) or HTTP_PORT
    grpc_port = _port(env.get("MLSERVER_GRPC_PORT")) or GRPC_PORT
    if request.installed("mlserver"):
        command = list(request.args) or ["mlserver", "start", env.get("MLSERVER_MODELS_DIR", MODEL_MOUNT)]
        return LocalCommand(
            command,
            http_port,
            grpc_port,
            "mlserver, installed here",
            # One replica has two ports: MLServer's third, for metrics, is turned off.
            env={"MLSERVER_HOST": "127.0.0.1", "MLSERVER_METRICS_ENDPOINT": ""},
            port_env={"MLSERVER_HTTP_PORT": "http", "MLSERVER_GRPC_PORT": "grpc"},
        )
    implementation = env.get("MLSERVER_MODEL_IMPLEMENTATION")
    if implementation and not is_placeholder(implementation):
        model_format = _MLSERVER_FORMATS.get(implementation)
        if model_format is None:
            raise ImageNotServed(
                f"{server} runs the MLServer runtime {implementation}; mlserver is not installed here",
                f"the MLServer runtime {implementation} needs mlserver",
            )
    elif request.model_format:
        model_format = request.model_format
    else:
        raise ImageNotServed(f"{server} is not told which MLServer runtime to run")
    serve = _Serve(served_runtime(model_format, server, "mlserver is not installed here"))
    serve.http_port, serve.grpc_port = http_port, grpc_port
    serve.model_dir = env.get("MLSERVER_MODEL_URI") or MODEL_MOUNT
    serve.model_name = env.get("MLSERVER_MODEL_NAME") or request.service_name
    # Its V2 answers are MLServer's: `predict` (or the outputs asked for), not KServe's `output-0`.
    serve.options.append("--v2-outputs=mlserver")
    _mlserver_batching(serve, env)
    for name in sorted(env):
        if name.startswith("MLSERVER_") and name not in _MLSERVER_ENV_ACTED_ON + _MLSERVER_BATCHING:
            serve.drop(f"{name}={env[name]}", "an MLServer setting modelplane serve does not have")
    for part in request.args:
        serve.drop(part, "an argument to mlserver")
    return serve.local("mlserver is not installed here")


# ---- NVIDIA Triton ----

# Formats Triton serves that modelplane serve may (when it has the runtime); None: find out from the files.
_TRITON_FORMATS: dict[str, str | None] = {
    "onnx": "onnx",
    "tensorflow": "tensorflow",
    "pytorch": "pytorch",
    "triton": None,
}
_TRITON_ACCEPTED = ("allow_http", "allow_grpc", "model_control_mode", "strict_model_config")


def triton(request: StockRequest, server: str) -> LocalCommand:
    parsed = parse_args(list(request.args))
    program = "tritonserver"
    if request.installed(program):
        return _triton_itself(request, parsed, program)
    model_format = (request.model_format or "triton").lower()
    if model_format not in _TRITON_FORMATS:
        raise ImageNotServed(
            f"{server} serves {model_format} models, which only Triton serves; "
            "tritonserver is not installed here",
            "only Triton serves them",
        )
    runtime = _TRITON_FORMATS[model_format]
    serve = _Serve(served_runtime(runtime, server, "tritonserver is not installed here") if runtime else None)
    serve.model_name = request.service_name
    for word in parsed.words:
        if word != program:
            serve.drop(word, "not a flag of tritonserver")
    for flag in parsed.flags:
        if flag.name in ("model_store", "model_repository"):
            serve.model_dir = flag.value or MODEL_MOUNT
        elif flag.name in ("http_port", "grpc_port"):
            serve.set_port(flag, flag.name.removesuffix("_port"))
        elif flag.name == "allow_grpc" and flag.truth() is False:
            serve.grpc = False
        elif flag.name not in _TRITON_ACCEPTED:
            serve.drop(flag.text, "a tritonserver setting modelplane serve does not have")
    return serve.local("tritonserver is not installed here")


def _triton_itself(request: StockRequest, parsed: ParsedArgs, program: str) -> LocalCommand:
    args = [part for part in request.args if part != program]
    http_port = _port(parsed.value("http_port"))
    grpc_port = _port(parsed.value("grpc_port"))
    if http_port is None:
        http_port = HTTP_PORT
        args.append(f"--http-port={HTTP_PORT}")
    if grpc_port is None:
        grpc_port = GRPC_PORT
        args.append(f"--grpc-port={GRPC_PORT}")
    if not any(flag.name.startswith(("allow_metrics", "metrics_")) for flag in parsed.flags):
        args.append("--allow-metrics=false")  # one replica has two ports, and metrics would take a third
    return LocalCommand([program, *args], http_port, grpc_port, "tritonserver, installed here")


# ---- TensorFlow Serving ----

_TF_SERVING_ACCEPTED = ("model_name", "model_base_path", "port", "rest_api_port")


def tensorflow_serving(request: StockRequest, server: str) -> LocalCommand:
    parsed = parse_args(list(request.args))
    program = "tensorflow_model_server"
    grpc_port = _port(parsed.value("port"))
    http_port = _port(parsed.value("rest_api_port"))
    if request.installed(program):
        args = [part for part in request.args if part != program]
        if grpc_port is None:
            grpc_port = GRPC_PORT
            args.append(f"--port={GRPC_PORT}")
        if not http_port:  # TensorFlow Serving's REST API is off unless given a port
            http_port = HTTP_PORT
            args.append(f"--rest_api_port={HTTP_PORT}")
        return LocalCommand([program, *args], http_port, grpc_port, f"{program}, installed here")
    serve = _Serve(served_runtime("tensorflow", server, f"{program} is not installed here"))
    serve.model_name = parsed.value("model_name") or request.service_name
    serve.model_dir = parsed.value("model_base_path") or MODEL_MOUNT
    serve.http_port = http_port or HTTP_PORT
    serve.grpc_port = grpc_port or GRPC_PORT
    for word in parsed.words:
        if word != program:
            serve.drop(word, f"not a flag of {program}")
    for flag in parsed.without(*_TF_SERVING_ACCEPTED):
        serve.drop(flag.text, "a TensorFlow Serving setting modelplane serve does not have")
    return serve.local(f"{program} is not installed here")


# ---- TorchServe (KServe's torchserve-kfs image) ----

_TORCHSERVE_ACCEPTED = ("start", "foreground", "model_store", "ts_config")


def torchserve(request: StockRequest, server: str) -> LocalCommand:
    """`torchserve --start --model-store=D/model-store --ts-config=D/config/config.properties` serves
    the TorchServe model store in D: `modelplane serve --runtime=pytorch --model-dir=D`."""
    parsed = parse_args(list(request.args))
    serve = _Serve(served_runtime("pytorch", server))
    store = parsed.value("model_store")
    config = parsed.value("ts_config")
    if store:
        serve.model_dir = store.removesuffix("/").removesuffix("/model-store") or "/"
    elif config:
        serve.model_dir = config.removesuffix("/config/config.properties") or "/"
    for word in parsed.words:
        if word != "torchserve":
            serve.drop(word, "not a flag of torchserve")
    for flag in parsed.without(*_TORCHSERVE_ACCEPTED):
        serve.drop(flag.text, "a TorchServe setting modelplane serve does not have")
    return serve.local()


def _port(value: str | None) -> int | None:
    if value is None or not value.isdigit() or not 0 < int(value) < 65536:
        return None
    return int(value)
