"""`modelplane serve`: run the model server for one model folder (what each replica runs)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelplane.cli.main import CommandError
from modelplane.runtimes.huggingface import options as huggingface_options
from modelplane.server import payload_logging
from modelplane.server.rest import DEFAULT_MAX_BODY

if TYPE_CHECKING:
    from modelplane.server.connection_limits import ConnectionLimits
    from modelplane.server.request_batching import BatchSettings

logger = logging.getLogger("modelplane.server")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model folder over REST and gRPC",
        description="Serve the model in a folder (or each model in its subfolders) over the V1 and "
        "V2 inference protocols, on REST and gRPC.",
    )
    add = parser.add_argument
    add(
        "--model-dir",
        "--model_dir",
        default=os.environ.get("MODEL_DIR"),
        help="folder (or file) holding the model",
    )
    add(
        "--model-name", "--model_name", default=None, help="name the model is served under (default: 'model')"
    )
    add(
        "--runtime",
        default=None,
        help="sklearn, xgboost, lightgbm, onnx, pytorch, tensorflow, pmml, paddle, huggingface, mlflow or custom "
        "(default: from the files); art: KServe's ART explainer, which needs no model folder",
    )
    add(
        "--model-class",
        "--model_class",
        default=None,
        help="for custom models: module:Class or file.py:Class",
    )
    add("--model-version", default=None, help="the version the model reports and answers to on V2")
    add(
        "--multi-model",
        action="store_true",
        default=os.environ.get("MULTI_MODEL_SERVER", "").lower() == "true",
        help="serve the model folder as a repository, even an empty one: each subfolder is a model, and "
        "more are loaded by name (env MULTI_MODEL_SERVER=true)",
    )
    add(
        "--http-port",
        "--http_port",
        type=int,
        default=int(os.environ.get("PORT", 8080)),
        help="REST port (default: $PORT, else 8080)",
    )
    add("--grpc-port", "--grpc_port", type=int, default=8081, help="gRPC port; -1 turns gRPC off")
    add(
        "--grpc-max-message-length",
        type=int,
        default=None,
        help="largest gRPC message taken or sent, in bytes (default 64 MiB); larger ones end the call "
        "with RESOURCE_EXHAUSTED, a request's as soon as its length prefix says how large it is",
    )
    for kserve_spelling, direction in (
        ("--grpc_max_receive_message_length", "taken (a request's)"),
        ("--grpc_max_send_message_length", "sent (an answer's)"),
    ):
        add(
            kserve_spelling,
            type=int,
            default=None,
            help=f"KServe's limit of a gRPC message {direction}, in bytes (default: --grpc-max-message-length)",
        )
    add(
        "--max-body-size",
        type=int,
        default=DEFAULT_MAX_BODY,
        help="largest REST request body taken, in bytes, before or after its Content-Encoding is undone "
        "(default 256 MiB); a larger one is answered 413",
    )
    add("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    add("--workers", type=int, default=1, help="worker processes sharing the ports")
    add(
        "--nthread",
        type=int,
        default=None,
        help="threads per prediction for xgboost, lightgbm, onnx, tensorflow, pytorch, paddle and huggingface "
        "(default 1; pytorch, huggingface: torch's own); pmml: the JVM's processor count",
    )
    add(
        "--max-batch-rows",
        type=int,
        default=None,
        help="built-in runtimes predict requests that arrive together in one call, up to this many rows "
        "(default 64; 1 turns it off)",
    )
    _add_batcher_flags(parser)
    payload_logging.add_flags(parser)
    add_connection_flags(parser)
    _add_art_flags(parser)
    huggingface_options.add_arguments(parser)
    add("--predict-proba", action="store_true", default=None, help="sklearn: answer with predict_proba")
    add(
        "--v2-outputs",
        choices=["kserve", "mlserver"],
        default=None,
        help="sklearn, xgboost, lightgbm: V2 answers as KServe's servers give them (one output-0) or as "
        "MLServer's runtimes do (predict, predict_proba...); default: mlserver for a model folder with a "
        "model-settings.json, else kserve",
    )
    add("--predictor-host", "--predictor_host", default=None, help="transformers: the predictor's host:port")
    add(
        "--predictor-protocol",
        "--predictor_protocol",
        "--protocol",  # KServe's older spelling, which its transformer samples still use
        default="v1",
        choices=["v1", "v2", "grpc-v2"],
        help="transformers: the protocol spoken to the predictor: v1 or v2 over REST, grpc-v2 over gRPC "
        "(default: v1)",
    )
    add(
        "--predictor-request-timeout-seconds",
        "--predictor_request_timeout_seconds",
        type=float,
        default=None,
        help="transformers and explainers: how long a call to the predictor or explainer may take "
        "(default 600)",
    )
    add(
        "--predictor-request-retries",
        "--predictor_request_retries",
        type=_retries,
        default=None,
        help="transformers and explainers: how many more times a call is made whose predictor or "
        "explainer takes no connection (over gRPC: answers UNAVAILABLE); default 0",
    )
    add(
        "--enable-predictor-health-check",
        "--enable_predictor_health_check",
        action="store_true",
        help="transformers: ready only while the predictor says it holds the model ready",
    )
    add(
        "--explainer-host",
        "--explainer_host",
        default=None,
        help="where :explain goes when the model has no explain",
    )
    add(
        "--log-level",
        default=os.environ.get("MODELPLANE_LOGLEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default: $MODELPLANE_LOGLEVEL, else INFO)",
    )
    parser.set_defaults(func=run)


def _add_batcher_flags(parser: argparse.ArgumentParser) -> None:
    """KServe's batcher (its agent's --enable-batcher, --max-batchsize and --max-latency)."""
    add = parser.add_argument
    add(
        "--enable-batcher",
        action="store_true",
        help="batch predict requests: each waits up to --max-latency for others to share a model call with",
    )
    add(
        "--max-batch-size",
        "--max-batchsize",
        type=int,
        default=None,
        help="batcher: the most rows (V1 instances, V2 rows) in one model call (default 32; turns the batcher on)",
    )
    add(
        "--max-latency",
        type=float,
        default=None,
        help="batcher: milliseconds a request waits for others (default 5000; turns the batcher on)",
    )
    add(
        "--batch-timeout",
        type=float,
        default=None,
        help="batcher: seconds a model call may take before its requests fail (default: no limit)",
    )
    add(
        "--batch-counts",
        choices=("rows", "requests"),
        default=None,
        help="batcher: what --max-batch-size counts: rows, as KServe's batcher (default), or requests, "
        "as MLServer's adaptive batching",
    )


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """How long the server waits for clients, and how many idle ones it keeps (docs/security.md)."""
    add = parser.add_argument
    add(
        "--header-timeout",
        type=float,
        default=10.0,
        help="REST: seconds a request's line and headers may take to arrive (default 10); then 408",
    )
    add(
        "--body-timeout",
        type=float,
        default=60.0,
        help="seconds a request body may go without a byte arriving (default 60); then REST 408, "
        "gRPC CANCELLED",
    )
    add(
        "--idle-timeout",
        type=float,
        default=65.0,
        help="seconds a connection may stay open with nothing under way (default 65)",
    )
    add(
        "--max-idle-connections",
        type=int,
        default=1024,
        help="REST: connections kept while not being answered (default 1024); past it the longest idle closes",
    )


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    from modelplane.server.connection_limits import ConnectionLimits

    for flag in ("header_timeout", "body_timeout", "idle_timeout"):
        value = getattr(args, flag)
        if not 0 < value < float("inf"):
            raise CommandError(
                f"--{flag.replace('_', '-')} must be a positive number of seconds, got {value:g}"
            )
    if args.max_idle_connections < 1:
        raise CommandError(f"--max-idle-connections must be at least 1, got {args.max_idle_connections}")
    return ConnectionLimits(
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
        max_idle_connections=args.max_idle_connections,
    )


def _add_art_flags(parser: argparse.ArgumentParser) -> None:
    """KServe's ART explainer's flags (`--runtime art`)."""
    add = parser.add_argument
    add("--adversary-type", "--adversary_type", default=None, help="art: the attack (SquareAttack)")
    add("--nb-classes", "--nb_classes", type=int, default=None, help="art: the predictor's classes (10)")
    add("--max-iter", "--max_iter", type=int, default=None, help="art: the attack's iterations (1000)")


_ART_FLAGS = {"adversary_type": "--adversary-type", "nb_classes": "--nb-classes", "max_iter": "--max-iter"}


def batch_settings(args: argparse.Namespace) -> BatchSettings | None:
    """The batcher's settings from the command line; None when the batcher is off."""
    from modelplane.server.request_batching import (
        DEFAULT_MAX_BATCH_SIZE,
        DEFAULT_MAX_LATENCY_MS,
        BatchSettings,
    )

    if not (args.enable_batcher or args.max_batch_size is not None or args.max_latency is not None):
        for given, flag in ((args.batch_timeout, "--batch-timeout"), (args.batch_counts, "--batch-counts")):
            if given is not None:
                raise CommandError(f"{flag} needs the batcher: add --enable-batcher or --max-batch-size")
        return None
    size = DEFAULT_MAX_BATCH_SIZE if args.max_batch_size is None else args.max_batch_size
    latency = DEFAULT_MAX_LATENCY_MS if args.max_latency is None else args.max_latency
    if size < 1:
        raise CommandError(f"--max-batch-size must be at least 1, got {size}")
    if not 0 <= latency < float("inf"):
        raise CommandError(f"--max-latency must be a number of milliseconds, at least 0, got {latency:g}")
    if args.batch_timeout is not None and not 0 < args.batch_timeout < float("inf"):
        raise CommandError(
            f"--batch-timeout must be a positive number of seconds, got {args.batch_timeout:g}"
        )
    return BatchSettings(
        size, latency / 1000, args.batch_timeout, counts_requests=args.batch_counts == "requests"
    )


def grpc_message_limits(args: argparse.Namespace) -> tuple[int, int]:
    """The largest gRPC message taken and the largest sent: KServe's flag for each direction, else
    --grpc-max-message-length, else 64 MiB."""
    given = {
        "--grpc-max-message-length": args.grpc_max_message_length,
        "--grpc_max_receive_message_length": args.grpc_max_receive_message_length,
        "--grpc_max_send_message_length": args.grpc_max_send_message_length,
    }
    for flag, value in given.items():
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be at least 1 byte")
    both = args.grpc_max_message_length or 64 * 1024 * 1024
    return args.grpc_max_receive_message_length or both, args.grpc_max_send_message_length or both


def run(args: argparse.Namespace) -> int:
    from modelplane.server.model_server import ListenError, ModelServer, configure_logging

    configure_logging(args.log_level)
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if args.max_body_size < 1:
        raise CommandError("--max-body-size must be at least 1 byte")
    batching = batch_settings(args)
    limits = connection_limits(args)
    try:
        payload_log = payload_logging.spec_from(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    grpc_receive_limit, grpc_send_limit = grpc_message_limits(args)
    models, factory = build_models(args)
    factory = _RebuildingFactory(factory, frozenset(model.name for model in models), args)
    server = ModelServer(
        http_port=args.http_port,
        grpc_port=None if args.grpc_port < 0 else args.grpc_port,
        grpc_max_message_length=grpc_receive_limit,
        grpc_max_send_message_length=grpc_send_limit,
        max_body_size=args.max_body_size,
        workers=args.workers,
        host=args.host,
        model_factory=factory,
        multi_model=args.multi_model,
        batching=batching,
        limits=limits,
        payload_log=payload_log,
    )
    try:
        server.start(models)
    except ListenError as exc:
        raise CommandError(str(exc)) from None
    # Everything is stopped and every request answered. Tearing down the interpreter's modules
    # (numpy, scikit-learn, grpc) would take seconds more of a replica's stop for nothing.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def build_models(args: argparse.Namespace):
    """The models to serve, and a factory loading further ones by name from subfolders."""
    from modelplane.runtimes import RuntimeUnavailable
    from modelplane.runtimes.custom import CustomModelError, build_custom_model
    from modelplane.runtimes.detect import detect_runtime
    from modelplane.runtimes.torchserve.store import StoreError

    name = args.model_name or "model"
    runtime = args.runtime or ("custom" if args.model_class else "huggingface" if args.model_id else None)
    given_art_flags = [flag for attribute, flag in _ART_FLAGS.items() if getattr(args, attribute) is not None]
    if runtime == "art":
        return [_art_explainer(name, args)], None
    if given_art_flags:
        raise CommandError(f"{', '.join(given_art_flags)}: flags of the art explainer (--runtime art)")
    try:
        if runtime == "custom":
            if not args.model_class:
                raise CommandError("--runtime custom needs --model-class module:Class")
            _refuse_huggingface_flags(args, "custom")
            model = build_custom_model(args.model_class, name, args.model_dir)
            _configure(model, args)
            return [model], None
        if runtime == "huggingface" and args.model_id:  # it wins over --model-dir, as in KServe
            return [_huggingface_model(None, name, args)], None
        if not args.model_dir:
            raise CommandError("--model-dir is required (or set MODEL_DIR)")
        model_dir = Path(args.model_dir)
        if not model_dir.exists():
            raise CommandError(f"model folder {model_dir} does not exist")
        if model_dir.is_file() and runtime is None and detect_runtime(model_dir) is None:
            raise CommandError(
                f"{model_dir} is not a model file whose runtime its name tells: name it with --runtime, "
                "or give the model's folder"
            )
        # A multi-model server has a model of its own only if a model file is at the top.
        if not args.multi_model or detect_runtime(model_dir) is not None:
            found = _folder_models(model_dir, runtime, name, args)
            if found:
                return found, factory_for(model_dir, runtime, args) if args.multi_model else None

        factory = factory_for(model_dir, runtime, args)
        models = []
        for folder in _model_folders(model_dir):
            model = _single_model(folder, runtime, folder.name, args)
            if model is None:
                logger.warning("skipping %s: no model file in it", folder)
            else:
                models.append(model)
        if not models and not args.multi_model:
            raise CommandError(
                f"no model file found in {model_dir}, nor in folders under it "
                "(--multi-model starts with no model and loads them by name)"
            )
        return models, factory
    except (RuntimeUnavailable, CustomModelError, LookupError, StoreError) as exc:
        raise CommandError(str(exc)) from None


@dataclass(frozen=True)
class _RebuildingFactory:
    """The factory, which also builds again, by name, a model the server was started with: a
    repository load brings back a model that was unloaded (Triton's semantics), even on a server of
    one model. A class, not a closure: `--workers` hands it to processes of their own."""

    factory: Any
    start_names: frozenset[str]
    args: argparse.Namespace

    def __call__(self, model_name: str):
        if self.factory is not None:
            try:
                return self.factory(model_name)
            except LookupError:
                if model_name not in self.start_names:
                    raise
        if model_name not in self.start_names:
            raise LookupError(f"Model with name {model_name} is not in the repository.")
        try:
            models, _ = build_models(self.args)
        except CommandError as exc:
            raise LookupError(f"cannot build {model_name} again: {exc}") from None
        for model in models:
            if model.name == model_name:
                return model
        raise LookupError(f"{model_name} is no longer where the server found it at start")

    def available(self) -> list[str]:
        return self.factory.available() if self.factory is not None else []


def _art_explainer(name: str, args: argparse.Namespace):
    from modelplane.runtimes.art import DEFAULT_MAX_ITER, DEFAULT_NB_CLASSES, ARTExplainer

    _refuse_huggingface_flags(args, "art")
    for value, flag in ((args.nb_classes, "--nb-classes"), (args.max_iter, "--max-iter")):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be at least 1, got {value}")
    model = ARTExplainer(
        name,
        adversary_type=args.adversary_type or "SquareAttack",
        nb_classes=args.nb_classes or DEFAULT_NB_CLASSES,
        max_iter=args.max_iter or DEFAULT_MAX_ITER,
    )
    _configure(model, args)
    return model


def _model_folders(model_dir: Path) -> list[Path]:
    # (Hidden folders are not models: a fetch stages its files in one.)
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def factory_for(model_dir: Path, runtime: str | None, args: argparse.Namespace) -> _FolderFactory:
    return _FolderFactory(model_dir, runtime, args)


@dataclass(frozen=True)
class _FolderFactory:
    """Loads a model by name from its subfolder of `model_dir` (a repository's load)."""

    model_dir: Path
    runtime: str | None
    args: argparse.Namespace

    def __call__(self, model_name: str):
        if not _is_folder_name(model_name):
            # Never a path: `../x` or `/x` would load (and unpickle) a folder outside the repository.
            raise LookupError(
                f"Model with name {model_name} is not in {self.model_dir}: a model is one of its subfolders"
            )
        folder = self.model_dir / model_name
        if not _is_dir(folder):
            raise LookupError(f"Model with name {model_name} is not in {self.model_dir}")
        model = _single_model(folder, self.runtime, model_name, self.args)
        if model is None:
            raise LookupError(f"no model file for {model_name} in {folder}")
        return model

    def available(self) -> list[str]:
        """The names of the subfolders a load would find a model in (the repository index lists them)."""
        from modelplane.runtimes.detect import detect_runtime

        return [
            folder.name
            for folder in _model_folders(self.model_dir)
            if self.runtime is not None or detect_runtime(folder) is not None
        ]


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name longer than the file system takes (ENAMETOOLONG): no such folder
        return False


def _is_folder_name(name: str) -> bool:
    """Whether `name` names a model folder directly inside the repository (no path, not hidden)."""
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\0")


def _single_model(model_dir: Path, runtime: str | None, name: str, args: argparse.Namespace):
    """The model in `model_dir`, or None when no runtime can tell what it is. (A TorchServe model
    store may hold several: `_folder_models`.)"""
    models = _folder_models(model_dir, runtime, name, args)
    if len(models) > 1:
        raise CommandError(f"{model_dir} holds {len(models)} models; serve it as a folder of models")
    return models[0] if models else None


def _folder_models(model_dir: Path, runtime: str | None, name: str, args: argparse.Namespace) -> list:
    from modelplane.runtimes import runtime_class
    from modelplane.runtimes.detect import detect_runtime

    runtime = runtime or detect_runtime(model_dir)
    if runtime is None:
        return []
    if runtime == "huggingface":
        return [_huggingface_model(model_dir, name, args)]
    _refuse_huggingface_flags(args, runtime)
    if runtime == "pytorch":
        from modelplane.runtimes.torchserve import is_model_store, store_models

        if is_model_store(model_dir):
            models = store_models(model_dir, args.nthread)
            for model in models:
                _configure(model, args)
            return models
    cls = runtime_class(runtime)
    options = {}
    if args.max_batch_rows is not None and runtime != "pytorch":
        options["max_batch_rows"] = args.max_batch_rows
    if (
        runtime in ("xgboost", "lightgbm", "onnx", "tensorflow", "pytorch", "pmml", "paddle")
        and args.nthread is not None
    ):
        options["nthread"] = args.nthread
    if runtime == "sklearn" and args.predict_proba is not None:
        options["predict_proba"] = args.predict_proba
    model = cls(name, str(model_dir), **options)
    _configure(model, args)
    if runtime in ("sklearn", "xgboost", "lightgbm", "mlflow"):
        from modelplane.runtimes.model_settings import ModelSettingsError, apply_model_settings

        try:
            from_mlserver = apply_model_settings(model, runtime)
        except ModelSettingsError as exc:
            raise CommandError(str(exc)) from None
        if runtime != "mlflow":  # an MLflow model always answers as MLServer's mlflow runtime does
            model.v2_outputs = args.v2_outputs or ("mlserver" if from_mlserver else "kserve")
    return [model]


def _refuse_huggingface_flags(args: argparse.Namespace, runtime: str) -> None:
    given = huggingface_options.given(args)
    if given:
        raise CommandError(f"{', '.join(given)}: flags of the huggingface runtime, not of {runtime}")


def _huggingface_model(model_dir: Path | None, name: str, args: argparse.Namespace):
    from modelplane.runtimes import runtime_class

    try:
        settings = huggingface_options.settings(args)
    except huggingface_options.OptionsError as exc:
        raise CommandError(str(exc)) from None
    if args.max_batch_rows is not None:
        logger.warning(
            "--max-batch-rows does not apply to the huggingface runtime: its engine batches itself"
        )
    cls = runtime_class("huggingface")
    model = cls(name, None if model_dir is None else str(model_dir), settings=settings, nthread=args.nthread)
    _configure(model, args)
    return model


def _retries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number of retries, 0 or more: {text!r}")
    return value


def _configure(model, args: argparse.Namespace) -> None:
    if args.model_version:
        model.version = args.model_version
    if args.predictor_host:
        model.predictor_host = args.predictor_host
        model.predictor_protocol = args.predictor_protocol
    if args.explainer_host:
        model.explainer_host = args.explainer_host
    if args.predictor_request_timeout_seconds is not None:
        model.predictor_request_timeout_seconds = args.predictor_request_timeout_seconds
    if args.predictor_request_retries is not None:
        model.predictor_request_retries = args.predictor_request_retries
    if args.enable_predictor_health_check:
        model.predictor_health_check = True
