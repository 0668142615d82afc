"""What a TorchServe model store declares: its models, their versions, archives, workers and batching.

KServe's layout is `<dir>/config/config.properties` and `<dir>/model-store/*.mar`. The models come
from `model_snapshot`, each name with its versions, as TorchServe restores it; else from `load_models`
(`all`, or a comma-separated list of `name=file.mar` or `file.mar`), each archive with the settings
`models` gives its name and version, as in TorchServe. `models` without `load_models` (where TorchServe
would serve nothing) is served as a snapshot would be; with neither, modelplane serves every archive in
the store, and says so in the log.

A model's workers, batching and timeout come from its entry in `model_snapshot` or `models`, and from the
model config its archive carries (`torch-model-archiver --config-file`), with TorchServe's precedence:
a snapshot's entry is the state TorchServe restores, so it wins; otherwise the archive's config wins over
the `models` entry. Settings of an entry or an archive that modelplane does not act on are warned about.

Keys that speak of TorchServe's own frontend (addresses, ports, netty threads, queue sizes) have no
meaning in a modelplane replica, whose ports are the platform's: they are logged as not used. Unknown
keys are logged as warnings. With `enable_envvars_config=true`, `TS_<KEY>` environment variables
override the file, as in TorchServe (KServe's runtime sets `TS_SERVICE_ENVELOPE` this way).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from modelplane.runtimes.torchserve.properties import parse_properties

logger = logging.getLogger("modelplane.server")

CONFIG_PATH = Path("config") / "config.properties"
STORE_FOLDER = "model-store"
DEFAULT_RESPONSE_TIMEOUT = 120.0  # seconds, TorchServe's default_response_timeout
DEFAULT_MAX_BATCH_DELAY = 0.1  # seconds, TorchServe's maxBatchDelay default (100 ms)

# Keys modelplane acts on.
_USED = {
    "model_snapshot",
    "models",
    "load_models",
    "model_store",
    "default_workers_per_model",
    "default_response_timeout",
    "limit_max_image_pixels",
    "enable_envvars_config",
    "service_envelope",
}
# Keys of TorchServe's frontend and process management: nothing to do in a modelplane replica.
_FRONTEND = {
    "inference_address",
    "management_address",
    "metrics_address",
    "grpc_inference_port",
    "grpc_management_port",
    "grpc_inference_address",
    "grpc_management_address",
    "enable_grpc_ssl",
    "number_of_netty_threads",
    "netty_client_threads",
    "job_queue_size",
    "enable_metrics_api",
    "metrics_mode",
    "metrics_config",
    "metrics_format",
    "cors_allowed_origin",
    "cors_allowed_methods",
    "cors_allowed_headers",
    "max_request_size",
    "max_response_size",
    "async_logging",
    "vmargs",
    "number_of_gpu",
    "install_py_dep_per_model",
    "disable_system_metrics",
    "workflow_store",
    "allowed_urls",
    "disable_token_authorization",
    "enable_model_api",
    "use_native_io",
    "io_ratio",
    "unregister_model_timeout",
    "decode_input_request",
    "model_server_home",
    "plugins_path",
    "private_key_file",
    "certificate_file",
    "keystore",
    "keystore_pass",
    "keystore_type",
    "default_startup_timeout",
}


# A model's settings modelplane acts on, in a config.properties entry and in an archive's model config.
_MODEL_USED = {"minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout"}
# ... and the entry's own: which archive, which version is served.
_ENTRY_USED = {"defaultVersion", "marName"}
# TorchServe's other settings of a model: its frontend's queues, retries and sequences, the device and
# parallelism its workers are placed with. Not used in a modelplane replica.
_MODEL_NOT_USED = {
    "startupTimeout",
    "runtimeType",
    "jobQueueSize",
    "deviceType",
    "deviceIds",
    "parallelLevel",
    "parallelType",
    "torchrun",
    "maxRetryTimeoutInSec",
    "clientTimeoutInMills",
    "useJobTicket",
    "asyncCommunication",
    "sequenceMaxIdleMSec",
    "sequenceTimeoutMSec",
    "maxNumSequence",
    "maxSequenceJobQueueSize",
    "continuousBatching",
    "useVenv",
}


class StoreError(Exception):
    """A model store that cannot be served as it is written."""


@dataclass(frozen=True)
class StoreModel:
    """One model version of a store, and how it is to be served."""

    name: str
    version: str | None
    archive: Path
    is_default: bool = True
    workers: int = 1
    batch_size: int = 1
    max_batch_delay: float = DEFAULT_MAX_BATCH_DELAY
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT


@dataclass(frozen=True)
class ModelStore:
    folder: Path
    models: list[StoreModel]
    limit_max_image_pixels: bool = True
    service_envelope: str | None = None


def is_model_store(folder: Path) -> bool:
    """Whether a folder is laid out as KServe lays out a TorchServe model store."""
    return (folder / CONFIG_PATH).is_file() or (folder / STORE_FOLDER).is_dir()


def read_store(folder: Path, environ: dict[str, str] | None = None) -> ModelStore:
    """The models a store declares; StoreError when it names an archive that is not there."""
    environ = os.environ if environ is None else environ
    config_file = folder / CONFIG_PATH
    properties = parse_properties(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    if properties.get("enable_envvars_config", "").lower() == "true":
        for key, value in environ.items():
            if key.startswith("TS_") and value:
                properties[key[3:].lower()] = value
    _log_unused(properties)
    store_dir = _store_dir(folder, properties)
    defaults = {
        "workers": _positive_int(properties, "default_workers_per_model", 1),
        "response_timeout": _positive_float(properties, "default_response_timeout", DEFAULT_RESPONSE_TIMEOUT),
    }
    declared = _declared_models(properties)
    load_models = properties.get("load_models", "")
    from_snapshot = bool(properties.get("model_snapshot"))
    if declared is not None and (from_snapshot or not load_models.strip()):
        # A snapshot is restored whatever load_models says; `models` alone is read as the models to serve.
        models = _with_defaults_settled(
            [
                _store_model(store_dir, name, version, entry, defaults, from_snapshot=from_snapshot)
                for name, version, entry in declared
            ]
        )
    else:
        # As in TorchServe, load_models picks the archives, and `models` only gives their settings.
        entries = {(name, str(version)): entry for name, version, entry in declared or []}
        models = _loaded_models(store_dir, load_models, defaults, entries)
    if not models:
        raise StoreError(f"the model store {store_dir} holds no .mar archive to serve")
    return ModelStore(
        folder,
        models,
        limit_max_image_pixels=properties.get("limit_max_image_pixels", "true").lower() != "false",
        service_envelope=properties.get("service_envelope") or None,
    )


def _store_dir(folder: Path, properties: dict[str, str]) -> Path:
    """`model-store/` beside `config/`; `model_store` is used when it names a folder inside the model
    folder (`/mnt/models/...` is where KServe mounts it)."""
    named = properties.get("model_store", "")
    if named.startswith("/mnt/models/"):
        candidate = folder / named.removeprefix("/mnt/models/")
        if candidate.is_dir():
            return candidate
    return folder / STORE_FOLDER


def _declared_models(properties: dict[str, str]) -> list[tuple[str, str, dict]] | None:
    """(name, version, settings) of each model version `model_snapshot` or `models` declares."""
    document = None
    if properties.get("model_snapshot"):
        document = _json(properties["model_snapshot"], "model_snapshot").get("models")
    elif properties.get("models"):
        document = _json(properties["models"], "models")
    if document is None:
        return None
    if not isinstance(document, dict):
        raise StoreError("config.properties: the models of model_snapshot must be an object of names")
    declared = []
    for name, versions in document.items():
        if not isinstance(versions, dict) or not versions:
            raise StoreError(f"config.properties: model {name!r} must map versions to their settings")
        for version, entry in versions.items():
            if not isinstance(entry, dict):
                raise StoreError(f"config.properties: model {name!r} version {version!r} must be an object")
            declared.append((name, version, entry))
    return declared


def _store_model(
    store_dir: Path, name: str, version: str, entry: dict, defaults: dict, *, from_snapshot: bool
) -> StoreModel:
    mar_name = entry.get("marName") or f"{name}.mar"
    archive = store_dir / mar_name
    if not archive.is_file():
        raise StoreError(f"config.properties: model {name!r} names {mar_name}, which is not in {store_dir}")
    where = f"config.properties: model {name!r}"
    _warn_unused_settings(where, entry, _ENTRY_USED | _MODEL_USED)
    own = _numbers(entry, where)
    archived = _archive_settings(archive, name)
    # TorchServe restores a snapshot's entry as it is; a `models` entry gives way to the archive's config.
    settings = {**archived, **own} if from_snapshot else {**own, **archived}
    return StoreModel(
        name=name,
        version=str(version),
        archive=archive,
        is_default=_is_true(entry.get("defaultVersion")),
        **_serving(settings, defaults),
    )


def _is_true(value: object) -> bool:
    """A JSON boolean as TorchServe's reader (Gson's `getAsBoolean`) takes it: `true`, or the text
    "true" in any case."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _with_defaults_settled(models: list[StoreModel]) -> list[StoreModel]:
    """Each name's default version as TorchServe settles it: the first version registered is the
    default until one saying `defaultVersion: true` is registered (the last such one wins)."""
    default_of: dict[str, int] = {}
    for index, model in enumerate(models):
        if model.name not in default_of or model.is_default:
            default_of[model.name] = index
    return [replace(model, is_default=default_of[model.name] == index) for index, model in enumerate(models)]


def _loaded_models(
    store_dir: Path, load_models: str, defaults: dict, entries: dict[tuple[str, str], dict]
) -> list[StoreModel]:
    """The archives load_models names, each with the settings of its `models` entry, if any (by name
    and version, as TorchServe looks them up)."""
    from modelplane.runtimes.torchserve.archive import read_manifest

    archives = sorted(store_dir.glob("*.mar")) if store_dir.is_dir() else []
    wanted = [part.strip() for part in load_models.split(",") if part.strip()]
    if not wanted:
        logger.warning(
            "config.properties names no models (no model_snapshot, models or load_models): serving every "
            ".mar in %s, as load_models=all would",
            store_dir,
        )
    if not wanted or [part.lower() for part in wanted] == ["all"]:
        chosen = [(None, archive) for archive in archives]
    else:
        chosen = []
        for part in wanted:
            name, _, file_name = part.rpartition("=")
            archive = store_dir / (file_name if file_name.endswith(".mar") else f"{file_name}.mar")
            if not archive.is_file():
                raise StoreError(
                    f"config.properties: load_models names {file_name}, which is not in {store_dir}"
                )
            chosen.append((name or None, archive))
    models = []
    for name, archive in chosen:
        model = read_manifest(archive).get("model", {})
        name = name or model.get("modelName") or archive.stem
        version = model.get("modelVersion")
        entry = entries.pop((name, str(version)), {})
        where = f"config.properties: model {name!r}"
        _warn_unused_settings(where, entry, _ENTRY_USED | _MODEL_USED)
        # The archive's own config wins over the `models` entry, as in TorchServe.
        settings = {**_numbers(entry, where), **_archive_settings(archive, name)}
        models.append(StoreModel(name=name, version=version, archive=archive, **_serving(settings, defaults)))
    for name, version in entries:
        logger.warning(
            "config.properties: models sets model %r version %s, which load_models does not load: not served",
            name,
            version,
        )
    return models


def _archive_settings(archive: Path, name: str) -> dict[str, float]:
    """The settings of the model config an archive carries, with a warning for those not used (its
    other sections, `handler` say, are the handler's to read)."""
    from modelplane.runtimes.torchserve.archive import ArchiveInvalid, read_manifest, read_model_config

    try:
        config = read_model_config(archive, read_manifest(archive))
    except ArchiveInvalid as exc:
        raise StoreError(str(exc)) from None
    unused = sorted(key for key in config if key in _MODEL_NOT_USED)
    if unused:
        logger.warning(
            "%s: model %r: its model config sets %s, which modelplane does not use",
            archive.name,
            name,
            ", ".join(unused),
        )
    return _numbers(config, f"{archive.name}: model {name!r}: its model config")


def _numbers(settings: dict, where: str) -> dict[str, float]:
    """The settings modelplane acts on, as numbers (TorchServe's JSON and YAML readers take a number or
    text of one); StoreError naming the setting otherwise."""
    numbers = {}
    for key in sorted(_MODEL_USED & settings.keys()):
        value = settings[key]
        try:
            if isinstance(value, bool):
                raise ValueError
            numbers[key] = float(value)
        except (TypeError, ValueError):
            raise StoreError(f"{where}: {key} must be a number, not {value!r}") from None
        if numbers[key] < 0 or (key == "responseTimeout" and numbers[key] == 0):
            raise StoreError(f"{where}: {key} must be a positive number, not {value!r}")
        if key in ("minWorkers", "maxWorkers", "batchSize") and numbers[key] != int(numbers[key]):
            raise StoreError(f"{where}: {key} must be a whole number, not {value!r}")
    return numbers


def _serving(settings: dict[str, float], defaults: dict) -> dict:
    """Workers, batching and timeout of a model from its settings (TorchServe's names and units)."""
    return {
        # A model of no workers would serve nothing, and a batch of no rows is none: at least one each.
        "workers": max(1, int(settings.get("minWorkers", settings.get("maxWorkers", defaults["workers"])))),
        "batch_size": max(1, int(settings.get("batchSize", 1))),
        "max_batch_delay": settings.get("maxBatchDelay", DEFAULT_MAX_BATCH_DELAY * 1000) / 1000,
        "response_timeout": settings.get("responseTimeout", defaults["response_timeout"]),
    }


def _warn_unused_settings(where: str, entry: dict, used: set[str]) -> None:
    not_used = sorted(key for key in entry if key in _MODEL_NOT_USED)
    if not_used:
        logger.warning("%s: not used by modelplane: %s", where, ", ".join(not_used))
    unknown = sorted(key for key in entry if key not in used and key not in _MODEL_NOT_USED)
    if unknown:
        logger.warning("%s: unknown settings, not used: %s", where, ", ".join(unknown))


def _json(text: str, key: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"config.properties: {key} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise StoreError(f"config.properties: {key} must be a JSON object")
    return value


def _positive_int(properties: dict[str, str], key: str, default: int) -> int:
    try:
        return max(1, int(properties.get(key, default)))
    except ValueError:
        raise StoreError(f"config.properties: {key} must be a whole number") from None


def _positive_float(properties: dict[str, str], key: str, default: float) -> float:
    try:
        value = float(properties.get(key, default))
    except ValueError:
        raise StoreError(f"config.properties: {key} must be a number") from None
    return value if value > 0 else default


def _log_unused(properties: dict[str, str]) -> None:
    frontend = sorted(key for key in properties if key in _FRONTEND)
    if frontend:
        logger.info(
            "config.properties: not used by modelplane, whose replica ports and processes are the "
            "platform's: %s",
            ", ".join(frontend),
        )
    unknown = sorted(key for key in properties if key not in _FRONTEND and key not in _USED)
    if unknown:
        logger.warning("config.properties: unknown keys, not used: %s", ", ".join(unknown))
