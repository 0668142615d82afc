"""The text generator of a generative model, as the OpenAI endpoints use it
(`modelplane.server.generation.TextGenerator`), over the generation engine.

Sequences that start in the same turn of the event loop (the choices of one request, or requests
that arrived together) are handed to the engine together, so they are prefilled in one pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from modelplane.protocol.openai import SamplingParams
from modelplane.runtimes.huggingface import engine as engines
from modelplane.runtimes.huggingface.batch import DecoderOnlyBatch, EncoderDecoderBatch
from modelplane.runtimes.huggingface.loading import Loaded
from modelplane.runtimes.huggingface.metrics import EngineMetrics
from modelplane.runtimes.huggingface.prompts import TokenizerPrompts
from modelplane.runtimes.huggingface.tasks import Task
from modelplane.server.generation import EngineLoad, GenerationStep, StopGeneration


class TransformersGenerator(TokenizerPrompts):
    def __init__(self, name: str, loaded: Loaded, max_num_seqs: int, max_logprobs: int):
        super().__init__(loaded.tokenizer)
        self.max_model_len = loaded.max_model_len
        self.max_logprobs = max_logprobs
        self.sampling_defaults = loaded.sampling_defaults
        model = loaded.model
        self.vocab_size = model.config.get_text_config().vocab_size
        pad_id = _first_id(self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0)
        self._encoder_decoder = loaded.task is Task.text2text_generation
        batch_class = EncoderDecoderBatch if self._encoder_decoder else DecoderOnlyBatch
        self._batch = batch_class(model, loaded.device, pad_id)
        self.engine = engines.GenerationEngine(
            name,
            self._batch,
            self.tokenizer,
            _eos_ids(model, self.tokenizer),
            max_num_seqs,
            self.vocab_size,
            EngineMetrics(name),
        )
        self._arrived: list[engines.Sequence] = []

    def start(self) -> None:
        self._batch.check_cache()
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()

    def unsupported(self, params: SamplingParams) -> str | None:
        # A T5-style model reads its prompt with its encoder, which gives the prompt no probabilities.
        if self._encoder_decoder and params.prompt_logprobs is not None:
            return "prompt_logprobs"
        return None

    def occupancy(self) -> EngineLoad:
        return self.engine.occupancy()

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[GenerationStep]:
        loop = asyncio.get_running_loop()
        sequence = engines.Sequence(list(prompt_ids), params, loop, asyncio.Queue())
        self._hand_over(sequence, loop)
        finished = False
        ending = "abandoned"  # how the engine counts the sequence if it is stopped before its end
        try:
            while True:
                item = await sequence.steps.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                if item.finish_reason is not None:
                    finished = True
                yield item
                if finished:
                    return
        except StopGeneration:
            ending = "stop"
        finally:
            if not finished:
                self.engine.cancel(sequence, ending)

    def _hand_over(self, sequence: engines.Sequence, loop: asyncio.AbstractEventLoop) -> None:
        """Queues `sequence` for the engine with the others that start in this turn of the loop."""
        if not self._arrived:
            loop.call_soon(self._submit_arrived)
        self._arrived.append(sequence)

    def _submit_arrived(self) -> None:
        arrived, self._arrived = self._arrived, []
        self.engine.submit(arrived)


def _first_id(*candidates: Any) -> int:
    return next(candidate for candidate in candidates if isinstance(candidate, int))


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end a sequence: the generation config's, else the model config's, else the
    tokenizer's."""
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None)
        if value is not None:
            return {value} if isinstance(value, int) else set(value)
    return {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
