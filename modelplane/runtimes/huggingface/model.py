"""`HuggingFaceModel`: a transformers model served as KServe's huggingfaceserver serves it.

Predictive tasks answer V1 and V2 predict (predictive.py); a text_embedding model also answers
`/openai/v1/embeddings`, and a cross-encoder (sequence_classification with one label)
`/openai/v1/rerank`. Generative tasks answer the OpenAI completions and chat endpoints through
their `generator`, which runs on the huggingface engine (engine.py); their V1 and V2 predict refuse
with a pointer to those endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from modelplane.protocol.errors import InvalidInput
from modelplane.runtimes.huggingface import loading, options
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.server.model import Model

logger = logging.getLogger("modelplane.server")


class HuggingFaceModel(Model):
    reads_parameters = frozenset()

    def __init__(
        self,
        name: str,
        model_dir: str | Path | None = None,
        settings: HuggingFaceSettings | None = None,
        nthread: int | None = None,
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.settings = settings or HuggingFaceSettings()
        self.nthread = nthread
        self.task = None
        self.generator = None
        self.embedder = None
        self.reranker = None
        self._encoder = None

    def load(self) -> bool | Coroutine[Any, Any, bool]:
        import torch

        from modelplane.runtimes.huggingface.tasks import Task

        if self.nthread:
            torch.set_num_threads(self.nthread)
        folder = loading.model_folder(self.model_dir, self.settings)
        remote = bool(self.predictor_host)
        loaded = loading.load(folder, self.settings, weights=False)
        self.task = loaded.task
        if loaded.task.generative:
            if remote:
                raise loading.LoadError(
                    "--predictor-host applies to predictive tasks, not to text generation"
                )
            if self._backend(loaded) == "vllm":
                return self._start_vllm(folder, loaded)
            loading.load_weights(folder, loaded, self.settings)
            self._load_generator(loaded)
        else:
            vllm_flags = (
                ["--backend vllm"] if self.settings.backend == "vllm" else []
            ) + self.settings.vllm_flags()
            if vllm_flags:
                logger.warning(
                    "%s apply to text generation with vLLM; model %s is %s and runs on transformers",
                    ", ".join(vllm_flags),
                    self.name,
                    loaded.task.value,
                )
            if not remote:
                loading.load_weights(folder, loaded, self.settings)
            from modelplane.runtimes.huggingface.predictive import (
                EncoderTask,
                TextEmbedder,
                TextReranker,
                cross_encoder_activation,
            )

            for flag in options.generation_flags(self.settings):
                logger.warning(
                    "%s applies to text generation; model %s is %s", flag, self.name, loaded.task.value
                )
            self._encoder = EncoderTask(self.name, loaded, self.settings)
            if loaded.task is Task.text_embedding and not remote:
                self.embedder = TextEmbedder(self._encoder)
            if loaded.task is Task.sequence_classification and not remote:
                activation = cross_encoder_activation(loaded.model.config)
                if callable(activation):
                    self.reranker = TextReranker(self._encoder, activation)
                else:
                    logger.info("model %s does not answer /openai/v1/rerank: %s", self.name, activation)
        self.ready = True
        return True

    def _backend(self, loaded: loading.Loaded) -> str:
        """The engine that generates: `huggingface` or `vllm`. `auto` (KServe's default) picks vLLM
        where it is installed and serves this model's task and architecture."""
        ignored = options.not_for_generation(self.settings)
        if ignored:
            logger.warning(
                "%s apply to predictive tasks; model %s generates text", ", ".join(ignored), self.name
            )
        requested = self.settings.backend
        if requested == "huggingface" or (requested == "auto" and not options.vllm_installed()):
            return "huggingface"
        from modelplane.runtimes.huggingface.vllm_generator import serves

        refusal = serves(loaded)
        if refusal is None:
            return "vllm"
        if requested == "vllm":
            raise loading.LoadError(f"--backend vllm: {refusal}; use --backend huggingface")
        logger.info("--backend auto: %s; model %s generates with the huggingface engine", refusal, self.name)
        return "huggingface"

    def _load_generator(self, loaded: loading.Loaded) -> None:
        from modelplane.runtimes.huggingface.generator import TransformersGenerator

        flags = self.settings.vllm_flags()
        if flags:
            logger.warning(
                "%s apply to the vllm backend; model %s runs on transformers", ", ".join(flags), self.name
            )
        if not self.nthread and loaded.device.type == "cpu":
            _leave_a_core_to_the_server()
        generator = TransformersGenerator(self.name, loaded, self._max_num_seqs(), self.settings.max_logprobs)
        generator.start()
        self.generator = generator

    def _max_num_seqs(self) -> int:
        return self.settings.max_num_seqs or options.DEFAULT_MAX_NUM_SEQS

    async def _start_vllm(self, folder: Path, loaded: loading.Loaded) -> bool:
        """Starts vLLM's engine (its processes start on a thread) and generates one token with it, on
        the server's event loop, where its requests run. With `--backend auto`, a model vLLM fails to
        start or run here generates with the huggingface engine instead."""
        from modelplane.runtimes.huggingface.vllm_generator import VLLMGenerator

        if not self.settings.lower_case:
            logger.warning("--disable_lower_case: vLLM loads the tokenizer as the model folder configures it")
        if self.nthread:
            logger.warning("--nthread: vLLM sets its own threads (VLLM_CPU_OMP_THREADS_BIND on a CPU)")
        generator = None
        try:
            generator = await asyncio.to_thread(
                VLLMGenerator.start, self.name, folder, loaded, self.settings, self._max_num_seqs()
            )
            await generator.warm_up()
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; the reason is reported either way
            if generator is not None:
                await asyncio.to_thread(generator.stop)
            reason = f"vLLM could not serve model {self.name}: {type(exc).__name__}: {exc}"
            if self.settings.backend == "vllm":
                raise loading.LoadError(reason) from exc
            logger.warning("--backend auto: %s; it generates with the huggingface engine", reason)
            await asyncio.to_thread(loading.load_weights, folder, loaded, self.settings)
            await asyncio.to_thread(self._load_generator, loaded)
        else:
            logger.info("model %s generates with vLLM's engine", self.name)
            self.generator = generator
        self.ready = True
        return True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self._encoder is None:
            raise InvalidInput(
                f"model {self.name} generates text ({self.task.value}): "
                "use /openai/v1/completions or /openai/v1/chat/completions"
            )
        forward = None
        if self.predictor_host:
            from modelplane.server.predictor_client import forward_predict

            async def forward(request):
                return await forward_predict(self, request, headers)

        return await self._encoder.predict(payload, forward)

    def stop(self) -> None:
        if self.generator is not None:
            self.generator.stop()


def _leave_a_core_to_the_server() -> None:
    """On a CPU, the engine's forward passes get every core but one (at least one). The server's event
    loop writes each token's event and reads the next requests meanwhile; torch's threads wait for each
    other at every operation, so one of them sharing a core with the event loop holds all of them up.
    (Measured with bench/generation.py on 2 cores: one thread made 2-4x the tokens per second of two.)"""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = min(torch.get_num_threads(), max(1, cores - 1))
    torch.set_num_threads(threads)
    logger.info("the huggingface engine runs torch on %d thread(s) (--nthread sets it)", threads)
