"""The vllm backend: vLLM's own async engine generates, behind modelplane's OpenAI endpoints.

vLLM runs the model in processes of its own (its engine core and workers: paged attention,
continuous batching, its own kernels); this module is the `TextGenerator` the OpenAI layer speaks to.
Prompts are read and chats rendered with vLLM's tokenizer; each sequence is one vLLM request with its
own sampling parameters (temperature, top-p, seed, penalties, log probabilities, and vLLM's own
extensions a request set: top_k, min_p, repetition_penalty, min_tokens, ignore_eos,
stop_token_ids), whose new tokens and text come back step by step. Stop strings stay the OpenAI layer's, as with the huggingface
engine: a match closes the iterator, and closing it early aborts the request in vLLM, which frees
its place in vLLM's batch and its cache blocks.

vLLM's own Prometheus metrics are off: the OpenAI layer records the vLLM-named metrics itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modelplane.protocol.openai import SamplingParams
from modelplane.runtimes.huggingface import loading
from modelplane.runtimes.huggingface.loading import Loaded
from modelplane.runtimes.huggingface.metrics import EngineMetrics
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.runtimes.huggingface.prompts import TokenizerPrompts
from modelplane.runtimes.huggingface.tasks import Task
from modelplane.runtimes.huggingface.token_bytes import TokenBytes
from modelplane.server.generation import EngineLoad, GenerationStep, StopGeneration, TokenLogprob

logger = logging.getLogger("modelplane.server")

_FINISH_REASONS = {"stop": "stop", "length": "length"}


def serves(loaded: Loaded) -> str | None:
    """Why vLLM cannot serve this model, or None when it can (its task and architecture)."""
    if loaded.task is not Task.text_generation:
        return f"vLLM's engine serves text_generation here, not {loaded.task.value}"
    from vllm import ModelRegistry

    architectures = getattr(loaded.config, "architectures", None) or []
    supported = set(ModelRegistry.get_supported_archs())
    if not any(architecture in supported for architecture in architectures):
        return f"vLLM does not know the architecture {', '.join(architectures) or '(none named)'}"
    return None


class VLLMGenerator(TokenizerPrompts):
    def __init__(self, name: str, engine: Any, loaded: Loaded, max_logprobs: int):
        super().__init__(engine.get_tokenizer())
        self.name = name
        self.engine = engine
        self.max_model_len = loaded.max_model_len
        self.max_logprobs = max_logprobs  # vLLM checks it too; checked first, the answer is the same
        self.sampling_defaults = loaded.sampling_defaults
        self.vocab_size = loaded.config.get_text_config().vocab_size
        self.metrics = EngineMetrics(name)
        self.token_bytes = TokenBytes(self.tokenizer)
        self._waiting = 0
        self._running = 0

    @classmethod
    def start(
        cls, name: str, folder: Path, loaded: Loaded, settings: HuggingFaceSettings, max_num_seqs: int
    ) -> VLLMGenerator:
        """Starts vLLM's engine on the model in `folder` (blocks until its processes are up)."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.engine.async_llm_engine import AsyncLLMEngine

        arguments = {
            "model": str(folder),
            "tokenizer": str(loading.tokenizer_folder(folder, settings)),
            "served_model_name": name,
            "dtype": str(loaded.dtype).removeprefix("torch."),  # KServe's rule for `auto`, as on transformers
            "max_model_len": loaded.max_model_len,
            "max_num_seqs": max_num_seqs,
            "max_logprobs": settings.max_logprobs,
            "trust_remote_code": settings.trust_remote_code,
            "enforce_eager": settings.enforce_eager,
            "disable_log_stats": True,
        }
        if settings.gpu_memory_utilization is not None:
            arguments["gpu_memory_utilization"] = settings.gpu_memory_utilization
        engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**arguments))
        return cls(name, engine, loaded, settings.max_logprobs)

    async def warm_up(self) -> None:
        """Generates one token, so that a model vLLM cannot run here fails while loading."""
        async for _step in self.generate(self.encode("hello"), SamplingParams(max_tokens=1, temperature=0)):
            pass

    def stop(self) -> None:
        self.engine.shutdown()

    def unsupported(self, params: SamplingParams) -> str | None:
        # vLLM can give them (its prompt_logprobs), but reading them back is not built here yet.
        return "prompt_logprobs" if params.prompt_logprobs is not None else None

    def occupancy(self) -> EngineLoad:
        return EngineLoad(running=self._running, waiting=self._waiting)

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[GenerationStep]:
        from vllm.inputs import TokensPrompt

        request_id = f"{self.name}-{uuid.uuid4().hex}"
        outputs = self.engine.generate(
            TokensPrompt(prompt_token_ids=list(prompt_ids)), _sampling_params(params), request_id
        )
        self._waiting += 1
        started = False
        finished = False
        failed = False
        ending = "abandoned"  # how the metrics count the sequence if it is stopped before its end
        try:
            async for output in outputs:
                if not started:
                    started = True
                    self._waiting -= 1
                    self._running += 1
                step = _step(output.outputs[0], params.logprobs, self.token_bytes)
                finished = step.finish_reason is not None
                if finished:
                    self.metrics.ended(step.finish_reason)
                yield step
                if finished:
                    return
        except StopGeneration:
            ending = "stop"
        except Exception:
            failed = True
            raise
        finally:
            if started:
                self._running -= 1
            else:
                self._waiting -= 1
            if not finished:
                await outputs.aclose()  # vLLM aborts the request
                if not failed:
                    self.metrics.ended(ending)


def _sampling_params(params: SamplingParams) -> Any:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.sampling_params import RequestOutputKind

    return VLLMSamplingParams(
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        seed=params.seed,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        logprobs=params.logprobs,
        skip_special_tokens=True,
        output_kind=RequestOutputKind.DELTA,  # each output holds only what is new
        **_vllm_extensions(params),
    )


def _vllm_extensions(params: SamplingParams) -> dict[str, Any]:
    """vLLM's own sampling extensions the request set, and its logit_bias (stop strings, and with them
    include_stop_str_in_output, stay the OpenAI layer's). Defaults are left to vLLM, whose spelling of
    "every token" for top_k has changed between versions."""
    defaults = SamplingParams(max_tokens=None)
    names = ("top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos", "stop_token_ids")
    given = {
        name: getattr(params, name) for name in names if getattr(params, name) != getattr(defaults, name)
    }
    if "stop_token_ids" in given:
        given["stop_token_ids"] = list(given["stop_token_ids"])
    if params.logit_bias:
        given["logit_bias"] = dict(params.logit_bias)
    return given


def _step(output: Any, top: int | None, token_bytes: TokenBytes) -> GenerationStep:
    finish = None
    if output.finish_reason is not None:
        finish = _FINISH_REASONS.get(output.finish_reason)
        if finish is None:
            raise RuntimeError(f"vLLM ended the sequence: {output.finish_reason} ({output.stop_reason})")
    logprobs = None
    if top is not None and output.logprobs is not None:
        logprobs = [
            _token_logprob(token, candidates, top, token_bytes)
            for token, candidates in zip(output.token_ids, output.logprobs, strict=True)
        ]
    # Stop strings are the OpenAI layer's, so vLLM's stop_reason is a stop token's id or None.
    stop_reason = output.stop_reason if isinstance(output.stop_reason, int) else None
    return GenerationStep(list(output.token_ids), output.text, logprobs, finish, stop_reason=stop_reason)


def _token_logprob(token: int, candidates: dict[int, Any], top: int, token_bytes: TokenBytes) -> TokenLogprob:
    """The chosen token's log probability and the `top` likeliest, from vLLM's {token id: Logprob}."""
    likeliest = sorted(
        (
            (candidate_id, candidate)
            for candidate_id, candidate in candidates.items()
            if candidate.rank is not None and candidate.rank <= top
        ),
        key=lambda item: item[1].rank,
    )
    chosen = candidates[token]
    return TokenLogprob(
        chosen.decoded_token or "",
        chosen.logprob,
        tuple((candidate.decoded_token or "", candidate.logprob) for _id, candidate in likeliest),
        token_bytes.of(token),
        tuple(token_bytes.of(candidate_id) for candidate_id, _candidate in likeliest),
    )
