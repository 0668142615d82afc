"""How an InferenceService's components are implemented: the one-of rules shared by defaulting and validation."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .constants import MULTI_MODEL_SERVER_ENV, PREDICTOR_CONTAINER, STORAGE_URI_ENV

_PYTHON = re.compile(r"python(3(\.\d+)?)?")

# The order in which a predictor lists its implementations.
_PREDICTOR_IMPLEMENTATION_ORDER = (
    "xgboost",
    "pytorch",
    "triton",
    "sklearn",
    "tensorflow",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
    "model",
)
CUSTOM = "containers"

# The field lists of KServe's "exactly one of [...]" messages (its Go struct field names).
_ONE_OF_FIELDS = {
    "predictor": (
        "PredictorSpec",
        "Name, SKLearn, XGBoost, Tensorflow, PyTorch, Triton, ONNX, HuggingFace, PMML, LightGBM, Paddle, "
        "Model, StorageUris, StorageContainerName, WorkerSpec, PodSpec",
    ),
    "transformer": ("TransformerSpec", "PodSpec, ComponentExtensionSpec"),
    "explainer": ("ExplainerSpec", "ART, PodSpec, ComponentExtensionSpec"),
}


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def implementations(component: str, spec: dict) -> list[str]:
    """The implementations a component sets, by field name; `containers` stands for a custom one.

    A predictor counts one custom implementation per container named `kserve-container`, or one if it
    has containers and nothing else (a framework next to a `transformer-container` is still one).
    """
    containers = _dicts(spec.get("containers"))
    if component == "predictor":
        found = [name for name in _PREDICTOR_IMPLEMENTATION_ORDER if isinstance(spec.get(name), dict)]
        found += [CUSTOM for c in containers if c.get("name") == PREDICTOR_CONTAINER]
        if not found and containers:
            found.append(CUSTOM)
        return found
    found = ["art"] if component == "explainer" and isinstance(spec.get("art"), dict) else []
    if spec.get("containers"):
        found.append(CUSTOM)
    return found


def exactly_one_message(component: str) -> str:
    struct, fields = _ONE_OF_FIELDS[component]
    return f"exactly one of [{fields}] must be specified in {struct}"


def first_implementation(component: str, spec: dict) -> tuple[str, dict] | None:
    """The first implementation of a component, as (field, its spec), even when there are several."""
    found = implementations(component, spec)
    if not found:
        return None
    name = found[0]
    return name, (_custom_container(component, spec) if name == CUSTOM else spec[name])


def implementation(component: str, spec: dict) -> tuple[str, dict] | None:
    """The single implementation of a component, as (field, its spec); None unless there is exactly one."""
    return first_implementation(component, spec) if len(implementations(component, spec)) == 1 else None


def _custom_container(component: str, spec: dict) -> dict:
    containers = _dicts(spec.get("containers"))
    if component == "predictor":
        for container in containers:
            if container.get("name") == PREDICTOR_CONTAINER:
                return container
    return containers[0] if containers else {}


def env_value(container: dict, name: str) -> str | None:
    for env in _dicts(container.get("env")):
        if env.get("name") == name:
            return env.get("value", "")
    return None


def storage_uri(component: str, spec: dict) -> str | None:
    """The storageUri of a component's (first) implementation; `STORAGE_URI` env for a custom container."""
    found = first_implementation(component, spec)
    if found is None:
        return None
    name, impl = found
    if name == CUSTOM:
        if component == "predictor" and impl.get("name") != PREDICTOR_CONTAINER:
            return None
        return env_value(impl, STORAGE_URI_ENV)
    uri = impl.get("storageUri")
    return None if name == "art" and uri == "" else uri


def is_multi_model_predictor(predictor: dict) -> bool:
    """Whether a predictor serves TrainedModels, as KServe's IsMMSPredictor has it: a custom one whose
    container sets `MULTI_MODEL_SERVER=true`, or a model with no storage (`storageUri`, `storage`,
    `storageUris`), unless it is a Hugging Face one, whose server fetches it by `--model_id`."""
    found = first_implementation("predictor", predictor)
    if found is None:
        return False
    name, implementation = found
    if name == CUSTOM:
        return (env_value(implementation, MULTI_MODEL_SERVER_ENV) or "").lower() == "true"
    if name == "huggingface" or (implementation.get("modelFormat") or {}).get("name") == "huggingface":
        return False
    has_storage = any(implementation.get(k) for k in ("storageUri", "storage"))
    return not has_storage and not predictor.get("storageUris")


def container_argv(container: dict) -> list[str]:
    """A container's command line: its command, then its args."""
    return [str(part) for key in ("command", "args") for part in container.get(key) or []]


def runs_modelplane_serve(argv: Sequence[str]) -> bool:
    """Whether a command line is `modelplane serve ...` (or `python -m modelplane serve ...`): the model
    server, which takes the batcher's flags."""
    if not argv:
        return False
    program = str(argv[0]).rsplit("/", 1)[-1]
    if program == "modelplane":
        return list(argv[1:2]) == ["serve"]
    return bool(_PYTHON.fullmatch(program)) and list(argv[1:4]) == ["-m", "modelplane", "serve"]
