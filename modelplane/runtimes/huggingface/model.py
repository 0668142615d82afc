"""`HuggingFaceModel`: a transformers model served as KServe's huggingfaceserver serves it.

Predictive tasks answer V1 and V2 predict (predictive.py); a text_embedding model also answers
`/openai/v1/embeddings`. Generative tasks answer the OpenAI completions and chat endpoints through
their `generator`, which runs on the huggingface engine (engine.py); their V1 and V2 predict refuse
with a pointer to those endpoints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelplane.protocol.errors import InvalidInput
from modelplane.runtimes.huggingface import loading, options
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from modelplane.server.model import Model

logger = logging.getLogger("modelplane.server")


class HuggingFaceModel(Model):
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
        self._encoder = None

    def load(self) -> bool:
        import torch

        from modelplane.runtimes.huggingface.tasks import Task

        if self.nthread:
            torch.set_num_threads(self.nthread)
        folder = loading.model_folder(self.model_dir, self.settings)
        remote = bool(self.predictor_host)
        loaded = loading.load(folder, self.settings, weights=not remote)
        self.task = loaded.task
        if loaded.task.generative:
            if remote:
                raise loading.LoadError(
                    "--predictor-host applies to predictive tasks, not to text generation"
                )
            self._load_generator(loaded)
        else:
            from modelplane.runtimes.huggingface.predictive import EncoderTask, TextEmbedder

            if self.settings.max_num_seqs is not None:
                logger.warning(
                    "--max_num_seqs applies to text generation; model %s is %s", self.name, loaded.task.value
                )
            self._encoder = EncoderTask(self.name, loaded, self.settings)
            if loaded.task is Task.text_embedding and not remote:
                self.embedder = TextEmbedder(self._encoder)
        self.ready = True
        return True

    def _load_generator(self, loaded: loading.Loaded) -> None:
        from modelplane.runtimes.huggingface.generator import TransformersGenerator

        ignored = options.not_for_generation(self.settings)
        if ignored:
            logger.warning(
                "%s apply to predictive tasks; model %s generates text", ", ".join(ignored), self.name
            )
        generator = TransformersGenerator(
            self.name, loaded, self.settings.max_num_seqs or options.DEFAULT_MAX_NUM_SEQS
        )
        generator.start()
        self.generator = generator

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
