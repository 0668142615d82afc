"""Finding and loading a transformers model: its folder (`--model_dir`, or `--model_id` in the local
Hugging Face cache), its config, the task, the dtype, the context length, the tokenizer and weights.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelplane.runtimes.base import require
from modelplane.runtimes.huggingface import generation_defaults
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.runtimes.huggingface.tasks import Task, auto_model_class, infer_task, parse_task

logger = logging.getLogger("modelplane.server")

# config.json keys that bound a model's context, smallest wins (KServe's and vLLM's list).
_CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
DEFAULT_CONTEXT = 2048  # for a config that names no bound, as KServe assumes
ALLOW_LONG_CONTEXT_ENV = "ALLOW_LONG_MAX_MODEL_LEN"


class LoadError(Exception):
    """A model folder or setting that cannot be served (the message says why)."""


@dataclass
class Loaded:
    """A loaded model and what was learnt while loading it."""

    task: Task
    config: Any
    tokenizer: Any
    model: Any  # None when a predictor elsewhere runs it
    device: Any
    max_model_len: int
    dtype: Any = None
    # generation: generation_config.json's sampling defaults, under the request fields' names
    sampling_defaults: dict[str, float] = field(default_factory=dict)


def model_folder(model_dir: str | Path | None, settings: HuggingFaceSettings) -> Path:
    """The folder to load: `model_dir`, or `--model_id`'s snapshot in the local Hugging Face cache."""
    if settings.model_id:
        return _cached_snapshot(settings.model_id, settings.model_revision)
    if model_dir is None:
        raise LoadError("the huggingface runtime needs --model_dir or --model_id")
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise LoadError(f"{folder} holds no config.json: it is not a transformers model folder")
    if settings.model_revision or settings.tokenizer_revision:
        logger.warning(
            "--model_revision and --tokenizer_revision choose a revision of --model_id; "
            "the folder %s is served as it is",
            folder,
        )
    return folder


def tokenizer_folder(folder: Path, settings: HuggingFaceSettings) -> Path:
    if settings.model_id and settings.tokenizer_revision:
        return _cached_snapshot(settings.model_id, settings.tokenizer_revision)
    return folder


def _cached_snapshot(model_id: str, revision: str | None) -> Path:
    hub = require("huggingface_hub", "huggingface")
    try:
        return Path(hub.snapshot_download(model_id, revision=revision, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - the hub raises several types for a missing snapshot
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        at = f" at revision {revision}" if revision else ""
        raise LoadError(
            f"{model_id}{at} is not in the local Hugging Face cache ({cache}): modelplane serve does not "
            f"download models; give the InferenceService storageUri hf://{model_id} instead "
            f"({type(exc).__name__})"
        ) from None


def load(folder: Path, settings: HuggingFaceSettings, *, weights: bool = True) -> Loaded:
    """Loads the config, tokenizer and (when `weights`) the model in `folder`."""
    transformers = require("transformers", "huggingface")
    torch = require("torch", "huggingface")
    from modelplane.runtimes.torch_tensors import preferred_device

    transformers.utils.logging.disable_progress_bar()
    config = transformers.AutoConfig.from_pretrained(
        str(folder), trust_remote_code=settings.trust_remote_code
    )
    task = _task(config, settings.task)
    device = preferred_device()
    dtype = _dtype(torch, config, settings.dtype, device)
    max_model_len = context_length(config, settings.max_model_len)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(tokenizer_folder(folder, settings)),
        do_lower_case=settings.lower_case,
        trust_remote_code=settings.trust_remote_code,
    )
    if not task.generative:
        max_model_len = _within_tokenizer(max_model_len, tokenizer, settings.max_model_len is not None)
    loaded = Loaded(task, config, tokenizer, None, device, max_model_len, dtype)
    if task.generative and settings.generation_config == "auto":
        loaded.sampling_defaults = generation_defaults.read(folder)
    if weights:
        load_weights(folder, loaded, settings)
    return loaded


def load_weights(folder: Path, loaded: Loaded, settings: HuggingFaceSettings) -> None:
    """Loads the model's weights into `loaded.model`, on its device."""
    model = auto_model_class(loaded.task).from_pretrained(
        str(folder), dtype=loaded.dtype, trust_remote_code=settings.trust_remote_code
    )
    loaded.model = model.to(loaded.device).eval()
    logger.info(
        "%s: task %s, %s on %s, context %d tokens",
        folder,
        loaded.task.value,
        loaded.dtype,
        loaded.device,
        loaded.max_model_len,
    )


def _task(config: Any, requested: str | None) -> Task:
    architectures = getattr(config, "architectures", None)
    if not requested:
        return infer_task(architectures)
    task = parse_task(requested)
    try:
        inferred = infer_task(architectures)
    except ValueError:
        inferred = None
    if inferred is not None and inferred is not task:
        logger.warning("the model's config says %s; serving it for --task %s", inferred.value, task.value)
    return task


def _dtype(torch: Any, config: Any, requested: str, device: Any) -> Any:
    """KServe's rule: `auto` is config.json's dtype, else float16 on a GPU and float32 on a CPU."""
    named = {
        "float32": torch.float32,
        "float": torch.float32,
        "float16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
    }
    if requested != "auto":
        return named[requested]
    configured = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(configured, str):
        configured = named.get(configured)
    if configured is not None:
        return configured
    return torch.float16 if device.type == "cuda" else torch.float32


def _within_tokenizer(max_model_len: int, tokenizer: Any, requested: bool) -> int:
    """A predictive model's context, bounded by its tokenizer's `model_max_length` too: RoBERTa's and
    XLM-R's configs count two positions more than they read (514 for 512), and a text truncated to
    514 tokens fails in the model. (A tokenizer that names no bound says 1e30.)"""
    bound = getattr(tokenizer, "model_max_length", None)
    if not isinstance(bound, int) or not 0 < bound < max_model_len:
        return max_model_len
    if requested:
        logger.warning(
            "--max_model_len %d is more than the tokenizer's model_max_length=%d: the model may fail on "
            "texts that long",
            max_model_len,
            bound,
        )
        return max_model_len
    return bound


def context_length(config: Any, requested: int | None) -> int:
    """The most tokens a sequence may hold: `requested`, checked against the config's bound."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    bounds = {
        key: getattr(text_config, key)
        for key in _CONTEXT_KEYS
        if isinstance(getattr(text_config, key, None), int)
    }
    if not bounds:
        if requested is not None:
            return requested
        logger.warning("config.json bounds no context length; assuming %d tokens", DEFAULT_CONTEXT)
        return DEFAULT_CONTEXT
    key, derived = min(bounds.items(), key=lambda item: item[1])
    if requested is None:
        return derived
    if requested > derived:
        message = f"--max_model_len {requested} is more than the model's {key}={derived}"
        if os.environ.get(ALLOW_LONG_CONTEXT_ENV) != "1":
            raise LoadError(f"{message}; set {ALLOW_LONG_CONTEXT_ENV}=1 to allow it anyway")
        logger.warning("%s; allowed by %s=1", message, ALLOW_LONG_CONTEXT_ENV)
    return requested
